"""MLflow's proxied artifact API (`mlflow-artifacts`) on the content-addressed store.

`mlflow-artifacts:/<exp>/<run_id>/artifacts/<path>` is run `<run_id>`'s artifact
`<path>`; `.../<exp>/models/<model_id>/artifacts/<path>` belongs to a logged
model. Uploads are chunked, hashed and deduplicated like metricflow's own
client uploads; downloads stream chunk by chunk, each verified by its hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import posixpath
import secrets
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from metricflow import artifacts as mk
from metricflow.artifacts import decode_chunk, hash_bytes
from metricflow.auth import Permission, current_user
from metricflow.errors import InvalidArgument, InvalidState, NotFound, PermissionDenied
from metricflow.mlflow_compat._context import Compat, check_run
from metricflow.mlflow_compat._routing import (
    API_PREFIXES,
    Args,
    MlflowApiError,
    MlflowRoutes,
    error_response,
    json_response,
)
from metricflow.mlflow_compat._rules import logged_model_param, run_param

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_MPU = "staging/mlflow-mpu/"  # under the store's staging/ prefix, which GC sweeps
_MAX_PARTS = 10_000
MPU_MAX_PART_BYTES = 5 * 1024 ** 3
"""Largest multipart part accepted (S3's own part limit); a larger one is 413."""
MPU_SPOOL_BYTES = 8 * 1024 * 1024
"""A part is streamed to the blob store in pieces of at most this size, so a part upload
holds at most this much in memory."""


def _binding_key(upload_id: str) -> str:
    return f"{_MPU}{upload_id}/binding.json"  # under the upload's prefix: abort/GC remove it


PART_TOKEN_TTL_S = 6 * 3600
"""How long the part URLs of one multipart upload accept parts."""


@dataclass(frozen=True)
class _Binding:
    """Who created a multipart upload, and for which artifact.

    `secret` signs the upload's part URLs: MLflow's client PUTs parts to the URLs
    mpu/create handed out *without* its credentials, so a part URL carries
    `?token=HMAC(secret, "<upload_id>:<part_number>:<expires>")&expires=...`. The
    token is single-purpose (one part of one upload), short-lived, and worthless
    without the upload's secret, which never leaves the server.
    """

    owner: str
    rel: str
    name: str
    user: str
    secret: str = ""
    expires: int = 0

    def part_token(self, upload_id: str, part_number: int) -> str:
        msg = f"{upload_id}:{part_number}:{self.expires}".encode()
        return hmac.new(bytes.fromhex(self.secret), msg, hashlib.sha256).hexdigest()

    def encode(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def decode(cls, raw: bytes) -> _Binding:
        return cls(**json.loads(raw))


# Types a browser only displays (never runs as a document with script): served inline
# with their type. Everything else (HTML, SVG, XML, JavaScript, PDF, unknown) is sent
# as an opaque download, whatever type the uploader gave it.
SAFE_INLINE_TYPES = frozenset({
    "text/plain", "text/csv", "text/tab-separated-values", "application/json",
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/octet-stream",
})
# On every artifact download: a stored file never runs as script on this origin.
DOWNLOAD_CSP = "sandbox; default-src 'none'"


def download_headers(media_type: str, path: str, size: int) -> tuple[str, dict[str, str]]:
    """(content type, headers) of an artifact download: the body is sent as stored (byte
    for byte); only a type from SAFE_INLINE_TYPES is kept, any other is replaced by
    application/octet-stream with `Content-Disposition: attachment`."""
    base = (media_type or "").split(";", 1)[0].strip().lower()
    headers = {"Content-Length": str(size), "Content-Security-Policy": DOWNLOAD_CSP,
               "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"}
    if base in SAFE_INLINE_TYPES:
        return media_type, headers
    name = posixpath.basename(path) or "artifact"
    ascii_name = "".join(ch if 32 < ord(ch) < 127 and ch not in '"\\;%' else "_"
                         for ch in name)
    headers["Content-Disposition"] = (f'attachment; filename="{ascii_name}"; '
                                      f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}")
    return "application/octet-stream", headers


def _relative_path(path: str, field: str) -> str:
    """A path inside a run or logged model: relative, no `..`, no NUL (MLflow's rule)."""
    p = path.replace("\\", "/")
    if p.startswith("/") or "\x00" in p or any(seg == ".." for seg in p.split("/")) \
            or ":" in p.split("/", 1)[0]:
        raise InvalidArgument(f"Invalid path {path[:200]!r} for parameter '{field}': it must be "
                              "relative to the artifact root, without '..' segments",
                              field=field, received=path[:200])
    p = p.strip("/")
    if not p:
        raise InvalidArgument(f"Request must specify {field}.", field=field)
    return p


def _has_part_token(request: Request) -> bool:
    """The auth guard's test for the part route: a signed part URL (checked in full by
    the handler, which refuses a wrong, foreign or expired token with 403)."""
    token = request.query_params.get("token", "")
    return len(token) == 64 and all(ch in "0123456789abcdef" for ch in token)


def _files_json(entries: list[Any], base: str) -> list[dict[str, Any]]:
    """Listing entries relative to `base`; a listing of a file itself is empty (as MLflow)."""
    out = []
    for e in entries:
        if e.path == base:
            continue
        rel = e.path[len(base) + 1:] if base else e.path
        item: dict[str, Any] = {"path": rel, "is_dir": e.is_dir}
        if not e.is_dir:
            item["file_size"] = e.size
        out.append(item)
    return out


class ArtifactRoutes:
    """Handlers of /mlflow-artifacts/* and /mlflow/artifacts/list."""

    def __init__(self, c: Compat) -> None:
        self.c = c
        self.store = c.artifacts

    # ---------------------------------------------------------------- reads
    async def list_proxy(self, a: Args) -> dict[str, Any]:
        path = a.text("path").strip("/")
        owner, rel = self.c.resolve_proxy_path(path)
        entries = await self.c.call(self.store.list_artifacts, owner, rel or None)
        files = _files_json(entries, rel)
        return {"files": files} if files else {}

    async def list_run(self, a: Args) -> dict[str, Any]:
        """/mlflow/artifacts/list: paths relative to the run's artifact root."""
        run_id = check_run(a.required("run_id", "run_uuid"))
        info = await self.c.call(self.c.run_info, run_id)
        raw = a.text("path")
        # the rule get-artifact applies (an absolute path listed as relative before)
        path = _relative_path(raw, "path") if raw.strip("/") else ""
        entries = await self.c.call(self.store.list_artifacts, run_id, path or None)
        out: dict[str, Any] = {"root_uri": self.c.run_artifact_uri(info)}
        files = [{"path": e.path, "is_dir": e.is_dir,
                  **({} if e.is_dir else {"file_size": e.size})}
                 for e in entries if e.path != path]
        if files:
            out["files"] = files
        return out

    def _chunks(self, manifest: Any) -> Iterator[bytes]:
        for c in manifest.chunks:
            raw = decode_chunk(self.store.read_chunk(c.digest))
            if hash_bytes(raw) != c.digest:
                raise InvalidState("stored chunk is corrupt", field="chunk",
                                   received=c.digest.hex())
            yield raw

    async def download(self, request: Request, artifact_path: str) -> Response:
        try:
            owner, rel = self.c.resolve_proxy_path(artifact_path)
            try:
                m = await self.c.call(self.store.get_manifest, owner, rel)
            except NotFound:
                # e.g. a model version registered before its files were uploaded: it is
                # resolved here, at download, and says what is missing.
                kind = "logged model" if owner.startswith("m-") else "run"
                raise NotFound(f"No artifact {rel!r} in {kind} {owner}: nothing was uploaded "
                               "there (yet). If a model version points here, upload its files "
                               "before loading it", field="path", received=rel) from None
        except Exception as e:
            return error_response(e)
        media, headers = download_headers(m.media_type, rel, m.size)
        return StreamingResponse(self._chunks(m), media_type=media, headers=headers)

    async def _stream(self, owner: str, rel: str) -> Response:
        try:
            m = await self.c.call(self.store.get_manifest, owner, rel)
        except NotFound:
            kind = "logged model" if owner.startswith("m-") else "run"
            raise NotFound(f"No artifact {rel!r} in {kind} {owner}", field="path",
                           received=rel) from None
        media, headers = download_headers(m.media_type, rel, m.size)
        return StreamingResponse(self._chunks(m), media_type=media, headers=headers)

    async def model_file(self, request: Request, model_id: str) -> Response:
        """GET /logged-models/<id>/artifacts/files?artifact_file_path=...: one file."""
        try:
            a = await Args.read(request)
            doc = await self.c.call(self.c.docs.get_model, model_id)
            if doc.get("deleted"):
                raise NotFound(f"Logged model with ID '{model_id}' not found.",
                               field="model_id", received=model_id)
            path = _relative_path(a.required("artifact_file_path"), "artifact_file_path")
            return await self._stream(doc["model_id"], path)
        except Exception as e:
            return error_response(e)

    async def get_artifact(self, request: Request) -> Response:
        """GET /get-artifact?run_uuid=&path= (MLflow's UI file route)."""
        try:
            a = await Args.read(request)
            run_id = check_run(a.required("run_id", "run_uuid"))
            await self.c.call(self.c.run_info, run_id)
            return await self._stream(run_id, _relative_path(a.required("path"), "path"))
        except Exception as e:
            return error_response(e)

    async def upload_artifact(self, request: Request) -> Response:
        """POST /upload-artifact?run_uuid=&path= with the file as the body (MLflow's UI)."""
        try:
            q = request.query_params
            run_id = q.get("run_uuid") or q.get("run_id") or ""
            if not run_id:
                raise InvalidArgument("Request must specify run_uuid.", field="run_uuid")
            path = q.get("path") or ""
            if not path:
                raise InvalidArgument("Request must specify path.", field="path")
            path = _relative_path(path, "path")
            check_run(run_id)
            await self.c.call(self.c.run_info, run_id)
            tmp = await self._spool(request)
            try:
                if os.path.getsize(tmp) == 0:
                    raise InvalidArgument("Request must specify data.", field="data")
                await self.c.call(self.store.put_file, run_id, path, tmp, None)
            finally:
                os.unlink(tmp)
        except Exception as e:
            return error_response(e)
        return json_response({})

    # --------------------------------------------------------------- writes
    async def _spool(self, request: Request) -> str:
        fd, tmp = tempfile.mkstemp(prefix="mf-mlflow-upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    f.write(chunk)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    async def upload(self, request: Request, artifact_path: str) -> Response:
        try:
            owner, rel = self.c.resolve_proxy_path(artifact_path)
            if not rel:
                raise InvalidArgument("artifact path must name a file", field="path")
            tmp = await self._spool(request)
            try:
                media = request.headers.get("content-type") or None
                if media in ("application/octet-stream", "application/x-www-form-urlencoded"):
                    media = None
                await self.c.call(self.store.put_file, owner, rel, tmp, media)
            finally:
                os.unlink(tmp)
        except Exception as e:
            return error_response(e)
        return Response(status_code=200)

    def _delete(self, owner: str, rel: str) -> None:
        blobs = self.store.blobs
        prefix = mk.path_prefix(owner, rel) if rel else mk.run_prefix(owner)
        keys = [b.key for b in blobs.list(prefix) if mk.parse_manifest_key(b.key) is not None]
        if not keys:
            raise NotFound(f"No artifact at {rel!r}", field="path", received=rel)
        for k in keys:
            blobs.delete(k)  # chunks stay until GC finds them unreferenced

    async def delete(self, request: Request, artifact_path: str) -> Response:
        try:
            owner, rel = self.c.resolve_proxy_path(artifact_path)
            await self.c.call(self._delete, owner, rel)
        except Exception as e:
            return error_response(e)
        return Response(status_code=200)

    # ------------------------------------------------------------ multipart
    async def mpu_create(self, a: Args) -> dict[str, Any]:
        owner, rel = self.c.resolve_proxy_path(a.required("artifact_path"))
        name = posixpath.basename(a.required("path"))
        num_parts = a.integer("num_parts", 1) or 1
        if not 1 <= num_parts <= _MAX_PARTS:
            raise InvalidArgument(f"num_parts must be in [1, {_MAX_PARTS}]", field="num_parts",
                                  limit=_MAX_PARTS, received=num_parts)
        upload_id = uuid.uuid4().hex
        # The upload id is bound to its creator and target: parts, complete and abort
        # are refused for anyone else or any other path. The id itself is no
        # capability; each part URL carries its own signed, expiring token (_Binding).
        binding = _Binding(owner, rel, name, current_user() or "", secrets.token_hex(32),
                           int(time.time()) + PART_TOKEN_TTL_S)
        await self.c.call(self.store.blobs.put, _binding_key(upload_id), binding.encode())
        base = a.base_url.rstrip("/")
        creds = [{"url": f"{base}/api/2.0/mlflow-artifacts/mpu/part/{upload_id}/{n}"
                         f"?expires={binding.expires}&token={binding.part_token(upload_id, n)}",
                  "part_number": n, "headers": {}} for n in range(1, num_parts + 1)]
        return {"upload_id": upload_id, "credentials": creds}

    async def _check_binding(self, upload_id: str, target: tuple[str, str, str] | None,
                             part: tuple[int, str, str] | None = None) -> None:
        """The caller created `upload_id` (for `target` = (owner, rel, name) when given).

        `part` = (part_number, expires, token) from a signed part URL: a valid,
        unexpired token for exactly this upload and part stands in for the creator's
        credentials (MLflow's client sends parts without them).
        """
        if len(upload_id) != 32 or not all(ch in "0123456789abcdef" for ch in upload_id):
            raise InvalidArgument("unknown upload_id", field="upload_id",
                                  received=upload_id[:64])
        try:
            raw = await self.c.call(self.store.blobs.get, _binding_key(upload_id))
        except NotFound:
            raise NotFound("unknown upload_id", field="upload_id", received=upload_id) from None
        b = _Binding.decode(raw)
        if part is not None and part[2]:
            n, expires, token = part
            if not b.secret or expires != str(b.expires) or \
                    not hmac.compare_digest(token, b.part_token(upload_id, n)):
                raise PermissionDenied("this part URL's token is not valid for this upload "
                                       "and part", field="token")
            if time.time() > b.expires:
                raise PermissionDenied("this part URL has expired (multipart part URLs are "
                                       f"valid for {PART_TOKEN_TTL_S} s); start a new upload",
                                       field="expires")
        elif b.user != (current_user() or ""):
            raise PermissionDenied("this multipart upload was created by another caller",
                                   field="upload_id")
        if target is not None and (b.owner, b.rel, b.name) != target:
            raise InvalidArgument("upload_id belongs to another artifact path",
                                  field="upload_id", received=upload_id)

    async def mpu_part(self, request: Request, upload_id: str, part_number: int) -> Response:
        try:
            if not 1 <= part_number <= _MAX_PARTS:
                raise InvalidArgument("part_number out of range", field="part_number")
            q = request.query_params
            await self._check_binding(upload_id, None, (part_number, q.get("expires", ""),
                                                        q.get("token", "")))
            etag = await self._stream_part(request, upload_id, part_number)
        except Exception as e:
            return error_response(e)
        return Response(status_code=200, headers={"ETag": etag})

    def _part_pieces(self, upload_id: str, part_number: int) -> list[str]:
        prefix = f"{_MPU}{upload_id}/{part_number:05d}/"
        return sorted(b.key for b in self.store.blobs.list(prefix))

    async def _stream_part(self, request: Request, upload_id: str, part_number: int) -> str:
        """Store one part's body as pieces of <= MPU_SPOOL_BYTES (never the whole body in
        memory); 413 past MPU_MAX_PART_BYTES. A part sent again replaces the earlier one.
        Returns the part's ETag."""
        limit = MPU_MAX_PART_BYTES

        def too_large(received: str) -> MlflowApiError:
            return MlflowApiError(
                f"multipart part {part_number} is larger than the limit of {limit} bytes "
                f"per part (received {received}); upload with smaller parts "
                "(MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE)", "INVALID_PARAMETER_VALUE", 413)

        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(f"Content-Length {declared}")
        for key in await self.c.call(self._part_pieces, upload_id, part_number):
            await self.c.call(self.store.blobs.delete, key)
        prefix = f"{_MPU}{upload_id}/{part_number:05d}/"
        digest, total, seq, buf = hashlib.sha256(), 0, 0, bytearray()

        async def flush() -> None:
            nonlocal seq, buf
            await self.c.call(self.store.blobs.put, f"{prefix}{seq:06d}", bytes(buf))
            seq, buf = seq + 1, bytearray()

        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise too_large(f"more than {limit} bytes")
                digest.update(chunk)
                buf += chunk
                while len(buf) >= MPU_SPOOL_BYTES:
                    rest = buf[MPU_SPOOL_BYTES:]
                    del buf[MPU_SPOOL_BYTES:]
                    await flush()
                    buf = rest
            if buf or seq == 0:
                await flush()
        except BaseException:
            for key in await self.c.call(self._part_pieces, upload_id, part_number):
                await self.c.call(self.store.blobs.delete, key)
            raise
        return digest.hexdigest()[:32]

    def _complete(self, owner: str, rel: str, upload_id: str, numbers: list[int]) -> None:
        blobs = self.store.blobs
        fd, tmp = tempfile.mkstemp(prefix="mf-mlflow-mpu-")
        try:
            with os.fdopen(fd, "wb") as f:
                for n in numbers:
                    pieces = self._part_pieces(upload_id, n)
                    if not pieces:
                        raise InvalidArgument(f"part {n} of upload {upload_id} was never "
                                              "uploaded", field="parts", received=n)
                    for key in pieces:
                        f.write(blobs.get(key))
            self.store.put_file(owner, rel, tmp)
        finally:
            os.unlink(tmp)
        self._abort(upload_id)

    def _abort(self, upload_id: str) -> None:
        for b in list(self.store.blobs.list(f"{_MPU}{upload_id}/")):
            self.store.blobs.delete(b.key)

    async def mpu_complete(self, a: Args) -> dict[str, Any]:
        owner, rel = self.c.resolve_proxy_path(a.required("artifact_path"))
        name = posixpath.basename(a.required("path"))
        numbers = sorted(int(p["part_number"]) for p in a.items("parts"))
        if not numbers or numbers != list(range(1, len(numbers) + 1)):
            raise InvalidArgument("parts must be numbered 1..n without gaps", field="parts")
        upload_id = a.required("upload_id")
        await self._check_binding(upload_id, (owner, rel, name))
        await self.c.call(self._complete, owner, posixpath.join(rel, name) if rel else name,
                          upload_id, numbers)
        return {}

    async def mpu_abort(self, a: Args) -> dict[str, Any]:
        owner, rel = self.c.resolve_proxy_path(a.required("artifact_path"))
        name = posixpath.basename(a.required("path"))
        upload_id = a.required("upload_id")
        await self._check_binding(upload_id, (owner, rel, name))
        await self.c.call(self._abort, upload_id)
        return {}

    async def presigned(self, a: Args) -> dict[str, Any]:
        raise MlflowApiError("Presigned downloads are not supported by this server; "
                             "artifacts are proxied", "NOT_IMPLEMENTED", 501)


def add_routes(routes: MlflowRoutes, c: Compat) -> None:
    h = ArtifactRoutes(c)
    routes.add("GET", "/artifacts/list", h.list_run)
    r = routes.router

    async def part_endpoint(request: Request, upload_id: str, part_number: int) -> Response:
        return await h.mpu_part(request, upload_id, part_number)

    # MLflow's client sends parts without credentials: a request carrying a part token
    # passes the auth guard, and the handler admits it only if the token is valid.
    part_endpoint.mf_public = _has_part_token  # type: ignore[attr-defined]
    async def model_file(request: Request, model_id: str) -> Response:
        return await h.model_file(request, model_id)

    async def upload_artifact(request: Request) -> Response:
        return await h.upload_artifact(request)

    async def get_artifact(request: Request) -> Response:
        return await h.get_artifact(request)

    async def query_view(request: Request) -> Args:
        """What the auth guard decides on: query and path parameters (the body of
        upload-artifact is the file, never parsed)."""
        return Args(request.query_params, {}, dict(request.path_params))

    for fn in (model_file, upload_artifact, get_artifact):
        fn.mf_parse = query_view  # type: ignore[attr-defined, union-attr]
    model_file.mf_rule = logged_model_param(Permission.READ)  # type: ignore[attr-defined]
    upload_artifact.mf_rule = run_param(Permission.EDIT, "run_uuid", "run_id")  # type: ignore[attr-defined]
    get_artifact.mf_rule = run_param(Permission.READ, "run_uuid", "run_id")  # type: ignore[attr-defined]
    for prefix in API_PREFIXES:
        r.add_api_route(prefix + "/logged-models/{model_id}/artifacts/files", model_file,
                        methods=["GET"], include_in_schema=False)
        r.add_api_route(prefix + "/upload-artifact", upload_artifact, methods=["POST"],
                        include_in_schema=False)
    r.add_api_route("/get-artifact", get_artifact, methods=["GET"], include_in_schema=False)
    for prefix in ARTIFACT_PREFIXES:
        routes.add("GET", "/artifacts", h.list_proxy, prefixes=[prefix])
        r.add_api_route(prefix + "/artifacts/{artifact_path:path}", h.download,
                        methods=["GET"], include_in_schema=False)
        r.add_api_route(prefix + "/artifacts/{artifact_path:path}", h.upload,
                        methods=["PUT"], include_in_schema=False)
        r.add_api_route(prefix + "/artifacts/{artifact_path:path}", h.delete,
                        methods=["DELETE"], include_in_schema=False)
        r.add_api_route(prefix + "/mpu/part/{upload_id}/{part_number}", part_endpoint,
                        methods=["PUT"], include_in_schema=False)
        for op, handler in (("create", h.mpu_create), ("complete", h.mpu_complete),
                            ("abort", h.mpu_abort)):
            routes.add("POST", f"/mpu/{op}/{{artifact_path:path}}", handler, prefixes=[prefix])
        routes.add("GET", "/presigned/{artifact_path:path}", h.presigned, prefixes=[prefix])
