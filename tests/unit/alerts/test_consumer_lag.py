"""What the alerts role's consumer tells the evaluator about its lag (`on_lag`): the age
of a poll's newest record while records are left unread, 0 once every partition is read
to its highwater (so a producer clock behind this host's is no lag), 0 for an empty poll."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from metricflow.alerts._consumer import AlertsConsumer


class FakeKafka:
    def __init__(self, positions: dict[str, int], highwaters: dict[str, int | None]) -> None:
        self.positions, self.highwaters = positions, highwaters

    def assignment(self) -> list[str]:
        return list(self.positions)

    def highwater(self, tp: str) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: str) -> int:
        return self.positions[tp]


def _lag(kafka: FakeKafka, newest_age_s: float | None) -> float:
    told: list[float] = []
    c = AlertsConsumer("k:9092", "t", lambda b, r: None, on_lag=told.append)
    c._consumer = kafka
    newest = None if newest_age_s is None else int((time.time() - newest_age_s) * 1000)
    asyncio.run(c._report_lag(newest))
    assert len(told) == 1
    return told[0]


def test_unread_records_make_the_newest_records_age_the_lag() -> None:
    lag = _lag(FakeKafka({"p0": 10, "p1": 5}, {"p0": 10, "p1": 9}), 4.0)
    assert 3.9 <= lag <= 5.0
    lag = _lag(FakeKafka({"p0": 10}, {"p0": None}), 4.0)  # highwater unknown yet
    assert 3.9 <= lag <= 5.0


def test_read_to_the_highwater_is_no_lag_whatever_the_timestamps() -> None:
    assert _lag(FakeKafka({"p0": 10, "p1": 9}, {"p0": 10, "p1": 9}), 30.0) == 0.0


def test_an_empty_poll_is_no_lag() -> None:
    assert _lag(FakeKafka({"p0": 3}, {"p0": 10}), None) == 0.0


def test_a_rebalance_while_asking_keeps_the_records_age() -> None:
    class Gone(FakeKafka):
        async def position(self, tp: Any) -> int:
            raise RuntimeError("partition revoked")

    lag = _lag(Gone({"p0": 1}, {"p0": 5}), 2.0)
    assert 1.9 <= lag <= 3.0
