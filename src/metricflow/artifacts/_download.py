"""Parallel, verified downloads of artifact files and directories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow.artifacts._codec import decode_chunk, hash_bytes
from metricflow.artifacts._manifest import ChunkRef, Manifest
from metricflow.artifacts._progress import Progress
from metricflow.artifacts._transfer import _rpc
from metricflow.errors import InvalidArgument, InvalidState

BATCH_BYTES = 32 << 20  # raw bytes of chunks per DownloadChunks stream


RUN_ID_METADATA = "mf-run-id"
"""Chunk reads name the run whose manifest listed the chunks (the server checks both)."""


@dataclass(frozen=True)
class _Job:
    fd: int
    offsets: tuple[int, ...]
    chunks: tuple[ChunkRef, ...]
    run_id: str


def _safe_target(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise InvalidArgument("artifact path escapes the destination", field="path",
                              received=rel)
    return target


class Downloader:
    """Fetches chunks through DownloadChunks streams or presigned GETs, W in parallel.

    Every chunk is checked against its BLAKE3 name, and every file against its
    whole-file hash, before the file is renamed into place.
    """

    def __init__(self, stub: object, workers: int = 4, progress: bool | None = None,
                 use_presigned: bool = False) -> None:
        self.stub = stub
        self.workers = max(1, workers)
        self.progress = progress
        self.use_presigned = use_presigned

    def _fetch_stream(self, chunks: Sequence[ChunkRef], run_id: str) -> list[bytes]:
        req = pb.DownloadChunksRequest(hashes=[c.digest for c in chunks])
        out: list[bytes] = []
        buf: list[bytes] = []
        md = ((RUN_ID_METADATA, run_id),)

        def consume() -> None:
            for part in self.stub.DownloadChunks(req, metadata=md):  # type: ignore[attr-defined]
                buf.append(part.data)
                if part.last:
                    out.append(b"".join(buf))
                    buf.clear()

        _rpc(consume)
        return out

    def _fetch_presigned(self, chunks: Sequence[ChunkRef], run_id: str) -> list[bytes]:
        import requests

        req = pb.PresignDownloadsRequest(hashes=[c.digest for c in chunks])
        urls = _rpc(self.stub.PresignDownloads, req,  # type: ignore[attr-defined]
                    metadata=((RUN_ID_METADATA, run_id),)).urls
        if len(urls) != len(chunks):
            return self._fetch_stream(chunks, run_id)
        out = []
        for u in urls:
            r = requests.get(u, timeout=300)
            if r.status_code != 200:
                raise InvalidState(f"presigned GET failed with HTTP {r.status_code}")
            out.append(r.content)
        return out

    def _run_job(self, job: _Job, bar: Progress) -> None:
        fetch = self._fetch_presigned if self.use_presigned else self._fetch_stream
        stored = fetch(job.chunks, job.run_id)
        if len(stored) != len(job.chunks):
            raise InvalidState("server returned fewer chunks than asked", field="chunks")
        for off, c, data in zip(job.offsets, job.chunks, stored, strict=True):
            raw = decode_chunk(data)
            if len(raw) != c.size or hash_bytes(raw) != c.digest:
                raise InvalidState("downloaded chunk does not match its hash", field="chunk",
                                   received=c.digest.hex())
            os.pwrite(job.fd, raw, off)
            bar.update(c.size)

    def download(self, manifests: Sequence[Manifest], root: Path, strip: str) -> list[Path]:
        """Write each manifest's file to root/<path minus `strip`>; returns the paths."""
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        files: list[tuple[Manifest, Path, Path, int]] = []
        jobs: list[_Job] = []
        try:
            for m in manifests:
                rel = m.path[len(strip):].lstrip("/") if strip else m.path
                target = _safe_target(root, rel or os.path.basename(m.path))
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                files.append((m, target, tmp, fd))
                os.ftruncate(fd, m.size)
                off, batch, offs, size = 0, [], [], 0
                for c in m.chunks:
                    batch.append(c)
                    offs.append(off)
                    off += c.size
                    size += c.size
                    if size >= BATCH_BYTES:
                        jobs.append(_Job(fd, tuple(offs), tuple(batch), m.run_id))
                        batch, offs, size = [], [], 0
                if batch:
                    jobs.append(_Job(fd, tuple(offs), tuple(batch), m.run_id))
            bar = Progress(sum(m.size for m in manifests), "download", self.progress)
            try:
                with ThreadPoolExecutor(self.workers) as pool:
                    for f in [pool.submit(self._run_job, j, bar) for j in jobs]:
                        f.result()
            finally:
                bar.close()
            out = []
            for m, target, tmp, fd in files:
                _verify_whole(fd, m)
                os.replace(tmp, target)
                out.append(target)
            return out
        finally:
            for _m, _t, tmp, fd in files:
                os.close(fd)
                tmp.unlink(missing_ok=True)


def _verify_whole(fd: int, m: Manifest) -> None:
    import blake3

    h = blake3.blake3()
    off = 0
    while off < m.size:
        data = os.pread(fd, min(8 << 20, m.size - off), off)
        if not data:
            break
        h.update(data)
        off += len(data)
    if off != m.size or h.digest() != m.file_hash:
        raise InvalidState("downloaded file does not match its whole-file hash", field="path",
                           received=m.path)


