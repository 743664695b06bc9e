"""ArtifactStore: content-addressed chunks and versioned manifests on any BlobStore."""

from __future__ import annotations

import json
import mimetypes
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from metricflow.artifacts import _manifest as mk
from metricflow.artifacts._blob import BlobInfo, BlobStore
from metricflow.artifacts._codec import HASH_LEN, HEADER_LEN, MAX_CHUNK, verify_chunk
from metricflow.artifacts._manifest import ArtifactEntry, ChunkRef, Manifest
from metricflow.artifacts._paths import normalize_path, validate_run_id
from metricflow.artifacts._scope import DEFAULT_SCOPE, RunExperiments, RunScopes
from metricflow.errors import Conflict, InvalidArgument, InvalidState, NotFound, Unavailable

_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAX_STORED = MAX_CHUNK + HEADER_LEN + (64 << 10)  # zstd never grows much past raw


@dataclass(frozen=True)
class ArtifactStoreConfig:
    """Tuning of the CAS layer."""

    direct_upload: bool = True
    """Hand out presigned PUT URLs when the blob store supports them (S3)."""
    presign_expires_s: int = 900
    """Lifetime of presigned URLs; must stay below the GC grace period."""
    commit_fence_s: float = 30.0
    """A commit gives up if more than this passes between its GC-lock check and its
    manifest write; GC waits this long after taking its lock (see _gc.py)."""
    gc_lock_ttl_s: float = 6 * 3600.0
    """A GC lock older than this is treated as abandoned."""
    io_threads: int = 16
    """Parallel HEAD/GET requests for batch operations."""


@dataclass(frozen=True)
class GcLock:
    """An active GC sweep: chunks older than `cutoff` may be deleted while it holds."""

    mtime: float
    cutoff: float


def _hex_list(ds: Iterable[bytes]) -> list[str]:
    return [d.hex() for d in ds]


