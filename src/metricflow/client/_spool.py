"""The client's durable write-ahead spool: checksummed frames in segment files.

One spool is one directory, owned by one process at a time (an flock on
`<dir>/lock`); a client creates `<METRICFLOW_SPOOL_DIR>/<client_id>/`.

Layout (docs/resilience.md has the full description):

- `spool.json`: who wrote it (client id, pid, host, mode, created).
- `<n:08d>.seg`: segments, appended in order. Each starts with the 8-byte
  magic `MFSPOOL1`, then frames `magic "MF" | u8 version | u8 kind | u32 length |
  u32 crc32(kind byte + payload) | payload`. A new segment is started once the
  current one passes `segment_bytes`.
- `cursor`: `segment offset` of the first frame not yet acknowledged by a server,
  replaced atomically (write + rename). Segments wholly before it are deleted.
- `files/`: copies of artifact files named by spooled artifact records.

Readers stop a segment at the first frame that does not check out (short header,
wrong magic or version, a length past the end of the file): that is a torn write
at the tail of a process that was killed or lost power. The rest of that segment
is skipped (and counted in `skipped_bytes`), never parsed; reading continues with
the next segment. A frame with a valid header whose payload fails its CRC (a
flipped bit), followed by another valid header or the end of the segment, is
skipped alone.

Durability: frames are written with `os.write` (no user-space buffer), so a
killed process (SIGKILL, OOM) loses nothing that `append` returned for. Against
power loss or a kernel crash a background thread fsyncs every `fsync_s` seconds
(0: every append fsyncs before it returns; negative: never, left to the OS), and
`sync()` (the client's flush and close) fsyncs at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from metricflow.errors import InvalidState, ResourceExhausted

log = logging.getLogger(__name__)

SEGMENT_MAGIC = b"MFSPOOL1"
FRAME = struct.Struct("<2sBBII")  # magic, version, kind, length, crc32
FRAME_MAGIC = b"MF"
FRAME_VERSION = 1
MAX_FRAME_BYTES = 256 << 20
SEGMENT_BYTES = 64 << 20

# Frame kinds. Metric batches hold a serialized WriteBatch (its original
# client_id and seq); the record kinds hold the request of the RPC to replay.
KIND_METRICS = ord("M")
KIND_CREATE_RUN = ord("C")
KIND_UPDATE_RUN = ord("U")
KIND_LOG_BATCH = ord("B")
KIND_ARTIFACT = ord("A")
KINDS = frozenset({KIND_METRICS, KIND_CREATE_RUN, KIND_UPDATE_RUN, KIND_LOG_BATCH,
                   KIND_ARTIFACT})

Pos = tuple[int, int]  # (segment, offset)


class SpoolFull(ResourceExhausted):
    """The spool's disk budget is used up."""


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytes
    pos: Pos  # where the frame starts
    next: Pos  # where the next one starts


def _seg_name(n: int) -> str:
    return f"{n:08d}.seg"


def list_segments(directory: str) -> list[int]:
    out = []
    for name in os.listdir(directory):
        if name.endswith(".seg") and name[:-4].isdigit():
            out.append(int(name[:-4]))
    return sorted(out)


