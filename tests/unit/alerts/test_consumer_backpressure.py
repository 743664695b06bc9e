"""The alerts role never drops what it read: while the evaluator's queue is full the
consumer reads nothing more (the log keeps it), and what it read is queued beyond the
bound instead of dropped. The embedded writer's hand-off still drops (never waits)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._consumer import AlertsConsumer
from metricflow.alerts._evaluator import Evaluator, EvaluatorConfig


class CountingKafka:
    def __init__(self) -> None:
        self.polls = 0

    def assignment(self) -> list[str]:
        return []

    async def getmany(self, **_kw: Any) -> dict[str, list[Any]]:
        self.polls += 1
        return {}


def test_the_consumer_waits_for_room_before_it_reads() -> None:
    room = {"free": False}
    kafka = CountingKafka()
    c = AlertsConsumer("k:9092", "t", lambda b, r: None, has_room=lambda: room["free"])
    c._consumer, c.ready = kafka, True

    async def main() -> None:
        task = asyncio.ensure_future(c._poll_once())
        await asyncio.sleep(0.2)
        assert kafka.polls == 0 and not task.done()  # full: nothing read
        room["free"] = True
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert kafka.polls == 1 and c.waited_s >= 0.15


def _batch(n: int) -> DecodedMetrics:
    return DecodedMetrics("r" * 32, ("loss",), np.zeros(n, np.int32), np.arange(n),
                          np.arange(n), np.ones(n))


def test_unbounded_submits_queue_past_the_bound_and_bounded_ones_drop() -> None:
    ev = Evaluator(None, None, None, config=EvaluatorConfig(max_queued_points=100))  # type: ignore[arg-type]
    ev.submit([_batch(80)])
    assert ev.has_room()
    ev.submit([_batch(80)], bounded=False)  # the alerts role: queued, not dropped
    assert ev.dropped_points == 0 and ev._queued_points == 160 and not ev.has_room()
    ev.submit([_batch(10)])  # the embedded writer: dropped, counted
    assert ev.dropped_points == 10 and ev._queued_points == 160


class OneBatchKafka(CountingKafka):
    """One poll of one metrics message (a WriteBatch of 3 points)."""

    async def getmany(self, **_kw: Any) -> dict[str, list[Any]]:
        from types import SimpleNamespace

        from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
        from metricflow._wire import encode_metrics

        self.polls += 1
        wb = pb.WriteBatch(run_id="r" * 32)
        encode_metrics(wb.metrics, ["loss"], np.zeros(3, np.int32), np.arange(3),
                       np.arange(3), np.ones(3))
        return {"p0": [SimpleNamespace(value=wb.SerializeToString(), timestamp=None,
                                       headers=())]}


def test_after_its_longest_wait_the_consumer_reads_on_and_drops_what_has_no_room() -> None:
    """(aiokafka leaves the group when getmany is not called for max_poll_interval_ms)"""
    kept: list[int] = []
    dropped: list[int] = []
    kafka = OneBatchKafka()
    c = AlertsConsumer("k:9092", "t", lambda b, r: kept.append(sum(x.n for x in b)),
                       has_room=lambda: False,
                       drop=lambda b, r: dropped.append(sum(x.n for x in b)))
    c.MAX_WAIT_S = 0.2
    c._consumer, c.ready = kafka, True
    asyncio.run(c._poll_once())
    assert kafka.polls == 1 and 0.2 <= c.waited_s < 2
    assert dropped == [3] and kept == []
    # with room, the next poll's batches are queued (never dropped)
    c.has_room = lambda: True
    asyncio.run(c._poll_once())
    assert kept == [3] and dropped == [3]


class NoRules:
    """An alert store with no rule and no alert state."""

    def rules_stamp(self) -> tuple[int, int, int]:
        return (0, 0, 0)

    def list_rules(self) -> list[Any]:
        return []

    def load_states(self) -> dict[Any, Any]:
        return {}


def test_batches_of_runs_not_found_yet_count_against_the_bound() -> None:
    """A run the lookup does not know yet (the writer lags) has its batches parked; they
    hold room in the bound until they are evaluated, so a far-behind writer cannot make
    the evaluator hold the stream without limit."""
    import time
    from types import SimpleNamespace

    known: set[str] = set()

    def lookup(ids: Any) -> dict[str, Any]:
        return {r: SimpleNamespace(experiment_id="0", status="RUNNING") for r in ids
                if r in known}

    ev = Evaluator(NoRules(), None, lookup,  # type: ignore[arg-type]
                   config=EvaluatorConfig(max_queued_points=100, unknown_run_wait_s=3600.0,
                                          tick_s=0.05))
    ev.start()
    try:
        ev.submit([_batch(120)], bounded=False)  # the alerts role: read, so queued
        assert ev.idle(10)
        assert ev._queued_points == 0 and ev._parked_points == 120  # parked, not evaluated
        assert not ev.has_room()  # the role reads nothing more meanwhile
        ev.submit([_batch(10)])  # the embedded writer's hand-off drops
        assert ev.dropped_points == 10 and ev.evaluated_points == 0
        known.add("r" * 32)  # the run shows up: the timer evaluates its batches
        deadline = time.monotonic() + 10
        while ev.evaluated_points < 120 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ev.evaluated_points == 120 and ev._parked_points == 0 and ev.has_room()
    finally:
        ev.stop()
