"""Unit tests of the Kafka path that need no broker: config, admission, lag math, CLI."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from metricflow._validation import DEFAULT_LIMITS
from metricflow.errors import InvalidArgument, ResourceExhausted, Unavailable
from metricflow.ingest._kafka import KafkaSink, batch_id_header, message_kind
from metricflow.ingest._kafka_config import (
    KafkaSinkConfig,
    TopicConfig,
    WriterConfig,
    compression_arg,
)
from metricflow.ingest._writer_lag import LagReservoir


def test_config_rejects_bad_values_naming_the_field() -> None:
    with pytest.raises(InvalidArgument, match="partitions"):
        TopicConfig(partitions=0)
    with pytest.raises(InvalidArgument, match="compression"):
        KafkaSinkConfig(compression="brotli")
    with pytest.raises(InvalidArgument, match="max_inflight_bytes"):
        KafkaSinkConfig(max_inflight_bytes=10)
    with pytest.raises(InvalidArgument, match="linger_ms"):
        WriterConfig(linger_ms=-1)
    assert compression_arg("none") is None and compression_arg("zstd") == "zstd"


def test_batch_id_header_and_kind_header() -> None:
    assert batch_id_header(("abc", 42)) == b"abc:42"
    rec = SimpleNamespace(headers=(("batch_id", b"x:1"), ("kind", b"record")))
    assert message_kind(rec) == b"record"
    assert message_kind(SimpleNamespace(headers=())) == b"metrics"


def _batch(n: int) -> SimpleNamespace:
    return SimpleNamespace(run_id="a" * 32, n=n)


def test_sink_rejects_at_once_when_inflight_is_full_with_a_bounded_hint() -> None:
    async def main() -> None:
        sink = KafkaSink(KafkaSinkConfig(max_inflight_bytes=1 << 20))
        with pytest.raises(Unavailable):  # not started: never queue silently
            sink.submit_metrics(_batch(1), b"x" * 10, ("c", 1))
        sink._started = True
        sink._inflight_bytes = (1 << 20) - 100  # as if produces were waiting for acks
        with pytest.raises(ResourceExhausted) as ei:
            sink.submit_metrics(_batch(1), b"x" * 200, ("c", 2))
        assert 0.05 <= ei.value.retry_after_s <= 2.0
        assert sink.inflight_bytes == (1 << 20) - 100, "a rejected batch must not be counted"
        # A retry of a batch Kafka already acked is answered without producing it again.
        sink._acked[("c", 3)] = None
        fut = sink.submit_metrics(_batch(1), b"x" * 200, ("c", 3))
        assert fut.done() and fut.result() is None

    asyncio.run(main())


def test_lag_reservoir_quantiles_and_ring_wrap() -> None:
    r = LagReservoir(size=1000)
    assert r.quantiles()["samples"] == 0
    r.add(np.linspace(0.0, 1.0, 101))
    q = r.quantiles()
    assert q["p50"] == pytest.approx(0.5) and q["p100"] == pytest.approx(1.0)
    r.add(np.full(1500, 7.0))  # overwrites the older samples
    q = r.quantiles()
    assert q["samples"] == 1000 and q["p50"] == 7.0 and q["p100"] == 7.0


def test_role_parsers_take_defaults_and_flags() -> None:
    from metricflow.server.cli import build_parser

    p = build_parser()
    a = p.parse_args(["ingest", "--kafka", "k:9092", "--topic", "t", "--inflight-mb", "8"])
    assert (a.kafka, a.topic, a.inflight_mb, a.clickhouse) == ("k:9092", "t", 8, None)
    a = p.parse_args(["writer", "--clickhouse", "http://ch:8123", "--max-rows", "1000"])
    assert a.max_rows == 1000 and a.group == "metricflow-writer" and not a.serve_query
    a = p.parse_args(["query", "--clickhouse", "http://ch:8123"])
    assert a.grpc_port == 50071
    a = p.parse_args(["registry", "--metadata", "sqlite:////tmp/x.db"])
    assert a.metadata == "sqlite:////tmp/x.db"


def test_writer_cuts_a_large_poll_into_inserts_of_the_configured_size() -> None:
    from metricflow.ingest._writer import KafkaWriter

    w = KafkaWriter.__new__(KafkaWriter)  # only the grouping state, no store or consumer
    w.config = WriterConfig(max_rows=1000, max_bytes=1 << 20)
    budget = 1000 * 28
    w._group = [SimpleNamespace(value=b"x" * n) for n in (10_000, 10_000, 10_000, 50_000, 1)]
    first, size = w._cut()
    assert [len(r.value) for r in first] == [10_000, 10_000] and size == 20_000 <= budget
    w._group = w._group[2:]
    nxt, size = w._cut()
    assert [len(r.value) for r in nxt] == [10_000] and size == 10_000
    w._group = w._group[1:]  # a message larger than the budget still goes, alone
    assert [len(r.value) for r in w._cut()[0]] == [50_000]


def _metrics_message(run: str, steps: int, offset: int = 0) -> SimpleNamespace:
    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb

    wb = ipb.WriteBatch(run_id=run)
    wb.metrics.keys.append("loss")
    wb.metrics.key_index = np.zeros(steps, np.int32).tobytes()
    wb.metrics.steps = np.arange(steps, dtype=np.int64).tobytes()
    wb.metrics.timestamps = np.arange(steps, dtype=np.int64).tobytes()
    wb.metrics.values = np.ones(steps).tobytes()
    return SimpleNamespace(value=wb.SerializeToString(), headers=(("kind", b"metrics"),),
                           topic="t", partition=0, offset=offset,
                           timestamp=time.time() * 1000)


def test_writer_builds_the_next_due_cut_while_one_is_inserted() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from metricflow.ingest._writer import KafkaWriter

    w = KafkaWriter.__new__(KafkaWriter)
    w.config = WriterConfig(max_rows=1000, max_bytes=1 << 20, linger_ms=60_000)
    w.limits = DEFAULT_LIMITS
    w._builder, w._next, w._stopping, w._revoking = ThreadPoolExecutor(1), None, False, False
    w._group = [_metrics_message(f"{i:032x}", 900) for i in range(3)]  # each cut holds one message
    w._arrivals = deque([[3, time.monotonic()]])

    async def scenario() -> None:
        first = await w._prepared_cut()
        assert first.records == w._group[:1] and first.points == 900
        w._build_ahead(len(first.records))  # due: the rest exceeds one insert's budget
        assert w._next is not None and w._next[0] == w._group[1:2]
        ahead = w._next[1]
        w._group = w._group[1:]  # the first cut was inserted
        assert w._prepared_cut() is ahead  # reused, not rebuilt
        second = await ahead
        assert second.tables is not None and second.tables.metrics.num_rows == 900
        w._group = w._group[1:]
        w._build_ahead(1)  # nothing after the last message: nothing to build
        assert w._next is None

    asyncio.run(scenario())
    w._builder.shutdown()


def test_writer_keeps_polling_while_an_insert_runs_up_to_max_bytes() -> None:
    import threading

    from aiokafka.structs import TopicPartition

    from metricflow.ingest._writer import KafkaWriter

    tp = TopicPartition("t", 0)
    log = [_metrics_message(f"{i:032x}", 900, offset=i) for i in range(8)]
    size = len(log[0].value)

    class Consumer:  # one message per poll, like a slow trickle from the broker
        def __init__(self) -> None:
            self.polls, self.next, self.commits = 0, 0, []

        def assignment(self) -> set:
            return {tp}

        async def getmany(self, timeout_ms: int, max_records: int) -> dict:
            self.polls += 1
            if self.next == len(log):
                await asyncio.sleep(timeout_ms / 1000)
                return {}
            self.next += 1
            return {tp: [log[self.next - 1]]}

        async def commit(self, offsets: dict) -> None:
            self.commits.append(offsets[tp].offset)

        async def stop(self) -> None:
            pass

    gate, inserted = threading.Event(), []

    def store(p: object) -> int:
        gate.wait(10)
        inserted.append(p.points)  # type: ignore[attr-defined]
        return p.points  # type: ignore[attr-defined]

    async def scenario() -> None:
        # One message per cut (28 KB budget); polling stops once 3 messages and a byte
        # are pending, i.e. with the cut being inserted and three more.
        w = KafkaWriter(SimpleNamespace(), WriterConfig(  # type: ignore[arg-type]
            max_rows=1000, max_bytes=3 * size + 1, linger_ms=0))
        w._store = store  # type: ignore[method-assign]
        w._consumer = consumer = Consumer()
        w._task = asyncio.ensure_future(w._run())
        deadline = time.monotonic() + 5
        while len(w._group) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # The first insert is still blocked, yet three more messages were fetched.
        assert not inserted and len(w._group) == 4 and w._group_bytes == 4 * size
        polls = consumer.polls
        await asyncio.sleep(0.3)
        assert consumer.polls == polls and len(w._group) == 4, "polled past max_bytes"
        assert w._next is not None, "the next due cut is built while the first is inserted"
        gate.set()
        while len(inserted) < len(log) and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.01)
        await w.stop()
        assert inserted == [900] * len(log)
        assert consumer.commits == list(range(1, len(log) + 1))  # in order, after each insert
        assert w.peak_pending_bytes == 4 * size

    asyncio.run(scenario())


def test_messages_that_arrive_during_an_insert_keep_their_own_age() -> None:
    from metricflow.ingest._writer import KafkaWriter

    w = KafkaWriter.__new__(KafkaWriter)
    w.config = WriterConfig(linger_ms=200)
    w._group, w._group_bytes, w._arrivals = [], 0, deque()
    w.peak_pending_bytes, w._stopping = 0, False
    old = [SimpleNamespace(value=b"x" * 10) for _ in range(3)]
    w._add(old)
    w._arrivals[0][1] -= 1.0  # polled a second ago: the group is due
    assert w._group_due(0.2)
    new = SimpleNamespace(value=b"y" * 10)
    w._add([new])  # polled now, while a cut is inserted
    w._take(2)  # a cut of part of the first poll: the rest of that poll stays due
    assert w._group == [old[2], new] and w._group_due(0.2)
    w._take(1)
    assert w._group == [new] and not w._group_due(0.2), "a fresh message was due at once"
    w._take(1)
    assert w._group == [] and not w._arrivals


def test_the_next_cut_is_built_ahead_only_once_it_is_due_by_its_own_age() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from metricflow.ingest._writer import KafkaWriter

    w = KafkaWriter.__new__(KafkaWriter)
    w.config = WriterConfig(max_rows=100_000, linger_ms=500)
    w.limits = DEFAULT_LIMITS
    w._builder, w._next, w._stopping, w._revoking = ThreadPoolExecutor(1), None, False, False
    w._group = [_metrics_message(f"{i:032x}", 10) for i in range(3)]
    now = time.monotonic()
    w._arrivals = deque([[1, now - 1.0], [2, now]])  # a due cut, then two fresh messages

    async def scenario() -> None:
        w._build_ahead(1)  # the cut being inserted was due; the two behind it are not
        assert w._next is None
        w._arrivals[1][1] = now - 1.0  # they have waited linger_ms too
        w._build_ahead(1)
        assert w._next is not None and w._next[0] == w._group[1:]
        await w._next[1]

    asyncio.run(scenario())
    w._builder.shutdown()


class _RebalancingConsumer:
    """A consumer with aiokafka's rebalance behaviour, as far as the writer sees it.

    A rebalance first calls on_partitions_revoked; getmany meanwhile waits for the
    new assignment, whose position starts at the committed offset, and it returns
    records only of that assignment, moving the position past them.
    """

    def __init__(self, log: list, tp: Any) -> None:
        self.log, self.tp = log, tp
        self.committed = self.position = 0
        self.assigned = asyncio.Event()
        self.assigned.set()
        self.stopped = False

    def assignment(self) -> set:
        return {self.tp}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        await self.assigned.wait()
        await asyncio.sleep(0.005)
        batch = self.log[self.position:self.position + 5]  # the log trickles in for ~1 s
        self.position += len(batch)
        return {self.tp: batch} if batch else {}

    async def commit(self, offsets: dict) -> None:
        self.committed = offsets[self.tp].offset

    async def stop(self) -> None:
        self.stopped = True

    async def rebalance(self, listener: Any) -> None:
        self.assigned.clear()
        await listener.on_partitions_revoked({self.tp})
        await asyncio.sleep(0.05)  # JoinGroup / SyncGroup
        self.position = self.committed  # a new assignment starts at the committed offset
        self.assigned.set()
        await listener.on_partitions_assigned({self.tp})


def test_a_rebalance_during_an_insert_loses_no_message() -> None:
    import threading

    from aiokafka.structs import TopicPartition

    from metricflow.ingest._writer import KafkaWriter, _Listener

    tp = TopicPartition("t", 0)
    log = [_metrics_message(f"{i:032x}", 1, offset=i) for i in range(1000)]
    inserted: set[int] = set()
    lock = threading.Lock()
    inserting = threading.Event()

    def store(p: Any) -> int:
        inserting.set()
        time.sleep(0.1)  # an insert is running when the rebalance starts
        with lock:
            inserted.update(r.offset for r in p.records)
        inserting.clear()
        return p.points

    async def scenario() -> None:
        w = KafkaWriter(SimpleNamespace(), WriterConfig(linger_ms=20))  # type: ignore[arg-type]
        w._store = store  # type: ignore[method-assign]
        w._consumer = consumer = _RebalancingConsumer(log, tp)
        w._task = asyncio.ensure_future(w._run())
        deadline = time.monotonic() + 10  # some offsets committed, the next insert running
        while not (consumer.committed and inserting.is_set()) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert consumer.committed and inserting.is_set(), "no insert ran"
        await consumer.rebalance(_Listener(w))
        deadline = time.monotonic() + 10
        while consumer.committed < len(log) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await w.stop()
        assert consumer.committed == len(log)
        missing = sorted(set(range(len(log))) - inserted)
        assert not missing, f"committed past offsets never inserted: {missing[:10]}..."

    asyncio.run(scenario())


def test_stop_leaves_the_group_when_the_poll_hangs_and_the_store_is_down() -> None:
    from metricflow.ingest._writer import KafkaWriter

    class Hanging:  # a rebalance that never completes: getmany never returns
        stopped = False

        def assignment(self) -> set:
            return set()

        async def getmany(self, timeout_ms: int, max_records: int) -> dict:
            await asyncio.Event().wait()
            return {}

        async def stop(self) -> None:
            self.stopped = True

    def down(p: Any) -> int:
        raise ConnectionError("ClickHouse is down")

    async def scenario() -> None:
        w = KafkaWriter(SimpleNamespace(), WriterConfig(  # type: ignore[arg-type]
            linger_ms=0, backoff_initial_s=30.0, backoff_max_s=30.0))
        w._store = down  # type: ignore[method-assign]
        w._consumer = consumer = Hanging()
        w._task = asyncio.ensure_future(w._run())
        w._add([_metrics_message("a" * 32, 5)])  # pending, failing, backing off 15-45 s
        w._work.set()
        deadline = time.monotonic() + 5
        while not w._in_backoff and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert w._in_backoff
        t0 = time.monotonic()
        await asyncio.wait_for(w.stop(), 5)  # no hang, no exception
        assert time.monotonic() - t0 < 5 and consumer.stopped
        assert w._task.done()

    asyncio.run(scenario())


def test_stop_is_bounded_when_a_commit_hangs() -> None:
    from metricflow.ingest._writer import KafkaWriter

    class Unreachable:  # Kafka gone after the insert: the commit never returns
        stopped = False
        polled = False

        def assignment(self) -> set:
            return {"tp"}

        async def getmany(self, timeout_ms: int, max_records: int) -> dict:
            if self.polled:
                await asyncio.sleep(timeout_ms / 1000)
                return {}
            self.polled = True
            return {"tp": [_metrics_message("b" * 32, 5)]}

        async def commit(self, offsets: dict) -> None:
            await asyncio.Event().wait()

        async def stop(self) -> None:
            self.stopped = True

    async def scenario() -> None:
        w = KafkaWriter(SimpleNamespace(), WriterConfig(linger_ms=0))  # type: ignore[arg-type]
        w._store = lambda p: p.points  # type: ignore[method-assign]
        w._consumer = consumer = Unreachable()
        w._task = asyncio.ensure_future(w._run())
        while w.points_written == 0:
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        await asyncio.wait_for(w.stop(flush_timeout_s=0.5), 5)
        assert time.monotonic() - t0 < 3 and consumer.stopped and w._task.done()

    asyncio.run(scenario())


class _Producer:
    """An aiokafka producer stand-in: its sender stays alive; `fail` is raised by every
    delivery (None: deliveries succeed)."""

    def __init__(self, fail: type[Exception] | None) -> None:
        self.fail, self.sent, self._closed = fail, 0, False
        self._sender = SimpleNamespace(sender_task=SimpleNamespace(done=lambda: False))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._closed = True

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> Any:
        self.sent += 1
        fut = asyncio.get_running_loop().create_future()
        if self.fail is None:
            fut.set_result(None)
        else:
            fut.set_exception(self.fail("partition t-2"))
        return fut


def test_a_producer_out_of_sequence_after_a_broker_restart_is_replaced(monkeypatch) -> None:
    """After a broker restart a live producer got OutOfOrderSequenceNumber on every send
    (an operator's probe: its clients retried for good until the ingest node restarted)."""
    from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

    import metricflow.ingest._kafka as kmod

    monkeypatch.setattr(kmod, "RESTART_MIN_INTERVAL_S", 0.0)

    async def main() -> None:
        sink = KafkaSink(KafkaSinkConfig())
        sink._restart_lock, sink._started = asyncio.Lock(), True
        stuck = sink._producer = _Producer(OutOfOrderSequenceNumber)
        never = asyncio.Event()

        async def hangs() -> None:  # aiokafka's stop() waits for batches that never expire
            await never.wait()

        stuck.stop = hangs  # type: ignore[method-assign]
        fresh = _Producer(None)
        made: list[_Producer] = []
        monkeypatch.setattr(sink, "_new_producer", lambda: made.append(fresh) or fresh)
        with pytest.raises(Unavailable, match="OutOfOrderSequenceNumber"):
            await sink.submit_metrics(_batch(1), b"x" * 10, ("c", 1))
        for _ in range(10):  # the failed send's task replaces the producer after the answer
            await asyncio.sleep(0)
        assert made == [fresh] and sink._producer is fresh
        await sink.submit_metrics(_batch(1), b"x" * 10, ("c", 1))  # the client's retry
        # ...answered by the new producer while the old one's stop() still waits
        assert fresh.sent == 1 and ("c", 1) in sink._acked
        # a passing error (a timeout) with a live sender keeps the producer
        sink._producer = slow = _Producer(KafkaTimeoutError)
        with pytest.raises(Unavailable):
            await sink.submit_metrics(_batch(1), b"x" * 10, ("c", 2))
        for _ in range(10):
            await asyncio.sleep(0)
        assert sink._producer is slow and made == [fresh]
        never.set()

    asyncio.run(main())


def test_a_failed_metadata_update_waits_before_the_next_one(monkeypatch) -> None:
    """With the broker down the producer's sender asked again at once: a whole core."""
    import metricflow.ingest._kafka as kmod

    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(s: float) -> None:
        slept.append(s)
        await real_sleep(0)

    monkeypatch.setattr(kmod.asyncio, "sleep", sleep)

    class Client:
        calls = 0

        async def _metadata_update(self, cluster: Any, topics: Any) -> bool:
            self.calls += 1
            return self.calls > 3  # down three times, then up

    async def main() -> list[bool]:
        c = Client()
        kmod.pace_metadata_updates(c, 0.05)
        return [await c._metadata_update(None, set()) for _ in range(5)]

    assert asyncio.run(main()) == [False, False, False, True, True]
    assert slept == [0.05, 0.05, 0.05]  # after each failure, none after a success