def is_spool_dir(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "spool.json"))


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """One spool directory: appends (the owning client), reads and commits (its sender).

    Args:
        directory: the spool's own directory (created when `create`).
        budget_bytes: most bytes of segments kept on disk; an append past it
            raises SpoolFull.
        fsync_s: fsync interval (0: every append; < 0: never).
        create: a new spool (written by this process); else an existing one is
            opened to be drained (`metricflow sync`, or a recovery).
    """

    def __init__(self, directory: str, *, budget_bytes: int = 8 << 30, fsync_s: float = 1.0,
                 segment_bytes: int = SEGMENT_BYTES, create: bool = True,
                 meta: dict | None = None) -> None:
        self.dir = directory
        self.budget_bytes = budget_bytes
        self.fsync_s = fsync_s
        self.segment_bytes = segment_bytes
        self.skipped_bytes = 0
        self.appended_bytes = 0
        self.append_s = 0.0  # time spent in appends (checksum, write, fsync): its speed
        self._lock = threading.Lock()
        if create:
            os.makedirs(directory, exist_ok=True)
        elif not is_spool_dir(directory):
            raise InvalidState(f"{directory} is not a metricflow spool (no spool.json)",
                               field="spool_dir", received=directory)
        self._lock_fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise InvalidState(f"spool {directory} is in use by another process (its lock file "
                               "is held); wait for that process to end",
                               field="spool_dir", received=directory) from None
        segs = list_segments(directory)
        if create:
            info = {"version": FRAME_VERSION, "pid": os.getpid(), "host": socket.gethostname(),
                    "created": time.time(), **(meta or {})}
            self._write_atomic("spool.json", json.dumps(info).encode())
        with open(os.path.join(directory, "spool.json"), "rb") as f:
            self.meta: dict = json.loads(f.read() or b"{}")
        self._cursor: Pos = self._read_cursor(segs)
        # Sizes of the segments on disk (the budget counts them until deleted).
        self._sizes = {s: os.path.getsize(os.path.join(directory, _seg_name(s))) for s in segs}
        # A writer never appends after what a crashed one left: it starts a new segment.
        self._wseg = (segs[-1] + 1) if segs else 0
        self._wfd = -1
        self._woff = 0
        self._end: Pos = (segs[-1], self._sizes[segs[-1]]) if segs else (self._wseg, 0)
        files = os.path.join(directory, "files")
        self.files_bytes = sum(e.stat().st_size for e in os.scandir(files)) if os.path.isdir(
            files) else 0  # artifact copies; they count in the budget too
        self._last_sync = time.monotonic()
        self._dirty = False
        self._syncer: threading.Thread | None = None
        self._syncer_stop = threading.Event()
        self._old_fds: list[int] = []  # rotated segments the syncer fsyncs and closes
        self._sync_error_said = False
        self._rfd = -1
        self._rseg = -1
        self._closed = False

    # ------------------------------------------------------------- metadata
    def _write_atomic(self, name: str, data: bytes) -> None:
        tmp = os.path.join(self.dir, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.dir, name))

    def _read_cursor(self, segs: list[int]) -> Pos:
        try:
            with open(os.path.join(self.dir, "cursor"), "rb") as f:
                seg, off = (int(x) for x in f.read().split())
                return seg, off
        except FileNotFoundError:
            return (segs[0], len(SEGMENT_MAGIC)) if segs else (0, len(SEGMENT_MAGIC))
        except ValueError:
            log.warning("spool %s: unreadable cursor file; replaying from the oldest segment "
                        "(the server's dedup makes that harmless)", self.dir)
            return (segs[0], len(SEGMENT_MAGIC)) if segs else (0, len(SEGMENT_MAGIC))

    # -------------------------------------------------------------- writing
    @property
    def disk_bytes(self) -> int:
        return sum(self._sizes.values())

    def pending_bytes(self) -> int:
        """Bytes of segments from the cursor on (what is still to be sent)."""
        seg, off = self._cursor
        sizes = dict(self._sizes)
        return max(0, sum(v for s, v in sizes.items() if s >= seg) - off)

    @property
    def end(self) -> Pos:
        return self._end

    @property
    def cursor(self) -> Pos:
        return self._cursor

    def pending(self) -> bool:
        """Frames were appended that are not committed yet."""
        return self._cursor < self._end and self._has_frames_after_cursor()

    def _has_frames_after_cursor(self) -> bool:
        seg, off = self._cursor
        eseg, eoff = self._end
        if seg < eseg:
            # Later segments exist; an empty tail of this one counts as nothing.
            return any(s > seg for s in self._sizes) or off < self._sizes.get(seg, 0)
        return off < eoff

    def append(self, kind: int, payload: bytes | memoryview) -> None:
        """Append one frame; raises SpoolFull past the disk budget."""
        self.append_many([(kind, payload)])

    def append_many(self, frames: list[tuple[int, bytes | memoryview]]) -> None:
        size = sum(FRAME.size + len(p) for _, p in frames)
        t0 = time.perf_counter()
        with self._lock:
            if self._closed:
                raise InvalidState(f"spool {self.dir} is closed")
            used = self.disk_bytes + self.files_bytes
            if used + size > self.budget_bytes:
                raise SpoolFull(
                    f"client spool {self.dir} is full: {used} bytes of "
                    f"{self.budget_bytes} (METRICFLOW_SPOOL_MAX_BYTES) used, {size} more "
                    "needed", field="METRICFLOW_SPOOL_MAX_BYTES", limit=self.budget_bytes,
                    received=self.disk_bytes + self.files_bytes + size)
            if self._wfd < 0 or self._woff >= self.segment_bytes:
                self._open_segment()
            parts: list[bytes | memoryview] = []
            for kind, p in frames:
                if len(p) > MAX_FRAME_BYTES:
                    raise InvalidState(f"a spool frame of {len(p)} bytes is larger than "
                                       f"{MAX_FRAME_BYTES}", field="payload",
                                       limit=MAX_FRAME_BYTES, received=len(p))
                crc = zlib.crc32(p, zlib.crc32(bytes((kind,))))
                parts.append(FRAME.pack(FRAME_MAGIC, FRAME_VERSION, kind, len(p), crc))
                parts.append(p)
            try:
                _writev_all(self._wfd, parts)
            except OSError:
                self._undo_torn_write()
                raise
            self._woff += size
            self._sizes[self._wseg] = self._woff
            self._end = (self._wseg, self._woff)
            self.appended_bytes += size
            self._dirty = True
            if self.fsync_s == 0:
                self._sync_locked()
            elif self.fsync_s > 0 and self._syncer is None:
                self._start_syncer()
            self.append_s += time.perf_counter() - t0

    def _undo_torn_write(self) -> None:
        """A write failed (disk full, I/O error) after part of it may have reached the
        file: cut the segment back to its last whole frame, so the frames appended later
        follow it (the fd appends at the file's end). If that fails too, the next append
        starts a new segment; this one is read up to its last whole frame."""
        try:
            os.ftruncate(self._wfd, self._woff)
        except OSError:
            self._woff = self.segment_bytes  # roll over at the next append

    # The fsync every fsync_s runs in its own thread: appends never wait for the disk
    # (the data is in the page cache, which a killed process does not lose), and the
    # interval still bounds what a power loss can take.
    def _start_syncer(self) -> None:
        self._syncer = threading.Thread(target=self._sync_loop, name="metricflow-spool-fsync",
                                        daemon=True)
        self._syncer.start()

    def _sync_loop(self) -> None:
        while not self._syncer_stop.wait(self.fsync_s):
            self._background_sync()

    def _background_sync(self) -> None:
        with self._lock:
            fds, self._old_fds = self._old_fds, []
            if self._wfd >= 0 and self._dirty:
                fds.append(os.dup(self._wfd))
                self._dirty = False
        for fd in fds:
            try:
                os.fdatasync(fd)
            except OSError as e:  # the thread goes on: later appends still get synced
                if not self._sync_error_said:
                    self._sync_error_said = True
                    log.warning("spool %s: fsync failed (%s); what was appended since the "
                                "last sync may not survive a power loss", self.dir, e)
            finally:
                os.close(fd)
        self._last_sync = time.monotonic()

    def _open_segment(self) -> None:
        if self._wfd >= 0:
            old, self._wfd = self._wfd, -1  # never written again, whatever fails below
            if self._syncer is not None and self._dirty:
                self._old_fds.append(old)  # fsync'd, then closed, by the syncer
            else:
                try:
                    self._sync_locked()
                finally:
                    os.close(old)
            self._dirty = False
            self._wseg += 1
        path = os.path.join(self.dir, _seg_name(self._wseg))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            _writev_all(fd, [SEGMENT_MAGIC])
        except OSError:  # (disk full): no half-made segment; the next append tries again
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        self._wfd = fd
        self._woff = len(SEGMENT_MAGIC)
        self._sizes[self._wseg] = self._woff
        if self._cursor < (self._wseg, 0) and not self._has_frames_after_cursor():
            self._cursor = (self._wseg, len(SEGMENT_MAGIC))
        self._end = (self._wseg, self._woff)
        if self.fsync_s >= 0:
            os.fsync(self._wfd)
            _fsync_dir(self.dir)  # the new file's directory entry

    def sync(self) -> None:
        """fsync what was appended (the client's flush and close call it)."""
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        fds, self._old_fds = self._old_fds, []
        for fd in fds:
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        if self._wfd >= 0 and self._dirty:
            os.fdatasync(self._wfd)
        self._dirty = False
        self._last_sync = time.monotonic()

    # -------------------------------------------------------------- reading
    def read(self, pos: Pos, end: Pos | None = None) -> Frame | None:
        """The frame at or after `pos` (before `end`, default: the spool's end), or None."""
        seg, off = pos
        with self._lock:  # the writer may add a segment meanwhile
            stop = end if end is not None else self._end
            sizes = dict(self._sizes)
        while True:
            if (seg, off) >= stop:
                return None
            if seg not in sizes:
                later = [s for s in sizes if s > seg]
                if not later:
                    return None
                seg, off = min(later), len(SEGMENT_MAGIC)
                continue
            size = sizes[seg] if seg != stop[0] else stop[1]
            if off >= size:
                seg, off = seg + 1, len(SEGMENT_MAGIC)
                continue
            frame = self._read_frame(seg, off, size)
            if isinstance(frame, int):  # a whole frame whose payload fails its CRC
                self.skipped_bytes += frame - off
                log.warning("spool %s: segment %s has a frame at offset %d whose checksum "
                            "fails (%d bytes); it is skipped", self.dir, _seg_name(seg), off,
                            frame - off)
                off = frame
                continue
            if frame is None:  # torn or corrupt: skip the rest of this segment
                self.skipped_bytes += size - off
                log.warning("spool %s: segment %s has a torn or corrupt frame at offset %d; "
                            "its last %d bytes are skipped", self.dir, _seg_name(seg), off,
                            size - off)
                seg, off = seg + 1, len(SEGMENT_MAGIC)
                continue
            return frame

    def _read_frame(self, seg: int, off: int, size: int) -> Frame | int | None:
        """The frame at `off`; None: no valid header here (a torn tail: the rest of the
        segment is skipped); an int: a valid header whose payload fails its CRC (a
        flipped bit): the offset after it, so only that frame is lost."""
        if self._rseg != seg:
            if self._rfd >= 0:
                os.close(self._rfd)
            self._rfd = os.open(os.path.join(self.dir, _seg_name(seg)), os.O_RDONLY)
            self._rseg = seg
        if os.pread(self._rfd, len(SEGMENT_MAGIC), 0) != SEGMENT_MAGIC:
            return None  # not a segment this version wrote (or its header is torn)
        if off + FRAME.size > size:
            return None
        hdr = os.pread(self._rfd, FRAME.size, off)
        if len(hdr) < FRAME.size:
            return None
        magic, version, kind, length, crc = FRAME.unpack(hdr)
        if (magic != FRAME_MAGIC or version != FRAME_VERSION or kind not in KINDS
                or length > MAX_FRAME_BYTES or off + FRAME.size + length > size):
            return None
        payload = os.pread(self._rfd, length, off + FRAME.size)
        if len(payload) != length:
            return None
        if zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            # Resynchronize after it only if a valid header follows (or the segment ends
            # there): a corrupt length field would otherwise land inside another frame.
            nxt = off + FRAME.size + length
            if nxt == size:
                return nxt
            nh = os.pread(self._rfd, FRAME.size, nxt)
            if len(nh) == FRAME.size:
                m2, v2, k2, _, _ = FRAME.unpack(nh)
                if m2 == FRAME_MAGIC and v2 == FRAME_VERSION and k2 in KINDS:
                    return nxt
            return None
        nxt = off + FRAME.size + length
        return Frame(kind, payload, (seg, off), (seg, nxt))

    def frames(self, pos: Pos | None = None) -> Iterator[Frame]:
        """Every readable frame from `pos` (default: the cursor) to the current end."""
        end = self._end
        p = pos or self._cursor
        while (f := self.read(p, end)) is not None:
            yield f
            p = f.next

    # ----------------------------------------------------------- committing
    def commit(self, pos: Pos) -> None:
        """Everything before `pos` is acknowledged: persist it, delete whole segments."""
        with self._lock:
            if pos <= self._cursor:
                return
            self._cursor = pos
            self._write_atomic("cursor", f"{pos[0]} {pos[1]}".encode())
            for s in [s for s in self._sizes if s < pos[0] and s != self._wseg]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, _seg_name(s)))
                del self._sizes[s]
                if self._rseg == s:
                    os.close(self._rfd)
                    self._rfd, self._rseg = -1, -1

    def file_path(self, name: str) -> str:
        d = os.path.join(self.dir, "files")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, name)

    def close(self, when_drained: str = "keep") -> None:
        """Close; if every frame was acknowledged, `when_drained` says what to do:
        "keep" everything, "purge" segments and artifact copies (keep spool.json,
        cursor and synced.json: `metricflow sync`), or "remove" the directory."""
        self._syncer_stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._sync_locked()
            if self._wfd >= 0:
                os.close(self._wfd)
                self._wfd = -1
            if self._rfd >= 0:
                os.close(self._rfd)
                self._rfd = -1
            drained = not self._has_frames_after_cursor()
            if drained and when_drained in ("purge", "remove"):
                for s in list(self._sizes):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.dir, _seg_name(s)))
                self._sizes.clear()
                files = os.path.join(self.dir, "files")
                if os.path.isdir(files):
                    for n in os.listdir(files):
                        os.unlink(os.path.join(files, n))
                    os.rmdir(files)
                self.files_bytes = 0
            if drained and when_drained == "remove":
                for name in ("cursor", "spool.json", "lock"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.dir, name))
                with contextlib.suppress(OSError):
                    os.rmdir(self.dir)
            os.close(self._lock_fd)


def _writev_all(fd: int, parts: list[bytes | memoryview]) -> None:
    for i in range(0, len(parts), 512):  # IOV_MAX is 1024 on Linux
        chunk = parts[i:i + 512]
        total = sum(len(p) for p in chunk)
        done = os.writev(fd, chunk)
        if done == total:
            continue
        buf = memoryview(b"".join(chunk))[done:]  # a short write (rare): finish it
        while buf:
            n = os.write(fd, buf)
            buf = buf[n:]
