"""Live-tail streams: limits, one shared poller, a bounded buffer per stream.

Every open tail (gRPC TailMetrics or POST /api/v1/metrics/tail) is a
`TailStream` registered with the process's `TailHub`. The hub admits a stream
only under the global and per-user limits, and one poller thread serves all
streams in turn (earliest due first), one query at a time. After each poll it
rests in proportion to the poll's cost, so tail queries together take at most
`poll_share` of one core however many tails are open; other requests keep the
rest of the store. Tails of the same runs at the same position share one poll.

A poll only runs for a stream whose buffer is at most half full, and reads at
most half a buffer of points, so a stream never holds more than
`buffer_bytes`. A stream whose buffer stays over half full for `stall_s`
(its reader does not keep up) is cut off: its buffer is dropped, its slot
freed, and its reader gets RESOURCE_EXHAUSTED naming the limit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from metricflow.errors import InvalidArgument, MetricflowError, ResourceExhausted
from metricflow.query._tail import POINT_BYTES, TailChunk, Tailer, check_tail

log = logging.getLogger(__name__)

MESSAGE_POINTS = 32_768
"""Points per sent chunk (768 KiB): one message in flight per stream stays small."""


@dataclass(frozen=True)
class TailLimits:
    """Bounds of the live tails of one server process (see docs/query.md)."""

    max_streams: int = 64
    """Open tails in the whole process (METRICFLOW_TAIL_MAX_STREAMS)."""
    max_streams_per_user: int = 8
    """Open tails per authenticated user (METRICFLOW_TAIL_MAX_STREAMS_PER_USER); with auth
    off only `max_streams` applies."""
    buffer_bytes: int = 4 << 20
    """Points (24 bytes each) one stream may hold for its reader (METRICFLOW_TAIL_BUFFER_BYTES)."""
    stall_s: float = 30.0
    """A stream whose buffer stays over half full this long is cut off (METRICFLOW_TAIL_STALL_S)."""
    min_poll_ms: int = 100
    """Shorter requested poll intervals are raised to this (METRICFLOW_TAIL_MIN_POLL_MS)."""
    poll_share: float = 0.25
    """Fraction of one core all tail polls together may take (METRICFLOW_TAIL_POLL_SHARE)."""

    def __post_init__(self) -> None:
        for name, lo in (("max_streams", 1), ("max_streams_per_user", 1),
                         ("buffer_bytes", 2 * POINT_BYTES * 1024), ("min_poll_ms", 1)):
            if getattr(self, name) < lo:
                raise InvalidArgument(f"tail limit {name} must be at least {lo}, got "
                                      f"{getattr(self, name)}", field=name, limit=lo)
        if not 0 < self.poll_share <= 1:
            raise InvalidArgument(f"tail limit poll_share must be in (0, 1], got "
                                  f"{self.poll_share}", field="poll_share")
        if self.stall_s <= 0:
            raise InvalidArgument(f"tail limit stall_s must be positive, got {self.stall_s}",
                                  field="stall_s")


@dataclass(frozen=True)
class TailStats:
    """What the hub holds now, for /metrics, tests and operators."""

    open_streams: int
    buffered_bytes: int
    """Bytes of points held for readers (queued plus the one chunk each reader is sending)."""
    peak_stream_bytes: int
    """Most bytes any one stream has held since the hub started."""
    cut_off: int
    """Streams cut off because their reader did not keep up."""
    polls: int
    """Store polls run (one serves every tail of the same runs at the same position)."""
    served: int
    """Stream polls those served (more than `polls` when tails share them)."""
    poll_seconds: float


def _split(chunks: list[TailChunk]) -> list[TailChunk]:
    out = []
    for c in chunks:
        for i in range(0, len(c.steps), MESSAGE_POINTS):
            j = i + MESSAGE_POINTS
            out.append(TailChunk(c.run_id, c.key, c.steps[i:j], c.timestamps[i:j],
                                 c.values[i:j]))
    return out


def _nbytes(c: TailChunk) -> int:
    return int(c.steps.nbytes + c.timestamps.nbytes + c.values.nbytes)


class TailStream:
    """One open tail; its reader awaits `next_chunk()` and calls `close()` at the end."""

    def __init__(self, hub: TailHub, tailer: Tailer, interval: float, user: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._hub, self.tailer, self.interval, self.user = hub, tailer, interval, user
        self._loop = loop
        self._ready = asyncio.Event()
        self._queue: deque[TailChunk] = deque()
        self.queued = 0
        self.sending = 0  # bytes of the chunk the reader took last (still being written)
        self.due = 0.0
        self.full_since: float | None = None
        self.error: MetricflowError | None = None
        self.closed = False

    @property
    def buffered(self) -> int:
        return self.queued + self.sending

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop is gone (server stopping): nobody reads any more
            pass

    async def next_chunk(self, timeout: float) -> TailChunk | None:
        """The next chunk, or None after `timeout` idle seconds; raises the stream's error.

        Calling again means the previous chunk was sent: its bytes are released then.
        """
        with self._hub.lock:
            self.sending = 0
            if self.buffered <= self._hub.limits.buffer_bytes // 2:
                self.full_since = None
                self._hub.cond.notify()
        deadline = self._loop.time() + timeout
        while True:
            with self._hub.lock:
                if self.error is not None:
                    raise self.error
                if self._queue:
                    c = self._queue.popleft()
                    n = _nbytes(c)
                    self.queued -= n
                    self.sending = n
                    if self.buffered <= self._hub.limits.buffer_bytes // 2:
                        self.full_since = None
                        self._hub.cond.notify()  # room for the next poll
                    return c
                self._ready.clear()
            left = deadline - self._loop.time()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self._ready.wait(), left)
            except TimeoutError:
                return None

    def close(self) -> None:
        """Leave the hub (idempotent): the slot and the buffer are released."""
        self._hub.release(self)


class TailHub:
    """Admits, polls and bounds the live tails of one QueryCore."""

    def __init__(self, client_of: Any, db: str, limits: TailLimits | None = None,
                 plan_of: Any = None) -> None:
        """`plan_of`: MetricStore.read_plan (resumed runs and forks read by lineage)."""
        self._client_of, self._db, self._plan_of = client_of, db, plan_of
        self.limits = limits if limits is not None else TailLimits()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._streams: list[TailStream] = []
        self._per_user: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        self._peak = self._cut = self._polls = self._served = 0
        self._poll_s = 0.0

    # ------------------------------------------------------------ admission
    def open(self, run_ids: list[str], keys: list[str], from_start: bool, poll_ms: int,
             user: str | None, loop: asyncio.AbstractEventLoop) -> TailStream:
        """Admit a tail (ResourceExhausted over a limit) and read its starting cursor.

        Blocking (the cursor is a query): call it from a worker thread. `user` None =
        auth off (only the global limit applies).
        """
        interval = max(check_tail(list(run_ids), list(keys), poll_ms),
                       self.limits.min_poll_ms / 1000.0)
        who = user or ""
        with self.lock:
            lim = self.limits
            if len(self._streams) >= lim.max_streams:
                raise ResourceExhausted(
                    f"too many live tails: the server allows {lim.max_streams} at once "
                    "(METRICFLOW_TAIL_MAX_STREAMS); close one or retry later",
                    retry_after_s=5.0, field="max_streams", limit=lim.max_streams)
            if user is not None and self._per_user[who] >= lim.max_streams_per_user:
                raise ResourceExhausted(
                    f"too many live tails for user {who!r}: {lim.max_streams_per_user} may be "
                    "open at once (METRICFLOW_TAIL_MAX_STREAMS_PER_USER); close one first",
                    retry_after_s=5.0, field="max_streams_per_user",
                    limit=lim.max_streams_per_user)
            placeholder = TailStream(self, None, interval, who, loop)  # type: ignore[arg-type]
            placeholder.due = float("inf")  # holds the slot while the cursor is read
            self._streams.append(placeholder)
            self._per_user[who] += 1
        try:
            placeholder.tailer = Tailer(self._client_of, self._db, list(run_ids), list(keys),
                                        from_start, plan_of=self._plan_of)
        except BaseException:
            self.release(placeholder)
            raise
        with self.cond:
            placeholder.due = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metricflow-tail",
                                                daemon=True)
                self._thread.start()
            self.cond.notify()
        return placeholder

    async def open_async(self, run_ids: list[str], keys: list[str], from_start: bool,
                         poll_ms: int, user: str | None) -> TailStream:
        """`open` off the event loop; a caller cancelled meanwhile leaves no stream behind."""
        loop = asyncio.get_running_loop()
        fut = asyncio.ensure_future(asyncio.to_thread(
            self.open, run_ids, keys, from_start, poll_ms, user, loop))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            def close_late(f: asyncio.Future[TailStream]) -> None:
                if not f.cancelled() and f.exception() is None:
                    f.result().close()
            fut.add_done_callback(close_late)
            raise

    def release(self, s: TailStream) -> None:
        with self.cond:
            self._drop(s)

    def _drop(self, s: TailStream) -> None:
        # Called with the lock held.
        if s.closed:
            return
        s.closed = True
        self._streams.remove(s)
        self._per_user[s.user] -= 1
        if self._per_user[s.user] <= 0:
            del self._per_user[s.user]
        s._queue.clear()
        s.queued = 0
        self.cond.notify()

    def stats(self) -> TailStats:
        with self.lock:
            return TailStats(len(self._streams), sum(s.buffered for s in self._streams),
                             self._peak, self._cut, self._polls, self._served, self._poll_s)

    # ------------------------------------------------------------ the poller
    def _next(self, now: float) -> tuple[TailStream | None, float]:
        """(stream to poll, or None and how long to wait). Lock held."""
        half = self.limits.buffer_bytes // 2
        best, wait = None, 1.0
        for s in list(self._streams):
            if s.buffered > half:
                if s.full_since is None:
                    s.full_since = now
                elif now - s.full_since >= self.limits.stall_s:
                    self._cut_off(s)
                    continue
                wait = min(wait, s.full_since + self.limits.stall_s - now)
            elif s.due <= now and (best is None or s.due < best.due):
                best = s
            else:
                wait = min(wait, s.due - now)
        return best, max(wait, 0.001)

    def _cut_off(self, s: TailStream) -> None:
        lim = self.limits
        s.error = ResourceExhausted(
            f"live tail cut off: its reader did not keep up for {lim.stall_s:g} s with "
            f"{s.queued} bytes waiting (per-stream buffer {lim.buffer_bytes} bytes, "
            "METRICFLOW_TAIL_BUFFER_BYTES / METRICFLOW_TAIL_STALL_S); read faster, tail "
            "fewer runs or keys, or use GetMetricHistory for the backlog",
            retry_after_s=1.0, field="buffer_bytes", limit=lim.buffer_bytes)
        self._cut += 1
        log.info("live tail of %s cut off: reader stalled with %d bytes buffered",
                 s.user or "(auth off)", s.queued)
        self._drop(s)
        s._wake()

    def _riders(self, s: TailStream) -> list[TailStream]:
        """Other streams one poll of `s` serves as well: same runs, keys and cursors. Lock held."""
        half = self.limits.buffer_bytes // 2
        t = s.tailer
        return [o for o in self._streams if o is not s and o.tailer is not None
                and o.error is None and o.buffered <= half and o.tailer.run_ids == t.run_ids
                and o.tailer.keys == t.keys and o.tailer.cursors == t.cursors]

    def _run(self) -> None:
        lim = self.limits
        rows = (lim.buffer_bytes // 2) // POINT_BYTES
        while True:
            with self.cond:
                if not self._streams:
                    self._thread = None
                    return
                s, wait = self._next(time.monotonic())
                if s is None:
                    self.cond.wait(wait)
                    continue
                # Tails of the same runs at the same position (a dashboard opened many
                # times) share one poll: the cost is per view, not per stream.
                served = [s, *self._riders(s)]
                now = time.monotonic()
                for o in served:
                    o.due = now + o.interval
                tailer = s.tailer
            t0 = time.monotonic()
            err: MetricflowError | None = None
            chunks: list[TailChunk] = []
            try:
                chunks = _split(list(tailer.poll(max_rows=rows)))
            except MetricflowError as e:
                err = e
            except Exception as e:  # one failed poll ends its streams only
                log.exception("live tail poll failed")
                err = MetricflowError(f"live tail poll failed: {type(e).__name__}")
            cost = time.monotonic() - t0
            nbytes = sum(_nbytes(c) for c in chunks)
            with self.cond:
                self._polls += 1
                self._served += len(served)
                self._poll_s += cost
                for o in served:
                    if o.closed:
                        continue
                    if err is not None:
                        o.error = err
                        self._drop(o)
                    else:
                        if o is not s:
                            o.tailer.cursors = dict(tailer.cursors)
                        o._queue.extend(chunks)  # shared arrays; each stream counts them
                        o.queued += nbytes
                        self._peak = max(self._peak, o.buffered)
                    if chunks or err is not None:
                        o._wake()
            # The budget: rest so polls take at most poll_share of this thread's time.
            time.sleep(cost * (1.0 / lim.poll_share - 1.0))
