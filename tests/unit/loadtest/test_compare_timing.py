"""compare_mlflow._timed: repeat count, warm-up and the per-search time budget."""

from __future__ import annotations

import pytest

from loadtests import compare_mlflow


class FakeClock:
    """perf_counter that advances only when the timed function runs."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def perf_counter(self) -> float:
        return self.now

    def fn(self, seconds: float):
        def call() -> int:
            self.calls += 1
            self.now += seconds
            return self.calls
        return call


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(compare_mlflow.time, "perf_counter", c.perf_counter)
    return c


def test_without_budget_every_repeat_is_timed_after_one_warmup(clock: FakeClock) -> None:
    ms, last = compare_mlflow._timed(clock.fn(0.002), 20)
    assert len(ms) == 20 and clock.calls == 21 and last == 21
    assert ms == pytest.approx([2.0] * 20)


def test_budget_stops_after_min_repeat_slow_calls(clock: FakeClock) -> None:
    ms, _ = compare_mlflow._timed(clock.fn(10.0), 20, budget_s=25.0)
    assert len(ms) == 3 and clock.calls == 4  # 30 s spent after the 3rd: stop


def test_budget_lets_fast_calls_run_until_it_is_spent(clock: FakeClock) -> None:
    ms, _ = compare_mlflow._timed(clock.fn(1.0), 20, budget_s=5.0)
    assert len(ms) == 5
    ms, _ = compare_mlflow._timed(clock.fn(0.001), 20, budget_s=5.0)
    assert len(ms) == 20


def test_no_warmup(clock: FakeClock) -> None:
    ms, _ = compare_mlflow._timed(clock.fn(1.0), 3, warmup=False)
    assert len(ms) == 3 and clock.calls == 3