class ArtifactStore:
    """Chunk store plus per-run, per-path versioned manifests on top of a BlobStore.

    Chunk references are scoped by experiment (see _scope.py): a chunk is present
    for a scope only if the scope holds a marker for it, written when the chunk's
    bytes were verified for that scope. Methods that take `scope` default to
    DEFAULT_SCOPE; calls that name a run default to that run's scope.

    Args:
        blobs: where objects live.
        config: tuning.
        run_experiments: run -> experiment lookup; None = a single default scope
            (tests and tools). The served gRPC paths pass the caller's scope.
    """

    def __init__(self, blobs: BlobStore, config: ArtifactStoreConfig | None = None, *,
                 run_experiments: RunExperiments | None = None) -> None:
        self.blobs = blobs
        self.config = config or ArtifactStoreConfig()
        self.scopes = RunScopes(run_experiments)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._presign: bool | None = None

    def close(self) -> None:
        """Stop the I/O thread pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _map(self, fn, items: Sequence):  # type: ignore[no-untyped-def]
        if len(items) <= 2:
            return [fn(x) for x in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.io_threads,
                                                thread_name_prefix="mf-artifacts")
        return list(self._pool.map(fn, items))

    @property
    def direct_upload(self) -> bool:
        """Whether clients should PUT chunks to presigned URLs instead of the service."""
        if self._presign is None:
            self._presign = self.blobs.presign("probe", "GET", 60) is not None
        return self.config.direct_upload and self._presign

    # ---- chunks -------------------------------------------------------------------------
    @staticmethod
    def _check_digests(digests: Sequence[bytes]) -> None:
        for d in digests:
            if len(d) != HASH_LEN:
                raise InvalidArgument(f"chunk hashes are {HASH_LEN} bytes", field="hash",
                                      limit=HASH_LEN, received=len(d))

    def scope_of(self, run_id: str) -> str:
        """The reference scope of a run (its experiment; DEFAULT_SCOPE without a lookup)."""
        return self.scopes.scope(validate_run_id(run_id))

    def missing_chunks(self, digests: Sequence[bytes], scope: str = DEFAULT_SCOPE
                       ) -> list[bytes]:
        """The subset of `digests` that `scope` holds no reference marker for, in request
        order, without duplicates: the chunks a client of that scope must send.

        Only markers are checked (one HEAD per chunk). A marker whose chunk has since
        been deleted makes the commit report the chunk missing, and the client re-sends it.
        """
        self._check_digests(digests)
        uniq = list(dict.fromkeys(digests))
        infos = self._map(lambda d: self.blobs.stat(mk.ref_key(d, scope)), uniq)
        return [d for d, i in zip(uniq, infos, strict=True) if i is None]

    def put_chunk(self, digest: bytes, stored: bytes, scope: str = DEFAULT_SCOPE) -> int:
        """Verify stored-encoding bytes against `digest`, store them once, and record that
        `scope` holds the chunk (its reference marker).

        Returns the stored size. Raises InvalidArgument for a corrupt chunk. The bytes
        are verified even when the chunk exists: the marker is the scope's proof that
        one of its writers had them.
        """
        self._check_digests([digest])
        if len(stored) > _MAX_STORED:
            raise InvalidArgument("chunk too large", field="chunk", limit=_MAX_STORED,
                                  received=len(stored))
        verify_chunk(digest, stored)
        key = mk.chunk_key(digest)
        # An existing chunk is never overwritten: rewriting would refresh its mtime
        # behind the GC's back (see _gc.py).
        if self.blobs.stat(key) is None:
            self.blobs.put(key, stored, if_absent=True)
        # After the chunk, never before: a marker claims the bytes are stored. Losing
        # one in a crash is harmless (the chunk is sent again), so it skips the fsyncs.
        self.blobs.put(mk.ref_key(digest, scope), b"", if_absent=True, durable=False)
        return len(stored)

    def read_chunk(self, digest: bytes) -> bytes:
        """The stored encoding of one chunk (NotFound when absent)."""
        self._check_digests([digest])
        return self.blobs.get(mk.chunk_key(digest))

    def presign_uploads(self, upload_id: str, digests: Sequence[bytes]) -> list[str]:
        """Presigned PUT URLs into a staging area, one per digest."""
        if not self.direct_upload:
            raise InvalidState("this store takes chunk bytes through the service",
                               field="direct_upload")
        if not _UPLOAD_ID.match(upload_id or ""):
            raise InvalidArgument("upload_id must be 8-64 of [A-Za-z0-9_-]", field="upload_id",
                                  received=(upload_id or "")[:80])
        self._check_digests(digests)
        return [str(self.blobs.presign(mk.staging_key(upload_id, d), "PUT",
                                       self.config.presign_expires_s)) for d in digests]

    def finalize_uploads(self, upload_id: str, digests: Sequence[bytes],
                         scope: str = DEFAULT_SCOPE) -> tuple[list[bytes], list[bytes]]:
        """Re-read each staged chunk, check its hash, promote it and mark it for `scope`;
        (accepted, rejected). A chunk no longer staged is accepted only if `scope`
        already holds it (a retried finalize)."""
        if not _UPLOAD_ID.match(upload_id or ""):
            raise InvalidArgument("upload_id must be 8-64 of [A-Za-z0-9_-]", field="upload_id",
                                  received=(upload_id or "")[:80])
        self._check_digests(digests)

        def one(d: bytes) -> bool:
            skey = mk.staging_key(upload_id, d)
            try:
                data = self.blobs.get(skey)
            except NotFound:
                return (self.blobs.stat(mk.ref_key(d, scope)) is not None
                        and self.blobs.stat(mk.chunk_key(d)) is not None)
            try:
                self.put_chunk(d, data, scope)
                return True
            except InvalidArgument:
                return False
            finally:
                self.blobs.delete(skey)

        ok = self._map(one, list(digests))
        return ([d for d, o in zip(digests, ok, strict=True) if o],
                [d for d, o in zip(digests, ok, strict=True) if not o])

    def presign_downloads(self, digests: Sequence[bytes]) -> list[str] | None:
        """Presigned GET URLs for chunks, or None when the blob store has no URLs."""
        self._check_digests(digests)
        urls = [self.blobs.presign(mk.chunk_key(d), "GET", self.config.presign_expires_s)
                for d in digests]
        return None if any(u is None for u in urls) else [str(u) for u in urls]

    # ---- manifests ----------------------------------------------------------------------
    def gc_lock(self) -> GcLock | None:
        """The active GC sweep lock, if any (abandoned locks are ignored)."""
        info = self.blobs.stat(mk.GC_LOCK)
        if info is None or time.time() - info.mtime > self.config.gc_lock_ttl_s:
            return None
        try:
            body = json.loads(self.blobs.get(mk.GC_LOCK))
        except NotFound:
            return None
        return GcLock(info.mtime, info.mtime - float(body["grace_period_s"]))

    def versions(self, run_id: str, path: str) -> list[int]:
        """Every committed version number of one artifact path, ascending."""
        prefix = mk.path_prefix(run_id, path) + "v/"
        out = []
        for b in self.blobs.list(prefix):
            p = mk.parse_manifest_key(b.key)
            if p is not None and p[1] == path:
                out.append(p[2])
        return sorted(out)

    def _check_tree(self, run_id: str, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if self.versions(run_id, "/".join(parts[:i])):
                raise Conflict("a parent of this path is a file", field="path",
                               received="/".join(parts[:i]))
        for _b in self.blobs.list(mk.path_prefix(run_id, path) + "_"):
            raise Conflict("this path is a directory", field="path", received=path)

    def commit(self, run_id: str, path: str, size: int, file_hash: bytes,
               chunks: Sequence[ChunkRef], media_type: str | None = None, *,
               scope: str | None = None) -> Manifest | list[bytes]:
        """Publish a new version of `path`; returns the Manifest, or the missing chunks.

        A chunk is missing when it is not stored or `scope` (default: the run's scope)
        holds no reference marker for it, so a hash learned elsewhere cannot be
        committed. Nothing is written when chunks are missing. Raises Unavailable
        (retriable) when a GC sweep that may delete an old chunk this file relies on
        is running.
        """
        t0 = time.monotonic()
        validate_run_id(run_id)
        scope = self.scope_of(run_id) if scope is None else scope
        path = normalize_path(path)
        if len(file_hash) != HASH_LEN:
            raise InvalidArgument("file_hash must be 32 bytes", field="file_hash",
                                  received=len(file_hash))
        if sum(c.size for c in chunks) != size:
            raise InvalidArgument("chunk sizes do not add up to the file size", field="size",
                                  received=size)
        lock = self.gc_lock()
        uniq = list(dict.fromkeys(c.digest for c in chunks))
        self._check_digests(uniq)
        stats = self._map(self.blobs.stat, [mk.chunk_key(d) for d in uniq]
                          + [mk.ref_key(d, scope) for d in uniq])
        infos = dict(zip(uniq, stats[:len(uniq)], strict=True))
        missing = [d for d, i, r in zip(uniq, stats[:len(uniq)], stats[len(uniq):], strict=True)
                   if i is None or r is None]
        if missing:
            return missing
        if lock is not None and any(i.mtime < lock.cutoff for i in infos.values() if i):
            raise Unavailable("a GC sweep is running and this file reuses old chunks; retry",
                              retry_after_s=1.0)
        self._check_tree(run_id, path)
        refs = tuple(ChunkRef(c.digest, c.size, infos[c.digest].size)  # type: ignore[union-attr]
                     for c in chunks)
        mt = media_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        for _ in range(20):
            version = (self.versions(run_id, path) or [0])[-1] + 1
            m = Manifest(run_id, path, version, size, file_hash, mt,
                         int(time.time() * 1000), refs)
            if time.monotonic() - t0 > self.config.commit_fence_s:
                raise Unavailable("commit took longer than the GC fence; retry",
                                  limit=self.config.commit_fence_s)
            key = mk.manifest_key(run_id, path, version)
            if self.blobs.put(key, m.to_json(), if_absent=True):
                if time.monotonic() - t0 > self.config.commit_fence_s:
                    # Landed after the fence: a GC that took its lock after our check
                    # may have listed manifests before this one existed and swept its
                    # chunks. Take it back; the client retries (and re-sends chunks).
                    self.blobs.delete(key)
                    raise Unavailable("commit took longer than the GC fence; retry",
                                      limit=self.config.commit_fence_s)
                return m
        raise Conflict("too many concurrent commits to one path", field="path", received=path)

    def get_manifest(self, run_id: str, path: str, version: int = 0) -> Manifest:
        """One manifest version (0 = latest); NotFound when absent."""
        validate_run_id(run_id)
        path = normalize_path(path)
        if version <= 0:
            vs = self.versions(run_id, path)
            if not vs:
                raise NotFound(f"no artifact {path!r} in run {run_id!r}", field="path",
                               received=path)
            version = vs[-1]
        try:
            return Manifest.from_json(self.blobs.get(mk.manifest_key(run_id, path, version)))
        except NotFound:
            raise NotFound(f"no version {version} of {path!r} in run {run_id!r}",
                           field="version", received=version) from None

    def _latest_keys(self, prefix: str) -> dict[tuple[str, str], int]:
        latest: dict[tuple[str, str], int] = {}
        for b in self.blobs.list(prefix):
            p = mk.parse_manifest_key(b.key)
            if p is not None and p[2] > latest.get((p[0], p[1]), 0):
                latest[(p[0], p[1])] = p[2]
        return latest

    def list_artifacts(self, run_id: str, path: str | None = None, *,
                       recursive: bool = False) -> list[ArtifactEntry]:
        """Files (latest version) and sub-directories directly under `path` (or all files
        below it with recursive=True), sorted by path."""
        validate_run_id(run_id)
        base = normalize_path(path or "", allow_empty=True)
        latest = self._latest_keys(mk.path_prefix(run_id, base) if base
                                   else mk.run_prefix(run_id))
        files: list[tuple[str, int]] = []
        dirs: set[str] = set()
        for (_r, p), v in latest.items():
            rel = p[len(base) + 1:] if base else p
            if p == base:
                files.append((p, v))  # `path` names a file: list just that file
            elif recursive or "/" not in rel:
                files.append((p, v))
            else:
                dirs.add(f"{base}/{rel.split('/', 1)[0]}" if base else rel.split("/", 1)[0])
        ms = self._map(lambda pv: self.get_manifest(run_id, pv[0], pv[1]), files)
        out = [ArtifactEntry(m.path, False, m.size, m.version, m.file_hash) for m in ms]
        out += [ArtifactEntry(d, True) for d in dirs]
        return sorted(out, key=lambda e: e.path)

    def iter_manifests(self, run_id: str | None = None) -> Iterator[Manifest]:
        """Every manifest version of one run (or of the whole store)."""
        keys = [b.key for b in self.blobs.list(mk.run_prefix(run_id) if run_id else mk.MANIFESTS)
                if mk.parse_manifest_key(b.key) is not None]
        for i in range(0, len(keys), 256):
            yield from self._map(lambda k: Manifest.from_json(self.blobs.get(k)),
                                 keys[i:i + 256])

    def run_ids(self) -> set[str]:
        """Runs that have at least one manifest."""
        return {p[0] for b in self.blobs.list(mk.MANIFESTS)
                if (p := mk.parse_manifest_key(b.key)) is not None}

    def iter_chunks(self) -> Iterator[tuple[bytes, BlobInfo]]:
        """Every stored chunk with its size and mtime."""
        for b in self.blobs.list(mk.CHUNKS):
            d = mk.digest_from_chunk_key(b.key)
            if d is not None:
                yield d, b

    # ---- embedded convenience (no gRPC) -------------------------------------------------
    def put_file(self, run_id: str, path: str, local: str | os.PathLike[str],
                 media_type: str | None = None) -> Manifest:
        """Chunk, dedupe and commit a local file directly (embedded mode, MLflow proxy).

        The bytes are read here, so the run's scope is marked for every chunk it sends.
        """
        from metricflow.artifacts._codec import digest_file, encode_chunk, iter_spans

        scope = self.scope_of(run_id)
        fd = digest_file(local)
        by_digest = {s.digest: s for s in fd.chunks}
        todo = tuple(by_digest[d] for d in self.missing_chunks(list(by_digest), scope))
        refs = [ChunkRef(s.digest, s.length) for s in fd.chunks]
        for _ in range(3):  # like the client: re-send what the commit reports missing
            for s, raw in zip(todo, iter_spans(local, todo), strict=True):
                self.put_chunk(s.digest, encode_chunk(raw), scope)
            res = self.commit(run_id, path, fd.size, fd.file_hash, refs, media_type,
                              scope=scope)
            if not isinstance(res, list):
                return res
            todo = tuple(by_digest[d] for d in res)
        raise Unavailable("chunks vanished during commit; retry",
                          missing=_hex_list(d.digest for d in todo))

    def read_file(self, run_id: str, path: str, version: int = 0) -> bytes:
        """Whole file bytes, each chunk verified (small files; clients stream instead)."""
        from metricflow.artifacts._codec import decode_chunk, hash_bytes

        m = self.get_manifest(run_id, path, version)
        raws = self._map(lambda c: decode_chunk(self.read_chunk(c.digest)), list(m.chunks))
        for c, r in zip(m.chunks, raws, strict=True):
            if hash_bytes(r) != c.digest:
                raise InvalidState("stored chunk is corrupt", field="chunk",
                                   received=c.digest.hex())
        return b"".join(raws)
