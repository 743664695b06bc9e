"""grpc.aio servicer for metricflow.artifacts.v1.ArtifactService."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2_grpc as pb_grpc
from metricflow.artifacts._manifest import ChunkRef
from metricflow.artifacts._paths import validate_run_id
from metricflow.artifacts._scope import DEFAULT_SCOPE, scope_of_experiment
from metricflow.artifacts._stats import dedup_stats
from metricflow.artifacts._store import _MAX_STORED, ArtifactStore
from metricflow.artifacts._wire import PART_BYTES, error_metadata, manifest_to_pb
from metricflow.errors import InvalidArgument, MetricflowError, NotFound, PermissionDenied

log = logging.getLogger(__name__)


def _rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn MetricflowError into a gRPC status with the code in trailing metadata."""

    @functools.wraps(fn)
    async def wrapper(self: ArtifactServicer, request: Any, context: Any) -> Any:
        try:
            return await fn(self, request, context)
        except MetricflowError as e:
            context.set_trailing_metadata(error_metadata(e))
            await context.abort(grpc.StatusCode[e.grpc_status_name], e.message)
        except (grpc.aio.AbortError, grpc.RpcError, asyncio.CancelledError):
            raise
        except Exception as e:  # one bad request must not look like a crash
            log.exception("unhandled error in %s", fn.__name__)
            err = MetricflowError(f"internal error: {type(e).__name__}")
            context.set_trailing_metadata(error_metadata(err))
            await context.abort(grpc.StatusCode.INTERNAL, err.message)

    return wrapper


RUN_ID_METADATA = "mf-run-id"
"""Metadata naming the run a chunk read is for (see `RunChunks`)."""


