"""Upload and download engines used by ArtifactClient (sync, thread-parallel, bounded)."""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow.artifacts._codec import ChunkSpan, FileDigest, encode_chunk
from metricflow.artifacts._manifest import Manifest
from metricflow.artifacts._progress import Progress
from metricflow.artifacts._wire import PART_BYTES, error_from_rpc, manifest_from_pb
from metricflow.errors import InvalidArgument, InvalidState, MetricflowError, Unavailable

Reader = Callable[[int, int], bytes]
"""read(offset, length) -> exactly `length` bytes of the source."""

HASH_BATCH = 4096  # hashes per MissingChunks call (~140 KB message)
PRESIGN_BATCH = 32
RUN_ID_METADATA = "mf-run-id"
"""Chunk RPCs carry only hashes; this metadata names the run they are for (reads are
run-scoped, uploads and presence checks are scoped by the run's experiment)."""


def run_metadata(run_id: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata naming the run of a chunk call."""
    return ((RUN_ID_METADATA, run_id),)


@dataclass(frozen=True)
class UploadResult:
    """Outcome of one file upload."""

    manifest: Manifest
    bytes_sent: int
    """Request bytes this upload put on the wire (chunk payloads + hash lists + commit)."""
    chunks_sent: int
    chunks_total: int


def file_reader(path: str | os.PathLike[str]) -> tuple[Reader, Callable[[], None]]:
    """A thread-safe positional reader over a file, and its close function."""
    fd = os.open(path, os.O_RDONLY)

    def read(off: int, n: int) -> bytes:
        data = os.pread(fd, n, off)
        if len(data) != n:
            raise InvalidArgument("file changed while uploading", field="path",
                                  received=os.fspath(path))
        return data

    return read, lambda: os.close(fd)


def buffer_reader(buf: bytes) -> Reader:
    """A reader over an in-memory buffer."""
    mv = memoryview(buf)
    return lambda off, n: bytes(mv[off:off + n])


def _rpc(fn: Callable[..., object], *args: object, **kw: object) -> object:
    try:
        return fn(*args, **kw)
    except grpc.RpcError as e:
        raise error_from_rpc(e) from None


class Uploader:
    """Sends missing chunks through the service (W parallel streams) or to presigned URLs."""

    def __init__(self, stub: object, workers: int = 4, progress: bool | None = None) -> None:
        self.stub = stub
        self.workers = max(1, workers)
        self.progress = progress

    def _missing(self, digests: Sequence[bytes], md: tuple[tuple[str, str], ...]
                 ) -> tuple[list[bytes], bool, int]:
        missing: list[bytes] = []
        direct = False
        sent = 0
        for i in range(0, len(digests), HASH_BATCH):
            req = pb.MissingChunksRequest(hashes=digests[i:i + HASH_BATCH])
            sent += req.ByteSize()
            r = _rpc(self.stub.MissingChunks, req, metadata=md)  # type: ignore[attr-defined]
            missing += [bytes(h) for h in r.missing]  # type: ignore[attr-defined]
            direct = r.direct_upload  # type: ignore[attr-defined]
        return missing, direct, sent

    def _send_via_service(self, spans: Sequence[ChunkSpan], read: Reader, bar: Progress,
                          md: tuple[tuple[str, str], ...]) -> int:
        work: queue.SimpleQueue[ChunkSpan] = queue.SimpleQueue()
        for s in spans:
            work.put(s)
        sent = [0] * self.workers
        errors: list[BaseException] = []

        def parts(i: int) -> Iterator[pb.ChunkPart]:
            while not errors:
                try:
                    s = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    data = encode_chunk(read(s.offset, s.length))
                except BaseException as e:  # end the stream cleanly, re-raise later
                    errors.append(e)
                    return
                mv = memoryview(data)
                for off in range(0, len(mv), PART_BYTES):
                    yield pb.ChunkPart(hash=s.digest if off == 0 else b"", raw_size=s.length,
                                       data=bytes(mv[off:off + PART_BYTES]),
                                       last=off + PART_BYTES >= len(mv))
                sent[i] += len(data) + 48
                bar.update(s.length)

        def run(i: int) -> None:
            try:
                _rpc(self.stub.UploadChunks, parts(i), metadata=md)  # type: ignore[attr-defined]
            except BaseException as e:  # re-raised in the caller
                errors.append(e)

        threads = [threading.Thread(target=run, args=(i,), daemon=True)
                   for i in range(min(self.workers, len(spans)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return sum(sent)

    def _send_direct(self, spans: Sequence[ChunkSpan], read: Reader, bar: Progress,
                     md: tuple[tuple[str, str], ...]) -> int:
        import requests  # only needed for presigned transfers

        upload_id = uuid.uuid4().hex
        sent = 0
        session = requests.Session()
        from concurrent.futures import ThreadPoolExecutor

        def put(arg: tuple[ChunkSpan, str]) -> int:
            s, url = arg
            data = encode_chunk(read(s.offset, s.length))
            r = session.put(url, data=data, timeout=300)
            if r.status_code >= 300:
                raise Unavailable(f"presigned PUT failed with HTTP {r.status_code}",
                                  received=r.text[:200])
            bar.update(s.length)
            return len(data)

        with ThreadPoolExecutor(self.workers) as pool:
            for i in range(0, len(spans), PRESIGN_BATCH):
                batch = spans[i:i + PRESIGN_BATCH]
                req = pb.PresignUploadsRequest(hashes=[s.digest for s in batch],
                                               upload_id=upload_id)
                urls = _rpc(self.stub.PresignUploads, req, metadata=md).urls  # type: ignore[attr-defined]
                sent += req.ByteSize() + sum(pool.map(put, zip(batch, urls, strict=True)))
                fin = pb.FinalizeUploadsRequest(hashes=[s.digest for s in batch],
                                                upload_id=upload_id)
                r = _rpc(self.stub.FinalizeUploads, fin, metadata=md)  # type: ignore[attr-defined]
                if r.rejected:  # type: ignore[attr-defined]
                    raise InvalidState("the server rejected uploaded chunks (hash mismatch)",
                                       field="chunk",
                                       received=[bytes(h).hex() for h in r.rejected][:5])  # type: ignore[attr-defined]
                sent += fin.ByteSize()
        return sent

    def send(self, spans: Sequence[ChunkSpan], read: Reader, direct: bool, desc: str,
             run_id: str) -> int:
        """Upload the given chunks for `run_id` (they count for its experiment); returns
        bytes sent."""
        if not spans:
            return 0
        bar = Progress(sum(s.length for s in spans), desc, self.progress)
        md = run_metadata(run_id)
        try:
            if direct:
                return self._send_direct(spans, read, bar, md)
            return self._send_via_service(spans, read, bar, md)
        finally:
            bar.close()

    def upload(self, run_id: str, path: str, fd: FileDigest, read: Reader,
               media_type: str | None, max_attempts: int = 8) -> UploadResult:
        """Dedupe, upload missing chunks, commit; retries commits that report missing chunks
        (GC or an interrupted earlier attempt) and retriable errors."""
        by_digest = {s.digest: s for s in fd.chunks}
        missing, direct, sent = self._missing(list(by_digest), run_metadata(run_id))
        n_sent = len(missing)
        todo = [by_digest[d] for d in missing]
        delay = 0.2
        for attempt in range(max_attempts):
            sent += self.send(todo, read, direct, f"upload {path}", run_id)
            req = pb.CommitManifestRequest(
                run_id=run_id, path=path, size=fd.size, file_hash=fd.file_hash,
                media_type=media_type or "",
                chunks=[pb.ChunkRef(hash=s.digest, size=s.length) for s in fd.chunks])
            sent += req.ByteSize()
            try:
                r = _rpc(self.stub.CommitManifest, req)  # type: ignore[attr-defined]
            except MetricflowError as e:
                if not e.retriable or attempt == max_attempts - 1:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                todo = []
                continue
            if r.missing:  # type: ignore[attr-defined]
                todo = [by_digest[bytes(h)] for h in r.missing]  # type: ignore[attr-defined]
                n_sent += len(todo)
                continue
            return UploadResult(manifest_from_pb(r.manifest), sent, n_sent,  # type: ignore[attr-defined]
                                len(fd.chunks))
        raise Unavailable("commit kept failing; retry later", field="path", received=path)
