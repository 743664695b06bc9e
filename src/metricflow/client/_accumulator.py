"""Bounded, columnar per-run metric buffers (the client's hot path).

`log_metrics` appends to array.array columns under one lock: no per-call RPC,
no queue entry per call, no Python object kept per point. Step and timestamp
are stored once per call ("row") and expanded with numpy when a batch is built.
The total of buffered plus unacknowledged bytes is bounded; when it is full,
callers wait for a drain up to a timeout and then get BufferFull. Spool frames
the sender holds in flight while it drains its spool (`reserve_drain`) count
against the same bound: the client's memory for points is one budget, whether
they are live or read back from the spool.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from metricflow._validation import INT64_MAX, INT64_MIN, check_key, to_float, to_int64
from metricflow.errors import MetricflowError, ResourceExhausted

POINT_BYTES = 12  # int32 key index + float64 value
ROW_BYTES = 20  # int64 step + int64 timestamp + int32 count


class BufferFull(ResourceExhausted):
    """The client's metric buffer stayed full for the whole block timeout."""


@dataclass(frozen=True)
class DrainedBatch:
    """One run's points taken out of the buffer, ready to encode."""

    run_id: str
    keys: list[str]
    key_index: np.ndarray
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    nbytes: int


class _RunBuffer:
    __slots__ = ("ended", "key_ids", "keys", "kidx", "last_idx", "last_keys", "row_n",
                 "row_steps", "row_ts", "vals")

    def __init__(self) -> None:
        self.ended = False  # the run ended: drop this buffer once its points are drained
        self.keys: list[str] = []
        self.key_ids: dict[str, int] = {}
        self.last_keys: tuple[str, ...] | None = None
        self.last_idx = array("i")
        self._reset_columns()

    def _reset_columns(self) -> None:
        self.kidx = array("i")
        self.vals = array("d")
        self.row_steps = array("q")
        self.row_ts = array("q")
        self.row_n = array("i")

    def index_for(self, keys: tuple[str, ...]) -> array:
        if keys != self.last_keys:
            ids = self.key_ids
            for k in keys:
                if k not in ids:
                    check_key(k, "metric key")
                    ids[k] = len(self.keys)
                    self.keys.append(k)
            self.last_idx = array("i", [ids[k] for k in keys])
            self.last_keys = keys
        return self.last_idx


log = logging.getLogger(__name__)
_SAY_DROPS_EVERY_S = 60.0


