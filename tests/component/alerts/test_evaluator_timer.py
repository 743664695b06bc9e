"""The evaluator's timer (`Evaluator.tick`) with many known runs: with no rule it neither
refreshes their filters nor walks them every tick; idle runs are still forgotten, on the
slower sweep, unless a batch of theirs is parked."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from metricflow.alerts import AlertStore, rule_from_dict
from metricflow.alerts._evaluator import Evaluator, EvaluatorConfig


class Lookup:
    """Knows every run but `unknown` (experiment 0, RUNNING); records what it was asked."""

    def __init__(self, unknown: str = "") -> None:
        self.asked: list[str] = []
        self.unknown = unknown

    def __call__(self, run_ids: Any) -> dict[str, Any]:
        self.asked += list(run_ids)
        return {r: SimpleNamespace(experiment_id="0", status="RUNNING")
                for r in run_ids if r != self.unknown}


class Filter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, exps: Any, filt: str, ids: Any) -> set[str]:
        self.calls += 1
        return set(ids)


def _evaluator(store: AlertStore, unknown: str = "", **cfg: Any
               ) -> tuple[Evaluator, Lookup, Filter]:
    lookup, filt = Lookup(unknown), Filter()
    ev = Evaluator(store, filt, lookup, config=EvaluatorConfig(**cfg))
    ev.reload_rules(force=True)
    return ev, lookup, filt


def test_with_no_rule_the_timer_leaves_known_runs_to_the_sweep(store: AlertStore) -> None:
    ids = [f"{i:032x}" for i in range(1000)]
    ev, lookup, _ = _evaluator(store, unknown=ids[0], run_idle_s=0.0, sweep_s=3600.0,
                               filter_refresh_s=0.0)
    ev.watch_runs(ids)
    now = int(time.time() * 1000) + 1000  # every run idle (run_idle_s 0), none parked 30 s
    ev.tick(now)  # the watched runs' experiments, once
    assert sorted(lookup.asked) == ids
    ev.tick(now)
    ev.tick(now)
    assert lookup.asked.count(ids[1]) == 1  # no refresh without a rule
    assert len(ev.runs) == 1000  # and no walk: the sweep is an hour away
    ev._last_sweep -= 3600.0
    ev.tick(now)
    # idle runs forgotten, but not the one whose run is unknown yet (its batches wait)
    assert list(ev.runs) == [ids[0]] and ids[0] in ev._parked


def test_a_new_rule_sees_the_runs_known_before_it(store: AlertStore) -> None:
    ev, _, filt = _evaluator(store, filter_refresh_s=0.0, rules_poll_s=3600.0)
    ev.watch_runs(["a" * 32, "b" * 32])
    ev.tick()
    ev.tick()
    assert filt.calls == 0 and all(r.ready for r in ev.runs.values())
    # created by another process: seen when the timer next asks (every rules_poll_s),
    # not on every tick
    store.create_rule(rule_from_dict({"name": "r", "experiment_ids": ["0"],
                                      "run_filter": "tags.team = 'nlp'",
                                      "condition": {"type": "failed"}}))
    ev.tick()
    assert filt.calls == 0 and not ev.rules
    ev._last_rules_poll -= 3600.0
    ev.tick()  # reloads the rule, then matches the known runs against its filter
    assert filt.calls == 1
    assert all(r.filters == {(("0",), "tags.team = 'nlp'"): True} for r in ev.runs.values())


def _stalled_rule(store: AlertStore) -> int:
    return store.create_rule(rule_from_dict({
        "name": "stall", "experiment_ids": ["0"],
        "condition": {"type": "stalled", "seconds": 1}})).rule_id


def _point(run_id: str) -> Any:
    import numpy as np

    from metricflow._wire import DecodedMetrics

    return DecodedMetrics(run_id, ("loss",), np.zeros(1, np.int32), np.zeros(1, np.int64),
                          np.zeros(1, np.int64), np.ones(1))


def test_a_stall_allows_for_how_far_behind_the_consumer_is(store: AlertStore) -> None:
    """A run whose points may wait unread in the log is not stalled yet (a review found a
    lagging alerts role fired stalled rules for runs still logging); a real stall is
    reported that much later, never suppressed (a later review: a switch that skipped
    the check while behind kept an hour-long stall silent under a steady lag)."""
    rule = _stalled_rule(store)  # T = 1 s
    ev, _, _ = _evaluator(store, filter_refresh_s=3600.0)
    run = "c" * 32
    ev._evaluate([([_point(run)], [])])
    later = int(time.time() * 1000) + 5000  # 5 s without a point
    ev.note_read(time.time() - 6.0)  # everything written until 6 s ago is read
    ev.tick(later)
    assert (rule, run) not in ev.alerts  # 5 s < T + 6 s
    ev.note_read(time.time() - 1.2)  # a steady lag of 1.2 s
    ev.tick(later)
    assert ev.alerts[(rule, run)].state == "firing"  # 5 s >= T + 1.2 s


def test_a_stall_allows_for_the_queue_s_wait(store: AlertStore) -> None:
    rule = _stalled_rule(store)
    ev, _, _ = _evaluator(store, filter_refresh_s=3600.0)
    run = "d" * 32
    ev._evaluate([([_point(run)], [])])
    later = int(time.time() * 1000) + 5000
    ev.submit([_point("e" * 32)])  # queued, not evaluated (no evaluator thread here)
    ev._oldest_queued -= 10.0  # ...for 10 s
    assert ev.behind_s() >= 10.0
    ev.tick(later)
    assert (rule, run) not in ev.alerts
    ev._q.clear()
    assert ev.behind_s() == 0.0
    ev.tick(later)
    assert ev.alerts[(rule, run)].state == "firing"


def test_a_for_duration_allows_for_how_far_behind_the_consumer_is(store: AlertStore) -> None:
    """The timer fires a pending alert after `for` without a new point only once the
    points that could have ended its condition within `for` are read."""
    rule = store.create_rule(rule_from_dict({
        "name": "hot", "experiment_ids": ["0"], "for_s": 2.0,
        "condition": {"type": "threshold", "metric": "loss", "op": ">", "value": 0.5}})).rule_id
    ev, _, _ = _evaluator(store, filter_refresh_s=3600.0)
    run = "f" * 32
    ev._evaluate([([_point(run)], [])])  # loss 1.0 > 0.5: pending
    assert ev.alerts[(rule, run)].state == "pending"
    later = int(time.time() * 1000) + 3000  # 3 s later, `for` is 2 s
    ev.note_read(time.time() - 4.0)  # but what was written in the last 4 s is unread
    ev.tick(later)
    assert ev.alerts[(rule, run)].state == "pending"
    ev.note_read(time.time())
    ev.tick(later)
    assert ev.alerts[(rule, run)].state == "firing"
