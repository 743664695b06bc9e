"""DirectSink: the embedded in-process writer with group commit.

Accepted batches wait in a bounded buffer. One writer thread owns all inserts:
it commits a group every `linger_s` or once `max_group_points` are waiting,
whichever comes first, then resolves each batch's future. A batch is acked only
after its group's insert returned.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics
from metricflow.errors import MetricflowError, ResourceExhausted, Unavailable
from metricflow.ingest import _metrics as m
from metricflow.ingest._applier import LogApplier
from metricflow.store import MetricStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectSinkConfig:
    linger_s: float = 0.1
    """Longest time a batch waits before its group is committed."""
    max_group_points: int = 100_000
    """Commit as soon as this many points wait."""
    max_pending_points: int = 2_000_000
    """Bound of the buffer; beyond it submits fail with RESOURCE_EXHAUSTED (clients
    keep their own bounded buffers and resend after the retry hint)."""
    max_insert_points: int = 500_000
    """Largest single insert; a backlog is written as several inserts of this size,
    which bounds the writer's peak memory (Arrow table + ClickHouse sort)."""
    dedup_window: int = 200_000
    """How many recent batch ids are remembered to ack retries without a re-insert."""


class DirectSink:
    """In-process writer into the MetricStore (embedded mode)."""

    def __init__(self, store: MetricStore, config: DirectSinkConfig | None = None) -> None:
        self.store = store
        self.config = config or DirectSinkConfig()
        self.applier = LogApplier(store)
        self._cond = threading.Condition()
        self._batches: list[tuple[DecodedMetrics, tuple[str, int], asyncio.Future[None]]] = []
        self._records: list[tuple[pb.LogRecord, asyncio.Future[None]]] = []
        self._pending_points = 0
        self._first_pending_at = 0.0
        self._committed: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="metricflow-writer", daemon=True)
        self._thread.start()

    def _future(self) -> asyncio.Future[None]:
        assert self._loop is not None, "DirectSink.start() was not awaited"
        return self._loop.create_future()

    def submit_metrics(self, batch: DecodedMetrics, raw: bytes,
                       batch_id: tuple[str, int]) -> asyncio.Future[None]:
        fut = self._future()
        with self._cond:
            if batch_id in self._committed:
                m.DUPLICATE_BATCHES.inc()
                fut.set_result(None)
                return fut
            # An empty buffer always takes one batch (its size is capped by the
            # per-batch limit): otherwise a batch larger than the bound would be
            # refused forever and its client would retry without end.
            if (self._pending_points
                    and self._pending_points + batch.n > self.config.max_pending_points):
                m.REJECTED.labels(reason="sink_full").inc()
                raise ResourceExhausted(
                    f"ingest buffer holds {self._pending_points} points; the limit is "
                    f"{self.config.max_pending_points}", retry_after_s=self.config.linger_s,
                    field="pending_points", limit=self.config.max_pending_points,
                )
            first = not self._batches and not self._records
            if first:
                self._first_pending_at = time.monotonic()
            self._batches.append((batch, batch_id, fut))
            self._pending_points += batch.n
            # Wake the writer on the first item (it starts the linger clock) and
            # when a group is full; in between it sleeps until the linger ends.
            if first or self._pending_points >= self.config.max_group_points:
                self._cond.notify()
        return fut

    def submit_record(self, record: pb.LogRecord, key: str) -> asyncio.Future[None]:
        fut = self._future()
        with self._cond:
            if not self._batches and not self._records:
                self._first_pending_at = time.monotonic()
            self._records.append((record, fut))
            # Run lifecycle and params are interactive calls: commit them promptly.
            self._cond.notify()
        return fut

    def _take_group(self) -> tuple[list, list] | None:
        with self._cond:
            while True:
                if self._batches or self._records:
                    waited = time.monotonic() - self._first_pending_at
                    urgent = self._records or self._pending_points >= self.config.max_group_points
                    if urgent or waited >= self.config.linger_s or self._closing:
                        return self._cut_group()
                    self._cond.wait(self.config.linger_s - waited)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _cut_group(self) -> tuple[list, list]:
        """Take all records and up to max_insert_points of batches (lock held)."""
        cap, taken, n = self.config.max_insert_points, 0, 0
        for b, _, _ in self._batches:
            if n and taken + b.n > cap:
                break
            taken += b.n
            n += 1
        batches, self._batches = self._batches[:n], self._batches[n:]
        records, self._records = self._records, []
        self._pending_points -= taken
        if self._batches:
            self._first_pending_at = time.monotonic() - self.config.linger_s  # due now
        return batches, records

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            batches, records = group
            t0 = time.perf_counter()
            try:
                errors = self.applier.apply([b for b, _, _ in batches], [r for r, _ in records])
            except Exception as e:  # every waiter must hear about it
                log.exception("group commit failed")
                err = e if isinstance(e, MetricflowError) else Unavailable(
                    f"store insert failed: {e}")
                self._resolve([f for _, _, f in batches] + [f for _, f in records], err)
                continue
            m.INSERT_SECONDS.observe(time.perf_counter() - t0)
            points = sum(b.n for b, _, _ in batches)
            m.POINTS_WRITTEN.inc(points)
            m.INSERT_ROWS.observe(points)
            with self._cond:
                for _, bid, _ in batches:
                    self._committed[bid] = None
                while len(self._committed) > self.config.dedup_window:
                    self._committed.popitem(last=False)
            self._resolve([f for _, _, f in batches], None)
            for (_, fut), rec_err in zip(records, errors):
                self._resolve([fut], rec_err)

    def _resolve(self, futs: list[asyncio.Future[None]], err: BaseException | None) -> None:
        if not futs or self._loop is None:
            return

        def done() -> None:
            for f in futs:
                if not f.done():
                    f.set_exception(err) if err is not None else f.set_result(None)

        self._loop.call_soon_threadsafe(done)

    async def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
