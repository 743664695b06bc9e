"""RecordLog: the embedded sink's write-ahead log of run records.

A run lifecycle call (create, params, tags, update) is acknowledged once its
record is appended here and fsync'd: that is the durable write. The records are
applied to ClickHouse afterwards, in larger groups, by the sink's apply thread;
readers wait for that apply (DirectSink.wait_applied), so a write is still
visible to every read that starts after it returned.

Layout: segment files `<dir>/<n:016d>.log`, each a sequence of frames
`u32 length | u32 crc32 | LogRecord bytes`. Appends go to the newest segment;
a segment is deleted once every record in it was applied (`release`). At start
the segments left are read back in order and applied again: every record is
idempotent to apply twice (docs/exactly-once.md), and the log is replayed in
order, so the final state is the one acknowledged. A torn frame at the end of
the newest segment (a crash during an append that was never acknowledged) ends
the replay.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator

_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 4 * 1024 * 1024
"""A segment is closed (and a new one started) once it is this large."""


class RecordLog:
    """Append-only, fsync'd segment files; one writer thread."""

    def __init__(self, directory: str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        os.makedirs(directory, exist_ok=True)
        segs = self.segments()
        self._seg = (segs[-1] + 1) if segs else 0
        self._fd = -1
        self._size = 0

    def segments(self) -> list[int]:
        """Numbers of the segments on disk, oldest first."""
        out = []
        for name in os.listdir(self.dir):
            if name.endswith(".log") and name[:-4].isdigit():
                out.append(int(name[:-4]))
        return sorted(out)

    def _path(self, seg: int) -> str:
        return os.path.join(self.dir, f"{seg:016d}.log")

    def append(self, records: list[bytes]) -> int:
        """Append `records`, fsync, and return the segment they are in."""
        if self._fd < 0 or self._size >= self.segment_bytes:
            self._open_next()
        buf = b"".join(_HEADER.pack(len(r), zlib.crc32(r)) + r for r in records)
        view = memoryview(buf)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fdatasync(self._fd)
        self._size += len(buf)
        return self._seg

    def _open_next(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._seg += 1
        self._fd = os.open(self._path(self._seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the new file's directory entry is durable too
        finally:
            os.close(dfd)

    def release(self, before: int) -> None:
        """Delete the segments older than `before` (all their records are applied)."""
        for seg in self.segments():
            if seg >= before or seg == self._seg and self._fd >= 0:
                break
            try:
                os.unlink(self._path(seg))
            except FileNotFoundError:
                pass

    def release_all(self) -> None:
        """Every record logged so far is applied: drop all segments, start a fresh one."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for seg in self.segments():
            try:
                os.unlink(self._path(seg))
            except FileNotFoundError:
                pass
        self._seg += 1
        self._size = 0

    def replay(self) -> Iterator[bytes]:
        """The records of the segments on disk, in order (before any append)."""
        for seg in self.segments():
            with open(self._path(seg), "rb") as f:
                data = f.read()
            pos = 0
            while pos + _HEADER.size <= len(data):
                n, crc = _HEADER.unpack_from(data, pos)
                body = data[pos + _HEADER.size:pos + _HEADER.size + n]
                if len(body) < n or zlib.crc32(body) != crc:
                    break  # a torn append: it was never acknowledged
                yield bytes(body)
                pos += _HEADER.size + n

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
