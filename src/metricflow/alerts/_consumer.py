"""The `alerts` role's Kafka consumer: its own group on the ingest topic.

It reads the same messages the writers read (metric batches and run records, keyed
by run id) in a consumer group of its own (`metricflow-alerts`), so it never takes
partitions or time from the writers, and scales out with the topic's partitions:
each alerts process evaluates the runs of the partitions it owns. Offsets are
committed automatically; a new group starts at the end of the log (alerts are
about live points, not history). After a restart the points since the last
committed offset are evaluated again; alert state in the control plane keeps that
from notifying twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics, decode_metrics
from metricflow.alerts import _metrics as am
from metricflow.ingest import KIND_RECORD, limit_client_errors, message_kind

log = logging.getLogger(__name__)


Submit = Callable[[Sequence[DecodedMetrics], Sequence[pb.LogRecord]], None]


class AlertsConsumer:
    """Polls the ingest topic and hands each poll's batches and records to `submit`."""

    MAX_WAIT_S = 60.0
    """Longest wait for room in the evaluator's queue before reading on regardless."""

    def __init__(self, bootstrap: str, topic: str, submit: Submit,
                 group_id: str = "metricflow-alerts", session_timeout_ms: int = 10_000,
                 on_read: Callable[[float], None] | None = None,
                 has_room: Callable[[], bool] | None = None,
                 drop: Submit | None = None) -> None:
        """`on_read(t)`: after a poll that read every partition to its end, everything
        produced before `t` (this host's `time.time()`) has been submitted: the
        evaluator's stalled checks allow for how long ago that was. `has_room()`: False
        while the evaluator's queue is full; the consumer then reads nothing more until
        it has room (the log keeps the rest), so `submit` never has to drop a batch.
        `drop`: where a poll's batches go after MAX_WAIT_S without room (a `submit`
        that drops, and counts, what does not fit); None: to `submit`."""
        self.bootstrap, self.topic, self.submit = bootstrap, topic, submit
        self.on_read, self.has_room, self.drop = on_read, has_room, drop
        self.waited_s = 0.0  # time spent waiting for the evaluator's room
        self._drop_next = False  # the next poll's batches go to `drop` (no room after a wait)
        self.group_id, self.session_timeout_ms = group_id, session_timeout_ms
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self.ready = False
        self.messages = 0
        self.bad_messages = 0

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer  # server extra

        limit_client_errors()
        self._consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.bootstrap, group_id=self.group_id,
            enable_auto_commit=True, auto_commit_interval_ms=1000,
            auto_offset_reset="latest", session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.session_timeout_ms // 4),
            max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
        await self._consumer.start()
        self._task = asyncio.ensure_future(self._poll())

    async def _until_positioned(self) -> None:
        """Ready only once every assigned partition has its position: a record produced
        after that is read. (Assigned alone is too early: the reset to the log's end
        runs after the assignment, and what arrives in between would be skipped.)"""
        assert self._consumer is not None
        tps = self._consumer.assignment()
        if tps:
            await asyncio.gather(*(self._consumer.position(tp) for tp in tps))
            self.ready = True

    async def _poll(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alerts consumer: poll failed; retrying")
                await asyncio.sleep(1.0)

    async def _poll_once(self) -> None:
        if self.has_room is not None and not self.has_room():
            t0 = time.monotonic()
            # The evaluator is behind: the log waits. At most MAX_WAIT_S, well inside
            # aiokafka's max_poll_interval_ms (300 s), past which the consumer would
            # leave its group; then it reads and the evaluator drops what has no room
            # (counted), as the embedded writer's hand-off does.
            while not self.has_room() and time.monotonic() - t0 < self.MAX_WAIT_S:
                await asyncio.sleep(0.02)
            waited = time.monotonic() - t0
            self.waited_s += waited
            am.BACKPRESSURE.inc(waited)
            if not self.has_room():
                log.warning("alerts consumer: the evaluator has had no room for %.0f s; "
                            "reading on, dropping what does not fit", waited)
                self._drop_next = True
        got = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
        if not self.ready:
            await self._until_positioned()
        # Whether this poll read every partition to its highwater, asked before the
        # decode: meanwhile aiokafka fetches the next records and raises the highwater.
        t = time.time()
        caught_up = self.ready and await self._caught_up()
        if got:
            # Decoded off the event loop: meanwhile aiokafka fetches the next
            # records (fetching and decoding overlap instead of taking turns).
            await asyncio.to_thread(self._decode, got)
        if caught_up and self.on_read is not None:
            self.on_read(t)  # what was produced before t is read and submitted

    async def _caught_up(self) -> bool:
        """Every assigned partition's position is at its highwater (nothing unread; no
        partition: nothing to read). This host's clock only: producers' clocks may be
        off."""
        try:
            for tp in self._consumer.assignment():
                hw = self._consumer.highwater(tp)
                if hw is None or await self._consumer.position(tp) < hw:
                    return False
            return True
        except Exception:  # a rebalance meanwhile: not known to be caught up
            return False

    def _decode(self, got: dict[Any, list[Any]]) -> None:
        c0 = time.thread_time()
        batches: list[DecodedMetrics] = []
        records: list[pb.LogRecord] = []
        oldest = None
        for msgs in got.values():
            for m in msgs:
                self.messages += 1
                if m.timestamp is not None and (oldest is None or m.timestamp < oldest):
                    oldest = m.timestamp
                try:
                    if message_kind(m) == KIND_RECORD:
                        records.append(pb.LogRecord.FromString(m.value))
                    else:
                        wb = pb.WriteBatch.FromString(m.value)
                        batches.append(decode_metrics(wb.run_id, wb.metrics))
                except Exception:  # the writer counts and skips them too
                    self.bad_messages += 1
        if oldest is not None:  # produced -> read: the consumer's lag behind the log
            am.STAGE.labels(stage="consume").observe(max(0.0, time.time() - oldest / 1000))
        am.CPU.labels(part="consume").inc(time.thread_time() - c0)
        if batches or records:
            drop, self._drop_next = self._drop_next, False
            (self.drop if drop and self.drop is not None else self.submit)(batches, records)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._consumer is not None:
            await self._consumer.stop()
