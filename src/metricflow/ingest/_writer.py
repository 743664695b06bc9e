"""KafkaWriter: the writer consumer group that moves the ingest log into ClickHouse.

Two loops on one event loop:
- the poller fetches messages (aiokafka decodes them in the event loop) into
  the pending group while at most `max_bytes` are pending;
- the flusher cuts the oldest `max_rows`/`max_bytes` of it once the cut is
  due (full, or `linger_ms` old), decodes it to numpy/Arrow and applies it
  through the same LogApplier as the embedded path (one insert thread), then
  commits offsets, only after the insert returned.
So fetching and decoding the next messages overlap the running insert, and
while a cut is being inserted the next due cut is built in a second thread: a
writer with a backlog keeps both cores busy. (Polling only between inserts left
the insert thread idle while the loop fetched: gaps between the inserts of a
drain, docs/operations.md, "Lag p99 target".)

- A failed insert (ClickHouse down) is retried with exponential backoff and
  jitter. Nothing is committed, and polling stops once `max_bytes` are
  pending, so the consumer lag grows and the Kafka log holds the data: nothing
  is dropped and memory stays bounded by `max_bytes` plus one fetch.
- On a partition revoke the writer first lets a running insert finish (and
  commit), or abandons it if it is stuck in backoff, then drops uncommitted
  messages: the next owner replays them from the committed offset. Replays are
  harmless because every table deduplicates (docs/exactly-once.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._validation import DEFAULT_LIMITS, Limits
from metricflow._wire import DecodedMetrics, decode_metrics
from metricflow.errors import MetricflowError
from metricflow.ingest import _kafka_metrics as km
from metricflow.ingest import _metrics as m
from metricflow.ingest._applier import LogApplier
from metricflow.ingest._kafka import KIND_METRICS, KIND_RECORD, ensure_topic, message_kind
from metricflow.ingest._kafka_config import WriterConfig
from metricflow.ingest._startup_log import DemoteInfo, StartupLogFilter, limit_client_errors
from metricflow.ingest._writer_lag import LagMonitor, LagReservoir
from metricflow.store import InsertTables, MetricStore, build_insert

log = logging.getLogger(__name__)
_POINT_BYTES = 28  # key index + step + timestamp + value on the wire


@dataclass
class _Prepared:
    """One cut of the log, decoded and built, ready to insert."""

    records: list[Any]
    nbytes: int
    tables: InsertTables | None = None
    recs: list[pb.LogRecord] = field(default_factory=list)
    batches: int = 0
    points: int = 0


class KafkaWriter:
    """Consumes the ingest log and applies it to a MetricStore."""

    def __init__(self, store: MetricStore, config: WriterConfig | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.store, self.config, self.limits = store, config or WriterConfig(), limits
        self.applier = LogApplier(store)
        self.lags = LagReservoir()
        self.points_written = 0
        self.messages_written = 0
        self.peak_pending_bytes = 0
        self._consumer: Any = None
        self._lag_monitor: LagMonitor | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="metricflow-insert")
        self._builder = ThreadPoolExecutor(1, thread_name_prefix="metricflow-build")
        self._next: tuple[list[Any], asyncio.Future[_Prepared]] | None = None
        self._group: list[Any] = []
        self._group_bytes = 0
        self._arrivals: deque[list[Any]] = deque()  # [messages, arrival time] per poll
        self._lock = asyncio.Lock()
        self._interrupt = asyncio.Event()
        self._work = asyncio.Event()  # poller -> flusher: messages were added
        self._space = asyncio.Event()  # flusher -> poller: a cut left the group
        self._inserting = 0  # messages in the cut being inserted (0: none)
        self._revoking = False
        self._stopping = False
        self._in_backoff = False
        self._task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._session_tuned = False  # only the insert thread touches it
        self._startup_log = StartupLogFilter(grace_s=0.0)  # replaced by start()
        self._quiet_log = DemoteInfo()

    # ---------------------------------------------------------------- lifecycle
    @property
    def ready(self) -> bool:
        """Consuming, and the last insert did not fail."""
        return self._task is not None and not self._task.done() and not self._in_backoff

    @property
    def consumer_lag(self) -> int:
        """Messages behind the log end, summed over assigned partitions (last measurement)."""
        return self._lag_monitor.total if self._lag_monitor is not None else 0

    async def start(self) -> None:
        """Create the topic if missing, join the group and start consuming."""
        from aiokafka import AIOKafkaConsumer  # server extra

        cfg = self.config
        await ensure_topic(cfg.topic)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.topic.bootstrap, group_id=cfg.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=max(100, cfg.session_timeout_ms // 4),
            max_poll_interval_ms=600_000, isolation_level="read_uncommitted",
        )
        self._quiet_log.install()  # on_assigned logs one line per rebalance instead
        limit_client_errors()
        self._consumer.subscribe([cfg.topic.topic], listener=_Listener(self))
        self._startup_log = StartupLogFilter(note=log).install()  # until the first assignment
        await self._consumer.start()
        self._lag_monitor = LagMonitor(self._consumer, cfg.lag_interval_s)
        self._lag_monitor.start()
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._log_failure)

    async def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Insert and commit what is pending (within the timeout), then leave the group.

        The group is left and the threads end even when the loop had died of an
        error (logged when it happened) or the final insert fails: what is not
        committed is replayed by the next owner.
        """
        self._stopping = True
        for event in (self._work, self._space, self._interrupt):
            event.set()  # wake the loops, and a flusher sleeping in backoff
        if self._poll_task is not None:
            self._poll_task.cancel()  # it may wait for a rebalance, with no timeout
        hung = False  # an insert thread may still be busy: do not wait for it
        try:
            if self._task is not None:
                # A running insert or commit may hang (ClickHouse or Kafka unreachable:
                # aiokafka retries a commit until the consumer stops).
                done, _ = await asyncio.wait({self._task}, timeout=flush_timeout_s)
                if not done:
                    log.warning("the writer loop did not end within %.0f s; abandoning "
                                "its insert or commit (the next owner replays it)",
                                flush_timeout_s)
                    self._task.cancel()
                    hung = True
                await asyncio.gather(self._task, return_exceptions=True)
            async with self._lock:
                try:
                    await asyncio.wait_for(self._flush_all_locked(), flush_timeout_s)
                except TimeoutError:
                    hung = True
                    log.warning("final insert did not finish; the next owner replays it")
                except Exception as e:  # the store is down: replayed later
                    log.warning("final insert failed (%s: %s); the next owner replays it",
                                type(e).__name__, e)
        finally:
            self._startup_log.done()
            if self._lag_monitor is not None:
                await self._lag_monitor.stop()
            if self._consumer is not None:
                await self._consumer.stop()  # its LeaveGroup line is demoted too
            self._quiet_log.remove()
            self._executor.shutdown(wait=not hung)
            self._builder.shutdown(wait=not hung)

    def _log_failure(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (e := task.exception()) is not None and not self._stopping:
            log.error("the writer's consume loop failed; it is not ready until restarted",
                      exc_info=e)

    async def wait(self) -> None:
        """Until the consume loop ends (stop() or a fatal error, which is re-raised)."""
        assert self._task is not None
        await self._task

    # ---------------------------------------------------------------- the loop
    async def _run(self) -> None:
        self._poll_task = asyncio.ensure_future(self._poll_loop())
        tasks = [self._poll_task, asyncio.ensure_future(self._flush_loop())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if not (t.cancelled() and self._stopping):  # stop() cancels the poller
                    t.result()  # the first failure, as raised (a fatal error ends both)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll_loop(self) -> None:
        while not self._stopping:
            if self._group_bytes >= self.config.max_bytes:
                self._space.clear()  # the memory bound: wait for the insert to take a cut
                await self._space.wait()
                continue
            # No check that a revoke happened meanwhile: aiokafka returns only records
            # of the current assignment, whose positions a rebalance reset to the
            # committed offsets, and it has already moved past them. Dropping them
            # here lost them for good (the next commit skipped their offsets).
            got = await self._consumer.getmany(timeout_ms=500, max_records=20_000)
            owned = self._consumer.assignment()
            for tp, records in got.items():
                if tp in owned:
                    self._add(records)
            if got:
                if self._inserting and self._next is None:
                    self._build_ahead(self._inserting)  # the next cut may be due now
                self._work.set()

    async def _flush_loop(self) -> None:
        linger = self.config.linger_ms / 1000.0
        while not self._stopping:
            self._work.clear()
            if self._group and self._group_due(linger):
                async with self._lock:
                    if self._group and not self._stopping:
                        await self._flush_locked()
                self._space.set()
                continue
            wait_s = None
            if self._group:
                wait_s = max(0.0, self._group_started + linger - time.monotonic())
            try:
                await asyncio.wait_for(self._work.wait(), wait_s)
            except TimeoutError:
                pass

    def _add(self, records: list[Any]) -> None:
        self._group.extend(records)
        self._arrivals.append([len(records), time.monotonic()])
        size = sum(len(r.value or b"") for r in records)
        self._group_bytes += size
        km.PENDING_BYTES.set(self._group_bytes)
        if self._group_bytes > self.peak_pending_bytes:
            self.peak_pending_bytes = self._group_bytes
            km.PENDING_PEAK.set(self._group_bytes)
        km.CONSUMED_BYTES.inc(size)

    def _take(self, n: int) -> None:
        """Remove the oldest `n` messages (an inserted cut). The rest keeps its own age:
        messages that arrived while the cut was inserted are not due at once."""
        self._group = self._group[n:]
        while n and self._arrivals:
            head = self._arrivals[0]
            if head[0] <= n:
                n -= head[0]
                self._arrivals.popleft()
            else:
                head[0] -= n
                n = 0

    @property
    def _group_started(self) -> float:
        """When the oldest pending message was polled."""
        return self._arrival_at(0)

    def _arrival_at(self, index: int) -> float:
        """When the group's message at `index` was polled."""
        for count, at in self._arrivals:
            if index < count:
                return float(at)
            index -= count
        return time.monotonic()

    def _group_due(self, linger: float, nbytes: int | None = None,
                   started: float | None = None) -> bool:
        """Whether the pending group (or `nbytes` of it, polled at `started`) should be
        inserted now."""
        c = self.config
        size = self._group_bytes if nbytes is None else nbytes
        since = self._group_started if started is None else started
        return (size >= c.max_bytes
                or size // _POINT_BYTES >= c.max_rows
                or time.monotonic() - since >= linger
                or self._stopping)

    async def _flush_all_locked(self) -> None:
        while self._group:
            await self._flush_locked()

    def _cut(self, pending: list[Any] | None = None) -> tuple[list[Any], int]:
        """The oldest of `pending` (default: the group) up to max_rows/max_bytes, at least one.

        One poll can return far more than one insert should hold (a writer that
        fell behind fetches up to fetch_max_bytes at once). Inserting it whole
        made the first of those points wait for the whole insert; cutting keeps
        inserts at the configured size. Offsets stay correct: each partition's
        messages are in order, and cuts are committed in order.
        """
        c = self.config
        budget = min(c.max_bytes, c.max_rows * _POINT_BYTES)
        taken, size = 0, 0
        pending = self._group if pending is None else pending
        for r in pending:
            n = len(r.value or b"")
            if taken and size + n > budget:
                break
            taken, size = taken + 1, size + n
        return pending[:taken], size

    def _prepared_cut(self) -> asyncio.Future[_Prepared]:
        """The oldest cut, built in the builder thread (or already built ahead)."""
        loop = asyncio.get_running_loop()
        if self._next is not None:
            cut, fut = self._next
            self._next = None
            if self._group and cut and self._group[0] is cut[0]:
                return fut
        records, nbytes = self._cut()
        return loop.run_in_executor(self._builder, self._prepare, records, nbytes)

    def _build_ahead(self, taken: int) -> None:
        """Start building the cut after the first `taken` messages, if it is due."""
        rest = self._group[taken:]
        if not rest or self._next is not None or self._stopping or self._revoking:
            return
        rest_bytes = sum(len(r.value or b"") for r in rest)
        if not self._group_due(self.config.linger_ms / 1000.0, rest_bytes,
                               self._arrival_at(taken)):
            return  # not due yet (by its own age): more messages may join it
        records, nbytes = self._cut(rest)
        fut = asyncio.get_running_loop().run_in_executor(
            self._builder, self._prepare, records, nbytes)
        self._next = (records, fut)

    async def _flush_locked(self) -> None:
        """Insert the oldest cut of the pending group (retrying while the store is
        down), then commit it. The rest stays pending, with its original age."""
        prepared = await self._prepared_cut()
        self._inserting = len(prepared.records)
        try:
            await self._insert_and_commit(prepared)
        finally:
            self._inserting = 0

    async def _insert_and_commit(self, prepared: _Prepared) -> None:
        from aiokafka.structs import OffsetAndMetadata

        records, nbytes = prepared.records, prepared.nbytes
        self._build_ahead(len(records))
        offsets: dict[Any, int] = {}
        for r in records:
            tp = (r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, -1), r.offset + 1)
        loop = asyncio.get_running_loop()
        backoff = self.config.backoff_initial_s
        while True:
            t0 = time.perf_counter()
            try:
                points = await loop.run_in_executor(self._executor, self._store, prepared)
                break
            except Exception as e:  # any store failure: back off, keep the data
                km.INSERT_FAILURES.inc()
                self._in_backoff = True
                if self._revoking:
                    self._drop("revoke during store outage")
                    return
                if self._stopping:
                    raise
                delay = backoff * (0.5 + random.random())
                km.INSERT_BACKOFF.set(delay)
                log.warning("insert of %d messages failed (%s: %s); retrying in %.2fs",
                            len(records), type(e).__name__, str(e)[:200], delay)
                self._interrupt.clear()
                try:
                    await asyncio.wait_for(self._interrupt.wait(), delay)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, self.config.backoff_max_s)
        self._in_backoff = False
        km.INSERT_BACKOFF.set(0)
        done_ms = time.time() * 1000
        m.INSERT_SECONDS.observe(time.perf_counter() - t0)
        m.INSERT_ROWS.observe(points)
        m.POINTS_WRITTEN.inc(points)
        km.INSERT_BYTES.observe(nbytes)
        self.points_written += points
        self.messages_written += len(records)
        ts = np.fromiter((r.timestamp for r in records), dtype=np.float64, count=len(records))
        self.lags.add((done_ms - ts) / 1000.0)
        self._inserting = 0  # a poll during the commit below must not build past the head
        self._take(len(records))
        self._group_bytes -= nbytes
        km.PENDING_BYTES.set(self._group_bytes)
        from aiokafka.structs import TopicPartition

        commit = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in offsets.items()}
        try:
            await self._consumer.commit(commit)
            km.COMMITS.inc()
            if self._lag_monitor is not None:
                self._lag_monitor.committed({tp: om.offset for tp, om in commit.items()})
        except Exception as e:  # inserted but not committed: replayed, deduped
            km.COMMIT_FAILURES.inc()
            log.warning("offset commit failed (%s); the batch will be replayed", e)

    def _drop(self, why: str) -> None:
        self._next = None  # built from messages that are dropped now
        if self._group:
            km.DROPPED_ON_REVOKE.inc(len(self._group))
            log.info("dropping %d uncommitted messages (%s)", len(self._group), why)
        self._group, self._group_bytes = [], 0
        self._arrivals.clear()
        km.PENDING_BYTES.set(0)
        self._space.set()  # the poller may be waiting on the memory bound

    # ----------------------------------------------------- insert thread (sync)
    def _prepare(self, records: list[Any], nbytes: int) -> _Prepared:
        """Decode a cut and build its insert tables (builder thread, no store access)."""
        batches: list[DecodedMetrics] = []
        recs: list[pb.LogRecord] = []
        for r in records:
            kind = message_kind(r)
            try:
                if kind == KIND_METRICS:
                    wb = pb.WriteBatch.FromString(r.value)
                    batches.append(decode_metrics(wb.run_id, wb.metrics, self.limits))
                elif kind == KIND_RECORD:
                    recs.append(pb.LogRecord.FromString(r.value))
                else:
                    km.DECODE_ERRORS.labels(reason="unknown_kind").inc()
            except MetricflowError as e:
                km.DECODE_ERRORS.labels(reason=e.code.value.lower()).inc()
            except Exception:  # a malformed message must not stop the log
                km.DECODE_ERRORS.labels(reason="malformed").inc()
        return _Prepared(records, nbytes, build_insert(batches) if batches else None, recs,
                         len(batches), sum(b.n for b in batches))

    def _store(self, p: _Prepared) -> int:
        """Apply a prepared cut through the LogApplier (insert thread); points inserted."""
        if not self._session_tuned:
            # Skip the in-block ReplacingMergeTree collapse at insert (about half the
            # insert time): reads use FINAL, so they are exact either way.
            self.store.client.set_client_setting("optimize_on_insert", "0")
            self._session_tuned = True
        errors = self.applier.apply_prepared(p.tables, p.recs)
        for err in errors:
            if err is not None:
                km.RECORD_ERRORS.labels(reason=err.code.value.lower()).inc()
        km.CONSUMED_MESSAGES.labels(kind="metrics").inc(p.batches)
        km.CONSUMED_MESSAGES.labels(kind="record").inc(len(p.recs))
        km.WRITTEN_BATCHES.inc(p.batches)
        return p.points

    # ---------------------------------------------------------------- rebalance
    async def on_revoked(self, revoked: set[Any]) -> None:
        km.REBALANCES.labels(event="revoked").inc()
        self._revoking = True
        self._interrupt.set()
        try:
            async with self._lock:  # a running insert finishes (and commits) first
                self._drop("partitions revoked")
        finally:
            self._revoking = False
        if self._lag_monitor is not None:
            self._lag_monitor.forget(revoked)

    async def on_assigned(self, assigned: set[Any]) -> None:
        km.REBALANCES.labels(event="assigned").inc()
        self._startup_log.done()
        # One line per rebalance (aiokafka's own INFO lines are DEBUG, see DemoteInfo).
        log.info("group %s: assigned %d partitions of %s", self.config.group_id,
                 len(assigned), self.config.topic.topic)


def _listener_base() -> type:
    from aiokafka import ConsumerRebalanceListener

    return ConsumerRebalanceListener  # type: ignore[no-any-return]


class _Listener(_listener_base()):  # type: ignore[misc]
    def __init__(self, writer: KafkaWriter) -> None:
        self.writer = writer

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self.writer.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        await self.writer.on_assigned(assigned)
