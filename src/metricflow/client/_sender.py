"""The sender thread: streams drained batches over one gRPC bidi stream.

It owns an asyncio loop in its own thread. A bounded window of batches is in
flight; each stays (and keeps its bytes counted in the accumulator) until the
server acks it as durable. Any failure of a stream (a gRPC status, a write on
an already finished call, a reset connection, anything else) ends only that
stream: the sender reconnects with jittered backoff and resends every
unacknowledged batch with its original (client_id, seq), so the server's dedup
keeps the effect exactly-once. Only close() ends the loop. RESOURCE_EXHAUSTED
acks are resent after the server's retry hint. A non-retriable rejection is
stored and re-raised to the caller on its next call. If the thread itself ever
stops (a bug, a fork), `fatal` is set and every later call raises it.

With a spool (client/_spool.py, METRICFLOW_SPOOL_DIR) the sender "engages" it
when a stream breaks or the buffer passes `spill_threshold`: from then on every
drained batch is encoded (its batch id fixed) and appended to the spool, and
its buffer bytes are freed; the client's run records (create, params, tags,
update, artifacts) are appended there too, in call order. The batches that
were unacknowledged when the stream broke go to the spool first. Once a stream
works, the sender sends the spool's frames in order: metric frames pipelined
on the stream with their original ids, and before each record frame it waits
for every earlier batch's ack, then replays the record's RPC
(`apply_record`). The spool's cursor follows the acks; when everything is
acknowledged the spool disengages and batches go straight to the stream again.
Offline, the sender only spills (nothing is sent).

Memory: the spool frames in flight count against the client's buffer_bytes
together with the live buffer (Accumulator.reserve_drain). During a catch-up the
training process keeps logging into the buffer (spilled to the spool) while the
backlog is read back; a frame goes in flight only when it fits in what the buffer
leaves free, and log calls wait while the two together fill it. A frame that waits
is not held: it is read again once there is room, and meanwhile it claims that room
(blocking log calls leave it free), so a spill's freed bytes go to the drain and not
back to a trainer that logs faster than the catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import encode_metrics
from metricflow.client._accumulator import Accumulator, DrainedBatch
from metricflow.client._spool import KIND_METRICS, Pos, Spool, SpoolFull
from metricflow.errors import (
    DeliveryError,
    ErrorCode,
    InvalidState,
    MetricflowError,
    error_from_code,
)

log = logging.getLogger(__name__)

CONNECTING, CONNECTED, RECONNECTING, FAILED, CLOSED = (
    "connecting", "connected", "reconnecting", "failed", "closed")
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.05, 2.0
_CONNECT_TIMEOUT_S = 10.0
_STILL_FAILING_LOG_S = 30.0  # while an outage lasts, repeat the warning this often
# gRPC's own reconnect backoff (up to 120 s by default) would otherwise hide a
# restarted server from the retries below for minutes.
_STREAM_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", int(_BACKOFF_MAX_S * 1000))]
_SENDERS: weakref.WeakSet[Sender] = weakref.WeakSet()
_STALL_S = 10.0  # no ack for this long with the buffer past the threshold: spool it all
_CURSOR_EVERY_S = 0.5  # persist the spool's cursor at most this often (and at the end)
_RESPOOL_EVERY_S = 1.0  # offline: how often to try the spool again after a failed append
# Give the heap memory of let-go batches back to the OS once this many bytes went, at
# most this often (see _let_go).
_TRIM_EVERY_BYTES = 8 << 20
_TRIM_EVERY_S = 1.0
# A spill encodes parts of at most this many points (1.8 MB as a frame): each part's
# copies (expanded columns, message, serialized frame) are freed before the next, so a
# spill of a full buffer when the server goes away is not a burst of 25 MB per part.
_SPILL_PART_POINTS = 65_536


def _find_malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None (another libc: nothing to do)."""
    try:
        import ctypes

        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # TypeError: CDLL(None) off POSIX
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return lambda: fn(0)


_MALLOC_TRIM = _find_malloc_trim()


@dataclass(frozen=True)
class ClientHealth:
    """A snapshot of a client's metric delivery (`Client.health`).

    Attributes:
        state: "connecting" (no stream opened yet), "connected", "reconnecting"
            (the stream broke or cannot open; retrying with backoff), "failed" (the
            sender stopped with data undelivered or died; every later call raises)
            or "closed".
        target: the host:port metrics are streamed to.
        last_error: the latest stream failure ("" if none); kept after recovery.
        failing_since: wall-clock time (epoch s) delivery started failing; None while healthy.
        failing_for_s: seconds from failing_since to this snapshot (0.0 while healthy).
        reconnects: streams that broke or failed to open since the client started.
        unacked_batches: batches sent or ready to send and not yet acknowledged.
        unacked_bytes: bytes accepted by log calls and not yet acknowledged (buffered ones too).
        buffered_points: points still in the buffer, not yet in a batch.
        acked_points: points the server acknowledged as durable since the client started.
        run_buffers: per-run buffers held (runs not yet ended, or with unsent points).
        spooling: new batches and run records go through the client's spool (an
            outage, a full buffer, or offline; docs/resilience.md).
        spool_pending_bytes: spool bytes not yet acknowledged by the server.
    """

    state: str
    target: str
    last_error: str
    failing_since: float | None
    failing_for_s: float
    reconnects: int
    unacked_batches: int
    unacked_bytes: int
    buffered_points: int
    acked_points: int
    run_buffers: int
    spooling: bool = False
    spool_pending_bytes: int = 0

    def describe(self) -> str:
        """One line on why data is (not) moving, for error messages and logs."""
        where = f"stream to {self.target} {self.state}"
        if self.failing_since is not None:
            return (f"{where}, failing for {self.failing_for_s:.1f}s after {self.reconnects} "
                    f"reconnect attempts; last error: {self.last_error or 'none'}")
        last = f"; last error (recovered): {self.last_error}" if self.last_error else ""
        return f"{where}, waiting for the server to acknowledge{last}"