def _run_of(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == RUN_ID_METADATA and isinstance(value, str):
            return value
    return ""


def _run_scope(store: ArtifactStore, run_id: str, *, check_edit: bool) -> str:
    """The reference scope (experiment) of `run_id` for the current caller (blocking).

    Under the auth guard the scope comes from the same run -> experiment answer the
    guard decides permissions with, and `check_edit` demands EDIT on the run (chunk
    upload RPCs carry the run only in metadata, so the guard cannot check it). An
    admin naming a run the data plane does not know gets the store's own answer.
    Without a guard the store's lookup decides (DEFAULT_SCOPE when it has none).
    """
    from metricflow.auth import current

    validate_run_id(run_id)
    cur = current()
    if cur is None or cur[1] is None:
        return store.scope_of(run_id)
    principal, authz = cur
    if check_edit and not principal.admin:
        from metricflow.auth import Need, Permission

        authz.check(principal, [Need("run", run_id, Permission.EDIT)])
    exp = authz.experiments_of_runs([run_id]).get(run_id)
    if exp is not None:
        return scope_of_experiment(exp)
    if principal.admin:
        return store.scope_of(run_id)
    raise NotFound(f"run {run_id!r} does not exist", field="run_id", received=run_id)


def _scoping_active(store: ArtifactStore) -> bool:
    from metricflow.auth import current

    cur = current()
    return store.scopes.enabled or (cur is not None and cur[1] is not None)


def _caller_is_admin() -> bool:
    """True when the guard admitted an admin (or auth is off); False outside a request."""
    from metricflow.auth import current

    cur = current()
    return cur is not None and cur[0].admin


class RunChunks:
    """Digests referenced by a run's manifests, for run-scoped chunk reads.

    The guard checked READ on the run named in `mf-run-id`; this checks that every
    requested chunk belongs to that run, so a hash learned elsewhere cannot be read
    through a readable run. Bounded LRU of runs; a run's set only grows between GCs
    (manifests are immutable), so a miss reloads it once before refusing.
    """

    def __init__(self, store: ArtifactStore, max_runs: int = 256) -> None:
        self.store, self.max_runs = store, max_runs
        self._sets: OrderedDict[str, frozenset[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _load(self, run_id: str) -> frozenset[bytes]:
        digests = frozenset(c.digest for m in self.store.iter_manifests(run_id)
                            for c in m.chunks)
        with self._lock:
            self._sets[run_id] = digests
            self._sets.move_to_end(run_id)
            while len(self._sets) > self.max_runs:
                self._sets.popitem(last=False)
        return digests

    def check(self, run_id: str, digests: list[bytes]) -> None:
        """PermissionDenied unless every digest is in one of `run_id`'s manifests."""
        validate_run_id(run_id)  # the artifact store's owner-id rule (it becomes a key)
        with self._lock:
            have = self._sets.get(run_id)
        if have is None or not have.issuperset(digests):
            have = self._load(run_id)
        stray = [d for d in digests if d not in have]
        if stray:
            raise PermissionDenied(
                f"{len(stray)} requested chunk(s) are not part of run {run_id}'s artifacts "
                f"(first: {stray[0].hex()[:16]}...)", field="hashes", received=len(stray))


class ArtifactServicer(pb_grpc.ArtifactServiceServicer):
    """Serves one ArtifactStore. Blocking store calls run in worker threads."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.run_chunks = RunChunks(store)

    async def _check_chunk_read(self, context: Any, digests: list[bytes]) -> None:
        """Chunk reads are tied to a run the caller may read (admins may read any chunk)."""
        run_id = _run_of(context)
        if run_id:
            await self._call(self.run_chunks.check, run_id, digests)
        elif not _caller_is_admin():
            raise PermissionDenied(f"chunk reads must name their run in the "
                                   f"{RUN_ID_METADATA!r} metadata", field=RUN_ID_METADATA)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def _upload_scope_sync(self, run_id: str) -> str:
        if not run_id:
            if _scoping_active(self.store):
                raise InvalidArgument(
                    f"chunk uploads must name their run in the {RUN_ID_METADATA!r} metadata "
                    "(chunk references are scoped by experiment)", field=RUN_ID_METADATA)
            return DEFAULT_SCOPE
        return _run_scope(self.store, run_id, check_edit=True)

    async def _upload_scope(self, context: Any) -> str:
        """Scope that chunk uploads and presence checks of this call apply to."""
        return str(await self._call(self._upload_scope_sync, _run_of(context)))

    @_rpc
    async def MissingChunks(self, request: pb.MissingChunksRequest, context: Any) -> Any:
        scope = await self._upload_scope(context)
        missing = await self._call(self.store.missing_chunks,
                                   [bytes(h) for h in request.hashes], scope)
        return pb.MissingChunksResponse(missing=missing, direct_upload=self.store.direct_upload)

    async def UploadChunks(self, request_iterator: AsyncIterator[pb.ChunkPart],
                           context: Any) -> Any:
        accepted: list[bytes] = []
        stored = 0
        buf: list[bytes] = []
        size = 0
        digest = b""
        try:
            scope = await self._upload_scope(context)
            async for part in request_iterator:
                if not buf and not digest:
                    digest = bytes(part.hash)
                size += len(part.data)
                if size > _MAX_STORED:
                    raise InvalidArgument("chunk too large", field="chunk", limit=_MAX_STORED,
                                          received=size)
                buf.append(part.data)
                if part.last:
                    stored += await self._call(self.store.put_chunk, digest, b"".join(buf),
                                               scope)
                    accepted.append(digest)
                    buf, size, digest = [], 0, b""
            if buf:
                raise InvalidArgument("stream ended inside a chunk", field="last")
        except MetricflowError as e:
            context.set_trailing_metadata(error_metadata(e))
            await context.abort(grpc.StatusCode[e.grpc_status_name], e.message)
        return pb.UploadChunksResponse(accepted=accepted, stored_bytes=stored)

    @_rpc
    async def PresignUploads(self, request: pb.PresignUploadsRequest, context: Any) -> Any:
        urls = await self._call(self.store.presign_uploads, request.upload_id,
                                [bytes(h) for h in request.hashes])
        return pb.PresignUploadsResponse(urls=urls,
                                         expires_in_s=self.store.config.presign_expires_s)

    @_rpc
    async def FinalizeUploads(self, request: pb.FinalizeUploadsRequest, context: Any) -> Any:
        scope = await self._upload_scope(context)
        ok, bad = await self._call(self.store.finalize_uploads, request.upload_id,
                                   [bytes(h) for h in request.hashes], scope)
        return pb.FinalizeUploadsResponse(accepted=ok, rejected=bad)

    @_rpc
    async def CommitManifest(self, request: pb.CommitManifestRequest, context: Any) -> Any:
        refs = [ChunkRef(bytes(c.hash), c.size) for c in request.chunks]
        # The guard checked EDIT on request.run_id; chunks count only if its experiment
        # holds them (a hash learned elsewhere is reported missing, not committed).
        scope = await self._call(functools.partial(_run_scope, self.store, request.run_id,
                                                   check_edit=False))
        res = await self._call(functools.partial(
            self.store.commit, request.run_id, request.path, request.size,
            bytes(request.file_hash), refs, request.media_type or None, scope=scope))
        if isinstance(res, list):
            return pb.CommitManifestResponse(missing=res)
        return pb.CommitManifestResponse(manifest=manifest_to_pb(res))

    @_rpc
    async def ListArtifacts(self, request: pb.ListArtifactsRequest, context: Any) -> Any:
        entries = await self._call(functools.partial(
            self.store.list_artifacts, request.run_id, request.path or None,
            recursive=request.recursive))
        return pb.ListArtifactsResponse(files=[
            pb.ArtifactInfo(path=e.path, is_dir=e.is_dir, size=e.size, version=e.version,
                            file_hash=e.file_hash) for e in entries])

    @_rpc
    async def GetManifest(self, request: pb.GetManifestRequest, context: Any) -> Any:
        m = await self._call(self.store.get_manifest, request.run_id, request.path,
                             request.version)
        return manifest_to_pb(m)

    async def DownloadChunks(self, request: pb.DownloadChunksRequest,
                             context: Any) -> AsyncIterator[pb.ChunkPart]:
        try:
            await self._check_chunk_read(context, [bytes(h) for h in request.hashes])
            for h in request.hashes:
                data = await self._call(self.store.read_chunk, bytes(h))
                mv = memoryview(data)
                for off in range(0, max(len(mv), 1), PART_BYTES):
                    yield pb.ChunkPart(hash=bytes(h) if off == 0 else b"",
                                       data=bytes(mv[off:off + PART_BYTES]),
                                       last=off + PART_BYTES >= len(mv))
        except MetricflowError as e:
            context.set_trailing_metadata(error_metadata(e))
            await context.abort(grpc.StatusCode[e.grpc_status_name], e.message)

    @_rpc
    async def PresignDownloads(self, request: pb.PresignDownloadsRequest, context: Any) -> Any:
        digests = [bytes(h) for h in request.hashes]
        await self._check_chunk_read(context, digests)
        urls = await self._call(self.store.presign_downloads, digests)
        return pb.PresignDownloadsResponse(urls=urls or [],
                                           expires_in_s=self.store.config.presign_expires_s)

    @_rpc
    async def DedupStats(self, request: pb.DedupStatsRequest, context: Any) -> Any:
        s = await self._call(dedup_stats, self.store, request.run_id or None)
        return pb.DedupStatsResponse(logical_bytes=s.logical_bytes, stored_bytes=s.stored_bytes,
                                     chunks=s.chunks, manifests=s.manifests, ratio=s.ratio)


def add_to_server(server: grpc.aio.Server, artifact_store: ArtifactStore) -> ArtifactServicer:
    """Register an ArtifactServicer for `artifact_store` on a grpc.aio server; returns it."""
    servicer = ArtifactServicer(artifact_store)
    pb_grpc.add_ArtifactServiceServicer_to_server(servicer, server)
    return servicer