class Accumulator:
    """All runs' unsent points of one client, with a byte bound."""

    def __init__(self, max_bytes: int, batch_points: int, block_timeout_s: float,
                 drop_when_full: bool = False, max_batch_points: int = 250_000) -> None:
        self.max_bytes = max_bytes
        self.batch_points = batch_points
        # Well under the server's 1M limit, and encoded (28 bytes a point) under a quarter
        # of the buffer: a batch read back from the spool counts against the same budget.
        self.max_batch_points = min(max_batch_points, max(1024, max_bytes // 128))
        self.block_timeout_s = block_timeout_s
        self.drop_when_full = drop_when_full
        self.dropped_points = 0
        self._drop_said_at = float("-inf")
        self._cond = threading.Condition(threading.Lock())
        self._runs: dict[str, _RunBuffer] = {}
        self._buffered_points = 0
        self._used_bytes = 0  # buffered + sent but not yet acknowledged
        self.peak_used_bytes = 0
        # Spool frames read back and in flight (the sender's drain); with _used_bytes
        # they make the bytes the client holds, which log calls keep within max_bytes.
        self._drain_bytes = 0
        # The next spool frame's size once it found no room: blocking log calls leave
        # it free, so what a spill frees goes to the drain rather than back to them.
        self._drain_claim = 0
        self.peak_held_bytes = 0  # the largest _used_bytes + _drain_bytes seen
        self.drain_overruns = 0  # frames let over the bound so the drain cannot stall
        self.on_full_batch: Callable[[], None] = lambda: None
        self.on_first_point: Callable[[], None] = lambda: None  # into an empty buffer
        # Why the buffer is not draining (the sender's view), for BufferFull messages.
        self.describe_stall: Callable[[], str] = lambda: "the server is not keeping up"
        # The sender's spill (buffered points into its engaged spool; a no-op otherwise):
        # a drop-mode log call that finds the buffer full calls it before it drops.
        self.spill_when_full: Callable[[], None] | None = None
        self.spilled_when_full = 0  # log calls that made room that way instead of dropping
        self._spill_error_said = False
        self.failure: MetricflowError | None = None  # set once nothing will drain any more

    # ---------------------------------------------------------------- hot path
    def append(self, run_id: str, metrics: Mapping[str, object], step: int,
               timestamp_ms: int | None) -> None:
        """Append one call's points (all keys share step and timestamp)."""
        n = len(metrics)
        if not n:
            return
        keys = tuple(metrics)
        # Checked before anything is buffered: a step or timestamp that does not fit the
        # int64 columns used to fail after the values went in, and the misaligned buffer
        # then broke every later send of this client.
        if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
            step = to_int64("step", step)
        if timestamp_ms is None:
            ts = int(time.time() * 1000)
        elif type(timestamp_ms) is int and INT64_MIN <= timestamp_ms <= INT64_MAX:
            ts = timestamp_ms
        else:
            ts = to_int64("timestamp", timestamp_ms)
        need = n * POINT_BYTES + ROW_BYTES
        with self._cond:
            if self._no_room(need) and not self._wait_for_room(need, n):
                return
            buf = self._runs.get(run_id)
            if buf is None:
                buf = self._runs[run_id] = _RunBuffer()
            idx = buf.index_for(keys)
            vals = buf.vals
            before = len(vals)
            try:
                vals.extend(metrics.values())  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                # The array may hold some of this call's values: take them out, or the
                # columns no longer line up and every later send of this client breaks.
                del vals[before:]
                # Raises InvalidArgument naming the first bad key; values the array
                # refused but float() takes (Decimal, numpy floats) go in converted.
                vals.extend([to_float(k, v) for k, v in metrics.items()])
            buf.kidx.extend(idx)
            buf.row_steps.append(step)
            buf.row_ts.append(ts)
            buf.row_n.append(n)
            self._used_bytes += need
            if self._used_bytes > self.peak_used_bytes:
                self.peak_used_bytes = self._used_bytes
            if self._used_bytes + self._drain_bytes > self.peak_held_bytes:
                self.peak_held_bytes = self._used_bytes + self._drain_bytes
            first = not self._buffered_points
            self._buffered_points += n
            full = self._buffered_points >= self.batch_points
        if full:
            self.on_full_batch()
        elif first:
            self.on_first_point()

    def _no_room(self, need: int) -> bool:
        """Called with the lock held: `need` more bytes would pass max_bytes with what is
        held (live points, spool frames in flight) and the room a waiting frame claims."""
        return self._used_bytes + self._drain_bytes + self._drain_claim + need > self.max_bytes

    def _wait_for_room(self, need: int, n: int) -> bool:
        """Called with the lock held. False means the points were dropped by policy."""
        if self.drop_when_full:
            # Log calls never wait in this mode, so live points win over spool frames
            # in flight: they are dropped only when the live buffer alone is full. A
            # catch-up may then hold up to twice buffer_bytes for a moment (the drain
            # takes a frame only into what the live points leave free).
            if self._used_bytes + need <= self.max_bytes:
                return True
            if self.spill_when_full is not None:
                # With the spool engaged (a broken stream, a backlog), a buffer full of
                # unsent points means its spiller fell behind (a busy machine): the call
                # writes them to the local spool itself, or waits for a spill in
                # progress, rather than lose them. That may take disk appends, never a
                # wait on the network.
                self._cond.release()
                try:
                    self.spill_when_full()
                except Exception as e:  # a disk error: the points are dropped, said once
                    if not self._spill_error_said:
                        self._spill_error_said = True
                        log.warning("metricflow client could not spill a full buffer to "
                                    "its spool (%s: %s); dropping points", type(e).__name__, e)
                finally:
                    self._cond.acquire()
                if self._used_bytes + need <= self.max_bytes:
                    self.spilled_when_full += 1
                    return True
            self.dropped_points += n
            now = time.monotonic()
            if now - self._drop_said_at >= _SAY_DROPS_EVERY_S:  # always said, not flooded
                self._drop_said_at = now
                log.warning("metricflow client buffer is full (%d bytes): dropping points "
                            "(drop_when_full), %d so far; the server or the spool is not "
                            "keeping up", self.max_bytes, self.dropped_points)
            return False
        if self.failure is not None:
            raise self.failure
        if need > self.max_bytes:
            raise BufferFull(f"one call needs {need} bytes, more than the client buffer "
                             f"({self.max_bytes} bytes)", field="buffer_bytes",
                             limit=self.max_bytes, received=need)
        self.on_full_batch()
        deadline = time.monotonic() + self.block_timeout_s
        while self._no_room(need):
            if self.failure is not None:
                raise self.failure
            left = deadline - time.monotonic()
            if left <= 0:
                raise BufferFull(
                    f"client metric buffer ({self.max_bytes} bytes) stayed full for "
                    f"{self.block_timeout_s}s; {self.describe_stall()}",
                    retry_after_s=1.0, field="buffer_bytes", limit=self.max_bytes)
            self._cond.wait(left)
        return True

    # ------------------------------------------------------------ sender side
    def drain(self) -> list[DrainedBatch]:
        """Take every buffered point out, one DrainedBatch per run (or per part)."""
        return list(self.drain_iter())

    def drain_iter(self, max_points: int | None = None) -> Iterator[DrainedBatch]:
        """Take every buffered point out now; build the batches one by one as iterated.

        The spill to the spool encodes one batch at a time, so a large buffer is
        never expanded (steps and timestamps per point) all at once. `max_points`
        (at most max_batch_points) makes smaller parts.
        """
        with self._cond:
            taken = [(rid, b, b.kidx, b.vals, b.row_steps, b.row_ts, b.row_n)
                     for rid, b in self._runs.items() if len(b.vals)]
            for rid, b, *_ in taken:
                b._reset_columns()
                if b.ended:
                    del self._runs[rid]
            self._buffered_points = 0
        part = min(max_points or self.max_batch_points, self.max_batch_points)
        return self._batches(taken, part)

    def _batches(self, taken: list, part_points: int) -> Iterator[DrainedBatch]:
        for rid, b, kidx, vals, rsteps, rts, rn in taken:
            counts = np.frombuffer(rn, dtype=np.int32)
            row_steps = np.frombuffer(rsteps, dtype=np.int64)
            row_ts = np.frombuffer(rts, dtype=np.int64)
            ends = np.cumsum(counts, dtype=np.int64)  # one past each row's last point
            n = len(vals)
            keys = list(b.keys)
            key_index = np.frombuffer(kidx, dtype=np.int32)
            values = np.frombuffer(vals, dtype=np.float64)
            left = n * POINT_BYTES + len(counts) * ROW_BYTES  # what append() counted
            row_bytes = len(counts) * ROW_BYTES
            # A busy run can buffer millions of points between sends; split it so
            # no message passes the server's per-batch and gRPC size limits. Each
            # part carries its share of the counted bytes; the last one the rest.
            for lo in range(0, n, part_points):
                hi = min(lo + part_points, n)
                nbytes = left if hi == n else (
                    (hi - lo) * POINT_BYTES + (hi - lo) * row_bytes // n)
                left -= nbytes
                # The rows holding points lo..hi-1, their counts clipped to the part.
                r0 = int(np.searchsorted(ends, lo, side="right"))
                r1 = int(np.searchsorted(ends, hi - 1, side="right")) + 1
                part = counts[r0:r1].astype(np.int64)
                part[0] -= lo - (ends[r0] - counts[r0])
                part[-1] -= ends[r1 - 1] - hi
                steps = np.repeat(row_steps[r0:r1], part)
                timestamps = np.repeat(row_ts[r0:r1], part)
                yield DrainedBatch(rid, keys, *_grouped_by_key(
                    key_index[lo:hi], steps, timestamps, values[lo:hi]), nbytes)

    def release(self, nbytes: int) -> None:
        """The server acknowledged `nbytes` (or they were given up): make room."""
        with self._cond:
            self._used_bytes -= nbytes
            self._cond.notify_all()

    def reserve_drain(self, nbytes: int, force: bool = False, claim: bool = True) -> bool:
        """Count a spool frame the sender is about to hold in flight; False (nothing
        counted) when it does not fit in max_bytes with what is held, unless `force`
        (then it is counted anyway, as an overrun). With `claim`, a frame that does not
        fit claims its room: blocking log calls leave it free until a frame goes (or
        unclaim_drain)."""
        with self._cond:
            held = self._used_bytes + self._drain_bytes + nbytes
            if held > self.max_bytes:
                if not force:
                    self._drain_claim = nbytes if claim else 0
                    return False
                self.drain_overruns += 1
            self._drain_claim = 0
            self._drain_bytes += nbytes
            if held > self.peak_held_bytes:
                self.peak_held_bytes = held
            return True

    def unclaim_drain(self) -> None:
        """The drain stopped (the stream ended): log calls may use the claimed room."""
        with self._cond:
            if self._drain_claim:
                self._drain_claim = 0
                self._cond.notify_all()

    def release_drain(self, nbytes: int) -> None:
        """A spool frame in flight was acknowledged (or dropped to be read again)."""
        with self._cond:
            self._drain_bytes -= nbytes
            self._cond.notify_all()

    def fail(self, err: MetricflowError) -> None:
        """Nothing will drain any more: waiting log calls raise `err`, waits end."""
        with self._cond:
            self.failure = err
            self._cond.notify_all()

    def wait_empty(self, timeout: float, give_up: Callable[[], bool] | None = None) -> bool:
        """True once every accepted byte is acknowledged; False on timeout or failure, or
        as soon as `give_up()` says nothing will drain any more (checked every 0.1 s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._used_bytes > 0:
                if self.failure is not None or (give_up is not None and give_up()):
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    @property
    def buffered_points(self) -> int:
        return self._buffered_points

    @property
    def used_bytes(self) -> int:
        return self._used_bytes

    @property
    def drain_bytes(self) -> int:
        """Bytes of spool frames the sender holds in flight."""
        return self._drain_bytes

    @property
    def held_bytes(self) -> int:
        """What the client holds for points: buffered, unacknowledged, spool frames in flight."""
        return self._used_bytes + self._drain_bytes

    @property
    def run_buffers(self) -> int:
        return len(self._runs)

    def forget_run(self, run_id: str) -> None:
        """The run ended: drop its buffer now if empty, else right after its next drain.

        Points logged to it later (still allowed) open a new buffer; nothing is lost.
        """
        with self._cond:
            b = self._runs.get(run_id)
            if b is None:
                return
            if len(b.vals):
                b.ended = True
            else:
                del self._runs[run_id]


def _grouped_by_key(key_index: np.ndarray, steps: np.ndarray, timestamps: np.ndarray,
                    values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The points of one batch grouped by key, each key's points in logging order.

    Any order is valid on the wire; this one lets the writer order a batch's
    points by moving a few long runs instead of sorting every point
    (store/_arrow.py), work that every client does for its own points in its
    sender thread rather than the shared writer for all of them.
    """
    if len(key_index) < 2 or not (key_index[1:] < key_index[:-1]).any():
        return key_index, steps, timestamps, values
    small = int(key_index.max()) < 1 << 16  # then a 16-bit radix sort
    order = np.argsort(key_index.astype(np.uint16) if small else key_index, kind="stable")
    return key_index[order], steps[order], timestamps[order], values[order]