@dataclass
class _Inflight:
    msg: pb.WriteBatch
    nbytes: int
    points: int
    spool_pos: Pos | None = None  # a frame of the spool (its bytes are not the buffer's)


class Sender:
    """Background sender of one client."""

    def __init__(self, target: str, acc: Accumulator, linger_s: float, max_inflight: int = 64,
                 channel_options: list | None = None, credentials: object = None,
                 metadata: tuple = (), max_inflight_bytes: int = 16 << 20,
                 spool: Spool | None = None, spill_threshold: float = 0.5,
                 offline: bool = False, adopt: bool = False,
                 apply_record: Callable[[int, bytes], None] | None = None) -> None:
        self.target, self.acc, self.linger_s = target, acc, linger_s
        # The window: at most this many batches and (beyond the first) bytes unacked.
        # A client logging to many runs drains one batch per run, so a small count
        # window made it wait for many group commits per drain (soak: ack p50 2.0 s
        # with 8, 0.44 s with 64); the byte bound keeps large batches from piling up
        # on the server.
        self.max_inflight, self.max_inflight_bytes = max_inflight, max_inflight_bytes
        self._inflight_bytes = 0
        self.client_id = uuid.uuid4().hex
        self._options = [*(channel_options or []), *_STREAM_OPTIONS]
        self._credentials = credentials
        self._metadata = metadata
        self._seq = 0
        self._inflight: OrderedDict[int, _Inflight] = OrderedDict()
        self._retry: list[int] = []  # seqs the server asked us to resend later
        # Drained and encoded, waiting for a window slot. Its bytes stay counted
        # in the accumulator until acked, so this is bounded too.
        self._queued: deque[_Inflight] = deque()
        self._acked: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        # Set when a log call put the first point into an empty buffer: an idle sender
        # sleeps until then (it used to wake every linger_s: ~7 ms of CPU a second).
        self._data: asyncio.Event | None = None
        self._data_pending = False
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._abandon = False
        self._stream_gen = 0
        self._progress = False  # the current stream got an ack
        self.error: MetricflowError | None = None  # one rejection, raised once
        self.fatal: MetricflowError | None = None  # the sender stopped: raised on every call
        self.acked_points = 0
        self.reconnects = 0
        self._state = CONNECTING
        self._last_error = ""
        self._failing_since: tuple[float, float] | None = None  # (wall, monotonic)
        self._last_warned = 0.0
        # The spool (None: no METRICFLOW_SPOOL_DIR) and its state.
        self.spool = spool
        self.offline = offline
        self.spill_threshold = int(acc.max_bytes * spill_threshold)
        self.apply_record = apply_record
        self.spooling = spool is not None and (offline or adopt)  # engaged
        self.adopted = adopt  # draining another process's spool (metricflow sync)
        self._spill_lock = threading.Lock()
        self._spool_read: Pos = spool.cursor if spool is not None else (0, 0)
        self._spool_done: Pos = self._spool_read  # acked up to here (not yet persisted)
        self._cursor_saved_at = 0.0
        self._spool_full_warned = False
        self._spool_error_warned = False
        self.spooled_batches = 0
        self.replayed_records = 0
        self.record_errors: list[MetricflowError] = []
        self._overflow: deque[_Inflight] = deque()  # spool full: sent after its frames
        self._respool_at = 0.0  # offline: when to try the spool again with _overflow
        self._force_frame = False  # the next spool frame may go over the budget (no stall)
        self._let_go_bytes = 0  # batch bytes freed since the heap was last trimmed
        self._trimmed_at = 0.0
        self.heap_trims = 0
        self._trim_lock = threading.Lock()  # _let_go runs on the loop and in spill threads
        self._spill_wake: asyncio.Event | None = None
        self._last_ack_at = time.monotonic()  # or when the window last became non-empty
        acc.on_full_batch = self.wake
        acc.on_first_point = self.data_arrived
        acc.describe_stall = self._describe_stall
        if spool is not None:
            acc.spill_when_full = self.spill_for_room
        self._pid = os.getpid()
        _SENDERS.add(self)
        self._thread = threading.Thread(target=self._run, name="metricflow-sender", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------- thread API
    def wake(self) -> None:
        # Log calls wake us once per call while a batch is full; one pending
        # wake-up is enough (each costs a write to the loop's self-pipe).
        if self._wake is not None and not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._do_wake)

    def _do_wake(self) -> None:
        self._wake_pending = False
        self._wake.set()  # type: ignore[union-attr]
        self._spill_wake.set()  # type: ignore[union-attr]

    def data_arrived(self) -> None:
        """A log call put points into an empty buffer: they go out within linger_s."""
        if self._data is not None and not self._data_pending:
            self._data_pending = True
            self._loop.call_soon_threadsafe(self._do_data)

    def _do_data(self) -> None:
        self._data_pending = False
        self._data.set()  # type: ignore[union-attr]

    def _idle(self) -> bool:
        """Nothing buffered, queued, unacknowledged or to resend, and not closing: the
        loops may sleep until a log call, flush, close or the stream wakes them."""
        return (not self.acc.buffered_points and not self._queued and not self._inflight
                and not self._retry and not self._overflow and not self._closing)

    async def _sleep_while_idle(self, reader: asyncio.Future[Any] | None = None) -> None:
        """Wait, without a timeout, for data, a wake-up or the stream's ack reader (a
        broken stream is noticed at once). A wake-up stays set: what it asks for (a
        flush, close) then goes out without the linger."""
        await self._wait_any((self._data, self._wake), reader, None)
        self._data.clear()  # type: ignore[union-attr]

    def close(self, timeout: float) -> None:
        """Send what is left for up to `timeout` seconds, then stop (dropping the rest)."""
        self._closing = True
        self.wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon = True
            self._loop.call_soon_threadsafe(self._cancel_main)
            self._thread.join(5.0)
        if self.fatal is None:
            self.fatal = InvalidState("this metricflow Client is closed; create a new one")
            self._state = CLOSED if self._nothing_pending() else FAILED
            self.acc.fail(self.fatal)  # log calls still waiting for room end now

    def _cancel_main(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def take_error(self) -> MetricflowError | None:
        err, self.error = self.error, None
        return err

    def health(self) -> ClientHealth:
        """A snapshot of the delivery state (safe from any thread)."""
        failing = self._failing_since
        return ClientHealth(
            state=self._state, target=self.target, last_error=self._last_error,
            failing_since=failing[0] if failing else None,
            failing_for_s=time.monotonic() - failing[1] if failing else 0.0,
            reconnects=self.reconnects,
            unacked_batches=len(self._inflight) + len(self._queued),
            unacked_bytes=self.acc.used_bytes, buffered_points=self.acc.buffered_points,
            acked_points=self.acked_points, run_buffers=self.acc.run_buffers,
            spooling=self.spooling,
            spool_pending_bytes=self.spool.pending_bytes() if self.spool is not None else 0)

    # ------------------------------------------------------------ the spool
    @property
    def failing(self) -> bool:
        """The stream is broken (or never opened): calls to the server will likely fail."""
        return self._failing_since is not None

    def spill(self) -> None:
        """Move every buffered point into the engaged spool (any thread); offline, also
        the batches a failed append left in memory."""
        if self.spool is None or not self.spooling or not (
                self.acc.buffered_points or (self.offline and self._overflow)):
            return
        self._spill_and_release()

    def _spill_and_release(self) -> None:
        # The bytes are released before the lock is: a log call waiting for this spill
        # (spill_for_room) then finds the room it made.
        with self._spill_lock:
            released = self._spill_locked()
            if released:
                self.acc.release(released)
        if released:
            self._let_go(released)

    def spill_for_room(self) -> None:
        """A drop-mode log call found the buffer full: spill what it holds into the
        engaged spool, or wait for a spill in progress (another thread's, the spiller's)
        to finish and free its bytes. Nothing without an engaged spool."""
        if self.spool is not None and self.spooling:
            self._spill_and_release()

    def _spill_locked(self) -> int:
        """Called with the spill lock held; returns the buffer bytes to release."""
        spool = self.spool
        if spool is None or not self.spooling:
            return 0
        released = 0
        if self._overflow:
            if not self.offline:
                return 0  # sent after the spool's frames (_spool_step)
            released = self._respool_overflow(spool)
            if self._overflow:
                return released
        if not self.acc.buffered_points:
            return released
        # Encoded, a point takes 28 bytes (key index, step, timestamp, value); what does
        # not fit goes to _overflow below, batch by batch.
        if spool.disk_bytes + spool.files_bytes + (1 << 20) > spool.budget_bytes:
            self._warn_spool_full(spool.disk_bytes + self.acc.buffered_points * 28)
            return released  # points stay in the buffer: log calls block, raise or drop
        # One batch at a time: encoded a point takes 28 bytes (three copies on the way
        # to the file), so encoding a whole buffer at once would triple its memory.
        for b in self.acc.drain_iter(_SPILL_PART_POINTS):
            msg = self._encode(b)
            if self._overflow:  # the spool filled up during this spill: keep order
                self._overflow.append(_Inflight(msg, b.nbytes, len(b.values)))
                continue
            try:
                spool.append(KIND_METRICS, msg.SerializeToString())
            except (SpoolFull, OSError) as e:  # a disk error (the spool cut its torn
                # write) as if full. Kept in memory, counted in the buffer; sent right
                # after the spool's frames.
                if isinstance(e, SpoolFull):
                    self._warn_spool_full(int(e.details.get("received", 0)))
                else:
                    self._warn_spool_error(e)
                self._overflow.append(_Inflight(msg, b.nbytes, len(b.values)))
                continue
            self.spooled_batches += 1
            released += b.nbytes
        return released

    def _respool_overflow(self, spool: Spool) -> int:
        """Offline, batches kept in memory after a disk error (or a full spool) have no
        server to go to: append them to the spool, oldest first, as soon as it takes
        them again. Tried at most once a second after a failure (every time once the
        client is closing). Returns the buffer bytes of the batches spooled."""
        now = time.monotonic()
        if now < self._respool_at and not self._closing:
            return 0
        released = 0
        while self._overflow:
            item = self._overflow[0]
            if not self._append_batch(spool, item.msg):
                self._respool_at = now + _RESPOOL_EVERY_S
                break
            self._overflow.popleft()
            self.spooled_batches += 1
            released += item.nbytes
        if released and not self._overflow:
            log.warning("metricflow spool %s takes writes again; the points kept in memory "
                        "are spooled", spool.dir)
        return released

    def _let_go(self, nbytes: int) -> None:
        """Batches of `nbytes` (counted bytes) were acknowledged or spilled: their
        copies (columns, encoded message, serialized frame: 2-4 times the counted bytes)
        are freed. glibc keeps freed memory in its heaps, and after a burst (a spill of a
        full buffer when the server goes away, a catch-up) a worker kept 50-100 MB
        there with 10-40 MB in use (resilience_bench --memory-trace); so once 8 MiB went,
        at most once a second, malloc_trim hands the free pages back to the OS.

        The trim runs in a short-lived thread of its own: it took 26-83 ms on a
        fragmented heap, which the event loop (acks, sends) must not wait for."""
        trim = _MALLOC_TRIM
        if trim is None:
            return
        with self._trim_lock:
            self._let_go_bytes += nbytes
            if self._let_go_bytes < _TRIM_EVERY_BYTES:
                return
            now = time.monotonic()
            if now - self._trimmed_at < _TRIM_EVERY_S:
                return
            self._let_go_bytes = 0
            self._trimmed_at = now
            self.heap_trims += 1
        threading.Thread(target=trim, name="metricflow-heap-trim", daemon=True).start()

    def _describe_stall(self) -> str:
        text = "offline, spooling" if self.offline else self.health().describe()
        spool = self.spool
        if spool is not None and self._spool_full_warned:
            used = spool.disk_bytes + spool.files_bytes
            text += (f"; the client spool {spool.dir} is full ({used} of "
                     f"{spool.budget_bytes} bytes, METRICFLOW_SPOOL_MAX_BYTES)")
        return text

    def _append_batch(self, spool: Spool, msg: pb.WriteBatch) -> bool:
        """Append one metric batch to the spool; False if it is full or failing (a disk
        error is said once)."""
        try:
            spool.append(KIND_METRICS, msg.SerializeToString())
        except SpoolFull:
            return False
        except OSError as e:
            self._warn_spool_error(e)
            return False
        return True

    def _warn_spool_error(self, e: OSError) -> None:
        if not self._spool_error_warned:
            self._spool_error_warned = True
            log.warning("metricflow spool %s failed to write (%s); what is not spooled stays "
                        "in memory and is sent after the spool's frames, as with a full spool",
                        self.spool.dir if self.spool else "", e)

    def _warn_spool_full(self, needed: int) -> None:
        if not self._spool_full_warned:
            self._spool_full_warned = True
            policy = ("drop points (drop_when_full)" if self.acc.drop_when_full else
                      f"block up to {self.acc.block_timeout_s}s, then raise BufferFull")
            log.warning("metricflow spool %s is full (%d bytes needed, budget %d, "
                        "METRICFLOW_SPOOL_MAX_BYTES); points stay in the memory buffer and "
                        "log calls %s once it is full", self.spool.dir if self.spool else "",
                        needed, self.spool.budget_bytes if self.spool else 0, policy)

    def engage(self, why: str) -> None:
        """Route everything through the spool from now on (until it is drained)."""
        if self.spool is None or self.spooling:
            return
        with self._spill_lock:
            if not self.spooling:
                self.spooling = True
                log.warning("metricflow client spooling to %s: %s", self.spool.dir, why)
        self.wake()

    def spool_record(self, kind: int, payload: bytes) -> bool:
        """Append a run record behind every point logged before it.

        Returns False when the spool is not engaged (the caller calls the server).
        Raises SpoolFull when the spool stays full for the block timeout.
        """
        spool = self.spool
        if spool is None:
            return False
        deadline = time.monotonic() + self.acc.block_timeout_s
        while True:
            with self._spill_lock:
                if not self.spooling:
                    return False
                released = self._spill_locked()
                try:
                    if not self._overflow and not self.acc.buffered_points:
                        spool.append(kind, payload)
                        self.wake()
                        return True
                except SpoolFull:
                    if time.monotonic() >= deadline:
                        raise
                finally:
                    if released:
                        self.acc.release(released)
            if time.monotonic() >= deadline:
                raise SpoolFull(
                    f"client spool {spool.dir} stayed full for {self.acc.block_timeout_s}s "
                    f"({spool.disk_bytes} of {spool.budget_bytes} bytes, "
                    f"METRICFLOW_SPOOL_MAX_BYTES); {self.health().describe()}",
                    field="METRICFLOW_SPOOL_MAX_BYTES", limit=spool.budget_bytes)
            self.wake()
            time.sleep(0.05)

    def _first_unacked_spool_pos(self) -> Pos:
        for item in self._inflight.values():
            if item.spool_pos is not None:
                return item.spool_pos
        return self._spool_read

    def _save_cursor(self, force: bool = False) -> None:
        if self.spool is None:
            return
        now = time.monotonic()
        if force or now - self._cursor_saved_at >= _CURSOR_EVERY_S:
            self._cursor_saved_at = now
            self.spool.commit(self._first_unacked_spool_pos())

    async def _spiller(self) -> None:
        """Moves buffered points into the engaged spool, also while no stream works."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._spill_wake.wait(),  # type: ignore[union-attr]
                                       self.linger_s)
            self._spill_wake.clear()  # type: ignore[union-attr]
            self._check_threshold()
            if self.spooling and self.acc.buffered_points:
                await _in_thread(self.spill)

    def _check_threshold(self) -> None:
        """Spool once the buffer passes the threshold: its unsent part when acks still
        come, and the unacknowledged batches too when none came for _STALL_S (a server
        that is frozen, or a network that drops packets without an error)."""
        if self.spooling or self.offline or self.acc.used_bytes <= self.spill_threshold:
            return
        stalled = bool(self._inflight) and time.monotonic() - self._last_ack_at > _STALL_S
        waiting = self._waiting_bytes()
        if stalled:
            if self._engage_with_unacked():
                log.warning("metricflow client spooling to %s: no ack from %s for %.1fs "
                            "with %d bytes unacknowledged", self.spool.dir if self.spool
                            else "", self.target, time.monotonic() - self._last_ack_at,
                            self.acc.used_bytes)
        elif waiting > self.spill_threshold:
            self.engage(f"{waiting} bytes wait in the buffer unsent, more than the spill "
                        f"threshold ({self.spill_threshold} bytes)")

    def _spool_after_failure(self) -> None:
        """The stream broke: its spool frames are read again; engage and save the rest."""
        spool = self.spool
        if spool is None or self.offline:
            return
        for seq in [q for q, i in self._inflight.items() if i.spool_pos is not None]:
            item = self._inflight.pop(seq)
            self._inflight_bytes -= item.nbytes
            self.acc.release_drain(item.nbytes)
            if item.spool_pos is not None:
                self._spool_read = min(self._spool_read, item.spool_pos)
        if self._engage_with_unacked():
            log.warning("metricflow stream to %s broke; spooling to %s until it is back",
                        self.target, spool.dir)

    def _engage_with_unacked(self) -> bool:
        """Engage the spool and move the unacknowledged batches into it first, in order.

        Runs on the loop. An in-flight batch may still be acknowledged by the stream;
        its copy in the spool is then sent again and deduplicated by the server.
        Returns False when the spool was engaged already.
        """
        spool = self.spool
        assert spool is not None
        with self._spill_lock:
            if self.spooling:
                return False
            self.spooling = True
            # One batch at a time, each dropped from memory once written: serializing
            # them all first would hold a second copy of everything unacknowledged.
            moved = released = 0
            for seq in [q for q, i in self._inflight.items() if i.spool_pos is None]:
                item = self._inflight[seq]
                if not self._append_batch(spool, item.msg):
                    break
                del self._inflight[seq]
                self._inflight_bytes -= item.nbytes
                moved, released = moved + 1, released + item.nbytes
            else:
                while self._queued:
                    item = self._queued[0]
                    if not self._append_batch(spool, item.msg):
                        break
                    self._queued.popleft()
                    moved, released = moved + 1, released + item.nbytes
            if self._inflight or self._queued:
                # Sent before the spool's frames; metric batches may arrive in any order
                # (a point's identity, and the last write by timestamp, do not depend on it).
                log.warning("metricflow spool %s is full or failing; %d unacknowledged "
                            "batches stay in memory", spool.dir,
                            len(self._inflight) + len(self._queued))
            self.spooled_batches += moved
            self.acc.release(released)
        self._let_go(released)
        self._acked.set()  # type: ignore[union-attr]  # a window wait looks again
        return True

    def stuck(self) -> bool:
        """Offline with a full spool: what is still in memory will never drain (an
        offline spool only grows), so waiting for it is pointless. Batches kept after a
        disk error are retried until the client closes (`_respool_overflow`)."""
        return self.offline and (self._spool_full_warned
                                 or (bool(self._overflow) and self._closing))

    def delivery_error(self, what: str) -> DeliveryError:
        """A DeliveryError that says what is undelivered and why."""
        h = self.health()
        code = ErrorCode.UNAVAILABLE if h.failing_since is not None else (
            ErrorCode.DEADLINE_EXCEEDED)
        return DeliveryError(
            f"{what}: {h.unacked_bytes} bytes of metric points not acknowledged "
            f"({h.buffered_points} points buffered, {h.unacked_batches} batches sent or "
            f"queued); {self._describe_stall()}", code, health=h)

    # ------------------------------------------------------------ the loop
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._task = self._loop.create_task(self._main())
            self._loop.run_until_complete(self._task)
        except BaseException as e:  # a dead sender must fail every later call
            if not (self._abandon and isinstance(e, asyncio.CancelledError)):
                self._died(e)
        finally:
            if self._state not in (FAILED, CLOSED):
                self._state = CLOSED
            # grpc.aio may still deliver completion callbacks to this loop after the
            # channel closed; let them drain instead of closing the loop under them.
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(asyncio.sleep(0.05))

    def _died(self, e: BaseException) -> None:
        self._state = FAILED
        self.fatal = DeliveryError(
            f"the metricflow sender thread stopped unexpectedly ({type(e).__name__}: {e}); "
            f"{self.acc.used_bytes} bytes of metric points were not delivered and this "
            "client can deliver no more; create a new Client", ErrorCode.INTERNAL_ERROR)
        log.error("metricflow sender thread died", exc_info=e)
        self.acc.fail(self.fatal)

    async def _main(self) -> None:
        self._wake, self._acked, self._stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._spill_wake, self._data = asyncio.Event(), asyncio.Event()
        if self.offline:
            await self._offline_loop()
            return
        spiller = asyncio.ensure_future(self._spiller()) if self.spool is not None else None
        try:
            await self._online_loop()
        finally:
            if spiller is not None:
                spiller.cancel()
            if self.spool is not None and not self._abandon:
                self._save_cursor(force=True)

    async def _offline_loop(self) -> None:
        """Offline: only move buffered points into the spool."""
        wake = self._wake
        assert wake is not None
        while not (self._closing and not self.acc.buffered_points and not self._overflow):
            if self._idle():
                await self._sleep_while_idle()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.linger_s)
            wake.clear()
            await _in_thread(self.spill)
            if self._closing and self.stuck():
                break  # the spool is full (offline it never drains): nothing more is kept

    async def _online_loop(self) -> None:
        stop = self._stop
        assert stop is not None
        backoff = _BACKOFF_MIN_S
        while not (self._closing and self._nothing_pending()):
            self._progress = False
            try:
                await self._stream_once()
                continue
            except asyncio.CancelledError as e:
                if self._abandon:
                    raise
                err: BaseException = e  # grpc.aio raises it for calls cancelled under us
            except Exception as e:  # no stream failure may end the sender
                err = e
            if self._progress:
                backoff = _BACKOFF_MIN_S
            delay = backoff * (0.5 + random.random())
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
            self._stream_failed(err, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def _nothing_pending(self) -> bool:
        return (not self._inflight and not self._queued and not self.acc.used_bytes
                and not self._overflow and (self.offline or not self.spooling))

    def _stream_failed(self, e: BaseException, delay: float) -> None:
        self._spool_after_failure()
        self.reconnects += 1
        self._state = RECONNECTING
        self._last_error = _describe(e)
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = (time.time(), now)
            self._last_warned = 0.0
        # Loud only when data is waiting; an idle client reconnects quietly.
        if self.acc.used_bytes and now - self._last_warned >= _STILL_FAILING_LOG_S:
            self._last_warned = now
            log.warning("metricflow stream to %s broke (%s); %d bytes unacknowledged, "
                        "retrying in %.2fs", self.target, self._last_error,
                        self.acc.used_bytes, delay)
        else:
            log.debug("metricflow stream to %s broke (%s); retrying in %.2fs",
                      self.target, self._last_error, delay)

    def _healthy(self) -> None:
        if self._failing_since is not None:
            log.info("metricflow stream to %s recovered after %.1fs (%d batches resent)",
                     self.target, time.monotonic() - self._failing_since[1],
                     len(self._inflight))
            self._failing_since = None

    def _channel(self) -> grpc.aio.Channel:
        if self._credentials is not None:
            return grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
        return grpc.aio.insecure_channel(self.target, options=self._options)

    async def _stream_once(self) -> None:
        async with self._channel() as channel:
            self._stream_gen += 1
            call = channel.stream_stream(
                "/metricflow.ingest.v1.IngestService/Write",
                request_serializer=pb.WriteBatch.SerializeToString,
                response_deserializer=pb.WriteAck.FromString,
            )(metadata=self._metadata or None)
            self._retry.clear()  # everything unacknowledged is resent below anyway
            reader = asyncio.ensure_future(self._read_acks(call))
            # Its failure is raised through _raise_if_done, or superseded by the write's
            # own; retrieve it so asyncio does not log it as never retrieved.
            reader.add_done_callback(lambda f: f.cancelled() or f.exception())
            try:
                await self._until_ready(channel, reader)
                self._state = CONNECTED
                if not self._inflight and not self._queued:
                    self._healthy()  # else: once the server acks again
                # Resend what the previous stream left unacknowledged, in order.
                for item in list(self._inflight.values()):
                    await call.write(item.msg)
                await self._send_loop(call, reader)
            except asyncio.InvalidStateError:
                # A write found the call finished: the server or the connection ended it
                # before the ack reader saw why. Say why (its status), not "RPC already
                # finished".
                await _raise_final_status(call)
                raise
            finally:
                self.acc.unclaim_drain()
                reader.cancel()
                call.cancel()

    async def _until_ready(self, channel: grpc.aio.Channel, reader: asyncio.Future) -> None:
        """Wait until the channel connects; a refused connection fails the call (reader)."""
        ready = asyncio.ensure_future(channel.channel_ready())
        try:
            await asyncio.wait({ready, reader}, timeout=_CONNECT_TIMEOUT_S,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        _raise_if_done(reader)
        if not ready.done() or ready.cancelled():
            raise ConnectionError(f"no connection to {self.target} within {_CONNECT_TIMEOUT_S}s")

    async def _send_loop(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Future) -> None:
        while True:
            _raise_if_done(reader)
            if self.spooling:
                if not await self._spool_step(call, reader):
                    await self._wait_event(self._wake, self._acked, reader)
                continue
            if self.spool is not None:
                self._check_threshold()
                if self.spooling:
                    continue
            if (self._closing and not self.acc.buffered_points and not self._retry
                    and not self._queued):
                if not self._inflight:
                    await call.done_writing()
                    return
                await asyncio.sleep(0.01)
                continue
            if not self._queued:
                if self._idle() and not self.spooling:
                    await self._sleep_while_idle(reader)
                    continue  # then linger below for the batch to fill
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.linger_s)  # type: ignore[union-attr]
                self._wake.clear()  # type: ignore[union-attr]
            await self._write_retries(call)
            with self._spill_lock:
                if self.spooling:
                    continue  # a record call engaged the spool meanwhile
                # One batch built at a time: each part's expanded columns are freed once
                # it is encoded (drain() built every part of the buffer first).
                for batch in self.acc.drain_iter():
                    msg = self._encode(batch)
                    self._queued.append(_Inflight(msg, batch.nbytes, len(batch.values)))
            while self._queued:
                await self._wait_window(call, reader, self._queued[0].nbytes)
                if not self._queued or self.spooling:
                    break  # moved to the spool meanwhile (a stalled server)
                item = self._queued.popleft()
                # In flight before the write: if the stream breaks now, it is resent.
                if not self._inflight:
                    self._last_ack_at = time.monotonic()
                self._inflight[item.msg.seq] = item
                self._inflight_bytes += item.nbytes
                await call.write(item.msg)

    async def _wait_event(self, a: asyncio.Event | None, b: asyncio.Event | None,
                          reader: asyncio.Future) -> None:
        """Wait up to linger_s for either event (or the ack stream's end); clear both."""
        await self._wait_any((a, b), reader, self.linger_s)
        for e in (a, b):
            if e is not None:
                e.clear()

    @staticmethod
    async def _wait_any(events: tuple[asyncio.Event | None, ...],
                        reader: asyncio.Future[Any] | None, timeout: float | None) -> None:
        """Until one of `events` is set, `reader` is done or `timeout` s (None: no limit)."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait())
                                              for e in events if e is not None]
        if reader is not None:
            waiters.append(reader)
        try:
            await asyncio.wait(set(waiters), timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if w is not reader:
                    w.cancel()

    async def _send_queued(self, call: grpc.aio.StreamStreamCall,
                           reader: asyncio.Future) -> None:
        """Send the head of `_queued`. It stays queued while it waits for a window
        slot: a stream that breaks meanwhile must find it (resent or spooled), never
        lose it between the queue and the in-flight map."""
        await self._wait_window(call, reader, self._queued[0].nbytes)
        if not self._queued:
            return  # moved to the spool meanwhile
        item = self._queued.popleft()
        if not self._inflight:
            self._last_ack_at = time.monotonic()
        self._inflight[item.msg.seq] = item
        self._inflight_bytes += item.nbytes
        await call.write(item.msg)

    async def _spool_step(self, call: grpc.aio.StreamStreamCall,
                          reader: asyncio.Future) -> bool:
        """Send what the engaged spool holds, in order; disengage once all is acked.

        Returns False when there was nothing to do (the caller waits).
        """
        spool = self.spool
        assert spool is not None
        progressed = False
        while self._queued:  # left by the direct path: older than the spool's frames
            await self._send_queued(call, reader)
            progressed = True
        await self._write_retries(call)
        while (frame := spool.read(self._spool_read)) is not None:
            if frame.kind == KIND_METRICS:
                nbytes = len(frame.payload)
                if not self._take_room(nbytes):
                    frame = None  # not held while it waits: read again once there is room
                    await self._wait_room(call, reader, nbytes)
                    progressed = True
                    continue
                msg = pb.WriteBatch.FromString(frame.payload)
                item = _Inflight(msg, nbytes, len(msg.metrics.values) // 8, frame.pos)
                self._spool_read = frame.next
                frame = None
                self._inflight[msg.seq] = item
                self._inflight_bytes += nbytes
                await call.write(msg)
            else:
                # A run record follows the points logged before it: wait for their acks.
                while self._inflight:
                    _raise_if_done(reader)
                    await self._write_retries(call)
                    await self._wait_event(self._acked, None, reader)
                await _in_thread(self._replay_record, frame.kind, frame.payload)
                self._spool_read = frame.next
                self._save_cursor(force=True)
            progressed = True
        if self._overflow:  # held in memory while the spool was full: after its frames
            with self._spill_lock:  # (a spill thread may append to it meanwhile)
                held = list(self._overflow)
                self._overflow.clear()
            self._queued.extend(held)
            return True
        if self.offline or any(i.spool_pos is not None for i in self._inflight.values()):
            return progressed
        if self._waiting_bytes() > self.spill_threshold:
            # More is buffered than goes straight out (points held while the overflow
            # was): it goes through the spool first. Turning spooling off here would have
            # _check_threshold turn it on again at once, and the two spun without
            # awaiting anything (seen for 10 s, until the stall check).
            await _in_thread(self.spill)
            return True
        with self._spill_lock:
            # Buffered points are newer than every frame: they may go straight out.
            if spool.read(self._spool_read) is None and not self._overflow and not self._queued:
                self._save_cursor(force=True)
                self.spooling = False
                self._spool_full_warned = False
                if self.adopted:  # metricflow sync: its summary says what was uploaded
                    log.debug("metricflow spool %s drained", spool.dir)
                else:
                    log.info("metricflow spool %s drained (%d batches spooled so far); "
                             "sending directly again", spool.dir, self.spooled_batches)
                return True
        return progressed

    def _take_room(self, nbytes: int) -> bool:
        """Count a spool frame of `nbytes` in flight if the window and the buffer's
        budget (live points + frames in flight <= buffer_bytes) have room for it."""
        if self._window_full(nbytes):
            return False
        force, self._force_frame = self._force_frame, False
        # A frame that finds no room claims it only when nothing is in flight: then a
        # spill is what frees room, and the trainer must not take it first. With batches
        # in flight their acks free it; a claim would only shrink the trainer's room.
        return self.acc.reserve_drain(nbytes, force=force, claim=not self._inflight)

    async def _wait_room(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Future,
                         nbytes: int) -> None:
        """Make room for a spool frame: wait for an ack while anything is in flight
        (spool frames or live batches sent before the spool engaged: each ack frees its
        bytes), else spill the buffered points (they go to the spool anyway). Only when
        nothing is in flight and the spill freed nothing (points held in memory because
        the spool is full) does the next frame go over the budget, so the drain, which
        is what frees the spool, never stalls."""
        _raise_if_done(reader)
        await self._write_retries(call)
        if self._inflight:
            await self._wait_event(self._acked, None, reader)
            return
        if self.acc.buffered_points:
            await _in_thread(self.spill)
        if self.acc.held_bytes + nbytes > self.acc.max_bytes:
            # Nothing in flight and the spill freed too little: what fills the budget
            # waits in memory for this drain (a full spool), or the frame alone is
            # larger than the budget.
            self._force_frame = True

    def _waiting_bytes(self) -> int:
        """Buffer bytes not yet sent (what spilling would move to the spool)."""
        sent = self._inflight_bytes + sum(q.nbytes for q in self._queued)
        return self.acc.used_bytes - sent

    def _replay_record(self, kind: int, payload: bytes) -> None:
        """Replay one spooled run record; a refusal is reported, a retriable error retried."""
        if self.apply_record is None:
            raise InvalidState("this sender cannot replay run records")
        try:
            self.apply_record(kind, payload)
        except MetricflowError as e:
            if e.retriable:
                raise
            log.error("metricflow: a spooled run record (%s) was refused: %s", chr(kind), e)
            self.record_errors.append(e)
            self.error = e
        self.replayed_records += 1

    async def _write_retries(self, call: grpc.aio.StreamStreamCall) -> None:
        retry, self._retry = self._retry, []
        for seq in retry:
            if (item := self._inflight.get(seq)) is not None:
                await call.write(item.msg)

    def _window_full(self, nbytes: int) -> bool:
        return bool(self._inflight) and (
            len(self._inflight) >= self.max_inflight
            or self._inflight_bytes + nbytes > self.max_inflight_bytes)

    async def _wait_window(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Future,
                           nbytes: int) -> None:
        """Wait for a free in-flight slot; give up if the ack stream died meanwhile.

        Batches the server pushed back stay in flight until resent, so while
        waiting we also write the retries that fall due (they free the slots).
        """
        while self._window_full(nbytes):
            _raise_if_done(reader)
            await self._write_retries(call)
            self._acked.clear()  # type: ignore[union-attr]
            waiter = asyncio.ensure_future(self._acked.wait())  # type: ignore[union-attr]
            try:
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    def _encode(self, b: DrainedBatch) -> pb.WriteBatch:
        self._seq += 1
        msg = pb.WriteBatch(client_id=self.client_id, seq=self._seq, run_id=b.run_id)
        encode_metrics(msg.metrics, b.keys, b.key_index, b.steps, b.timestamps, b.values)
        return msg

    async def _read_acks(self, call: grpc.aio.StreamStreamCall) -> None:
        gen = self._stream_gen
        async for ack in call:
            self._last_ack_at = time.monotonic()
            item = self._inflight.get(ack.seq)
            if item is None:
                continue  # an ack of a resent batch that was already acked
            if not self._progress:
                self._progress = True
                self._healthy()
            if ack.ok:
                self.acked_points += ack.points  # before _finish frees the buffer space
                self._finish(ack.seq, item)
                continue
            err = error_from_code(ack.error_code, ack.error_message,
                                  retry_after_s=ack.retry_after_s)
            if err.retriable:
                delay = ack.retry_after_s or 0.1
                asyncio.get_running_loop().call_later(
                    delay * (0.5 + random.random()), self._resend, ack.seq, gen)
            else:
                log.error("metricflow rejected a batch of run %s: %s", item.msg.run_id, err)
                self.error = err
                self._finish(ack.seq, item)

    def _resend(self, seq: int, gen: int) -> None:
        if gen != self._stream_gen:
            return  # a new stream resent every unacknowledged batch already
        # Writes happen only in the send loop (gRPC forbids concurrent writes).
        self._retry.append(seq)
        self._wake.set()  # type: ignore[union-attr]
        self._acked.set()  # type: ignore[union-attr]  # wakes a full-window wait too

    def _finish(self, seq: int, item: _Inflight) -> None:
        del self._inflight[seq]
        self._inflight_bytes -= item.nbytes
        self._acked.set()  # type: ignore[union-attr]
        if item.spool_pos is None:
            self.acc.release(item.nbytes)
        else:
            self.acc.release_drain(item.nbytes)
            self._save_cursor()
        self._let_go(item.nbytes)


async def _in_thread(fn: Callable[..., None], *args: object) -> None:
    """Run blocking work (disk, a unary RPC) off the loop; at interpreter exit, when the
    default executor is already shut down (before atexit runs close()), run it here."""
    try:
        await asyncio.to_thread(fn, *args)
    except RuntimeError as e:
        if "shutdown" not in str(e):  # "cannot schedule new futures after (interpreter) shutdown"
            raise
        fn(*args)


def _raise_if_done(reader: asyncio.Future) -> None:
    """Re-raise the ack reader's failure (or report its end) as a broken stream."""
    if reader.done():
        reader.result()
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                   grpc.aio.Metadata(), "ack stream ended")


async def _raise_final_status(call: Any) -> None:
    """Raise a finished call's own status as an AioRpcError (return if it has none)."""
    if not call.done():
        return
    code, details = await call.code(), await call.details()
    raise grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE if code == grpc.StatusCode.OK else code,
        grpc.aio.Metadata(), grpc.aio.Metadata(),
        f"the server ended the stream ({code.name}: {details or 'no details'}) while this "
        "client was still writing")


def _describe(e: BaseException) -> str:
    """A stream failure in one line: the gRPC status and details, or the exception."""
    if isinstance(e, grpc.aio.AioRpcError):
        text = f"{e.code().name}: {e.details()}"
    else:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return text.splitlines()[0][:500] if text else type(e).__name__


def _after_fork_in_child() -> None:
    # Threads do not survive fork: a client copied into a child has no sender,
    # so its log calls would be accepted and never sent.
    for s in list(_SENDERS):
        if s.fatal is None:
            s._state = FAILED  # this module's own object
            s.fatal = InvalidState(
                f"this metricflow Client was created in process {s._pid} and cannot send "
                "from a forked child; create a new Client in the child")


os.register_at_fork(after_in_child=_after_fork_in_child)
