"""What the alerts role's consumer tells the evaluator (`on_read`): after a poll that
read every partition to its highwater, the time (this host's clock) before which
everything is submitted. Asked before the poll's decode, since aiokafka fetches more
meanwhile; never after a poll that left records unread."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from metricflow.alerts._consumer import AlertsConsumer


class FakeKafka:
    def __init__(self, positions: dict[str, int], highwaters: dict[str, int | None],
                 got: dict[str, list[Any]] | None = None) -> None:
        self.positions, self.highwaters, self.got = positions, highwaters, got or {}

    def assignment(self) -> list[str]:
        return list(self.positions)

    def highwater(self, tp: str) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: str) -> int:
        return self.positions[tp]

    async def getmany(self, **_kw: Any) -> dict[str, list[Any]]:
        return self.got


def _poll(kafka: FakeKafka, during_decode: Any = None) -> tuple[list[float], list[Any]]:
    told: list[float] = []
    decoded: list[Any] = []
    c = AlertsConsumer("k:9092", "t", lambda b, r: None, on_read=told.append)
    c._consumer, c.ready = kafka, True

    def decode(got: Any) -> None:
        decoded.append(got)
        if during_decode:
            during_decode()
    c._decode = decode  # type: ignore[method-assign]
    asyncio.run(c._poll_once())
    return told, decoded


def test_read_to_the_end_tells_the_time_before_the_decode() -> None:
    k = FakeKafka({"p0": 10, "p1": 9}, {"p0": 10, "p1": 9}, got={"p0": ["m"]})
    # aiokafka's next fetch raises the highwater while the poll is decoded
    t0 = time.time()
    told, decoded = _poll(k, during_decode=lambda: k.highwaters.update(p0=20))
    assert decoded == [{"p0": ["m"]}]
    assert len(told) == 1 and t0 <= told[0] <= time.time()


def test_records_left_unread_tell_nothing() -> None:
    assert _poll(FakeKafka({"p0": 10, "p1": 5}, {"p0": 10, "p1": 9}, got={"p0": ["m"]}))[0] == []
    assert _poll(FakeKafka({"p0": 3}, {"p0": 10}))[0] == []  # an empty poll mid-backlog
    assert _poll(FakeKafka({"p0": 10}, {"p0": None}))[0] == []  # highwater not known yet


def test_a_quiet_log_and_no_partition_are_read_to_the_end() -> None:
    assert len(_poll(FakeKafka({"p0": 7}, {"p0": 7}))[0]) == 1
    assert len(_poll(FakeKafka({}, {}))[0]) == 1


def test_a_rebalance_while_asking_tells_nothing() -> None:
    class Gone(FakeKafka):
        async def position(self, tp: Any) -> int:
            raise RuntimeError("partition revoked")

    assert _poll(Gone({"p0": 5}, {"p0": 5}))[0] == []
