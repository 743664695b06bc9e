"""Kept answers (query/_sql.kept_answer, kept_run_answer) are bounded in bytes and never
outlive a write to what they read."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from metricflow.query import Scope, keepable, kept_answer, kept_run_answer, pinned_runs
from metricflow.query._sql import ANSWER_FAMILY_BYTES, ANSWER_MAX_BYTES, KEEP_SCOPE_MAX


def _client(sole_writer: bool = True) -> Any:
    pool = SimpleNamespace(sole_writer=sole_writer, write_generation=0)
    return SimpleNamespace(metricflow_pool=pool)


def _counting(value: bytes) -> tuple[list[int], Any]:
    calls: list[int] = []

    def compute() -> tuple[bytes, bool]:
        calls.append(1)
        return value, True

    return calls, compute


def test_an_answer_is_kept_until_the_next_write() -> None:
    c = _client()
    calls, compute = _counting(b"x" * 100)
    assert kept_answer(c, ("w", 1), compute) == b"x" * 100
    assert kept_answer(c, ("w", 1), compute) == b"x" * 100
    assert len(calls) == 1
    c.metricflow_pool.write_generation += 1  # a write
    kept_answer(c, ("w", 1), compute)
    assert len(calls) == 2
    # storing an answer of the new generation drops the family's older ones
    kept_answer(c, ("w", 2), compute)
    assert c.metricflow_pool.answers.size("w") == (2, 200)


def test_nothing_is_kept_for_a_store_others_write() -> None:
    c = _client(sole_writer=False)
    calls, compute = _counting(b"x")
    kept_answer(c, ("w", 1), compute)
    kept_answer(c, ("w", 1), compute)
    assert len(calls) == 2


def test_large_answers_are_not_kept_and_a_family_holds_a_bounded_size() -> None:
    c = _client()
    calls, big = _counting(b"x" * (ANSWER_MAX_BYTES + 1))
    kept_answer(c, ("w", "big"), big)
    kept_answer(c, ("w", "big"), big)
    assert len(calls) == 2
    chunk = ANSWER_MAX_BYTES
    n = ANSWER_FAMILY_BYTES // chunk + 3
    for i in range(n):
        kept_answer(c, ("w", i), _counting(b"y" * chunk)[1])
    kept_answer(c, ("other", 0), _counting(b"z")[1])
    count, size = c.metricflow_pool.answers.size("w")
    assert size <= ANSWER_FAMILY_BYTES and count == ANSWER_FAMILY_BYTES // chunk
    assert c.metricflow_pool.answers.size("other") == (1, 1)  # families are apart
    # the least recently used went first: the first answers are gone, the last kept
    calls, again = _counting(b"y" * chunk)
    kept_answer(c, ("w", n - 1), again)
    kept_answer(c, ("w", 0), again)
    assert len(calls) == 1


def test_an_answer_its_computation_calls_unsure_is_not_kept() -> None:
    c = _client()
    calls: list[int] = []

    def unsure() -> tuple[bytes, bool]:
        calls.append(1)
        return b"maybe", False

    assert kept_answer(c, ("w", 1), unsure) == b"maybe"
    assert kept_answer(c, ("w", 1), unsure) == b"maybe"
    assert len(calls) == 2


def test_a_scope_with_a_large_readable_set_is_not_keepable() -> None:
    assert keepable(Scope())  # every experiment (an admin)
    assert keepable(Scope(readable_experiments=frozenset(map(str, range(KEEP_SCOPE_MAX)))))
    assert not keepable(Scope(readable_experiments=frozenset(
        map(str, range(KEEP_SCOPE_MAX + 1)))))


def _pool_client() -> Any:
    from metricflow.store._clickhouse import ClientPool

    pool = ClientPool("chdb://")  # connects only when a client is asked for
    pool.sole_writer = True
    return SimpleNamespace(metricflow_pool=pool)


def test_an_answer_about_runs_outlives_writes_to_other_runs_only() -> None:
    c = _pool_client()
    pool = c.metricflow_pool
    calls: list[int] = []

    def compute() -> tuple[bytes, set[str]]:
        calls.append(1)
        return b"chart", {"run-a", "parent-of-a"}

    key = ("downsample", "run-a")
    assert kept_run_answer(c, key, compute) == b"chart"
    pool.wrote(["run-b", "run-c"])  # other runs log
    pool.wrote()  # a write of no run's rows
    assert kept_run_answer(c, key, compute) == b"chart"
    assert len(calls) == 1
    pool.wrote(["run-b", "parent-of-a"])  # a run the answer read (a fork's ancestor)
    kept_run_answer(c, key, compute)
    assert len(calls) == 2
    kept_run_answer(c, key, compute)
    assert len(calls) == 2
    pool.wrote(["run-a"])
    kept_run_answer(c, key, compute)
    assert len(calls) == 3
    assert pool.run_answers.size("downsample") == (1, 5)


def test_a_write_during_the_computation_is_not_missed() -> None:
    """The generation is read before the answer is computed: a write to its run landing
    meanwhile (which the answer may or may not hold) makes the next call compute again."""
    c = _pool_client()
    calls: list[int] = []

    def compute() -> tuple[bytes, set[str]]:
        calls.append(1)
        if len(calls) == 1:
            c.metricflow_pool.wrote(["run-a"])
        return b"x", {"run-a"}

    kept_run_answer(c, ("d", 1), compute)
    kept_run_answer(c, ("d", 1), compute)
    kept_run_answer(c, ("d", 1), compute)
    assert len(calls) == 2


def test_an_answer_about_runs_is_not_kept_when_asked_not_to_or_for_others_stores() -> None:
    c = _pool_client()
    calls: list[int] = []

    def unsure() -> tuple[bytes, None]:
        calls.append(1)
        return b"maybe", None

    kept_run_answer(c, ("d", 1), unsure)
    kept_run_answer(c, ("d", 1), unsure)
    c.metricflow_pool.sole_writer = False
    calls2: list[int] = []

    def pinned() -> tuple[bytes, set[str]]:
        calls2.append(1)
        return b"x", {"r"}

    kept_run_answer(c, ("d", 2), pinned)
    kept_run_answer(c, ("d", 2), pinned)
    assert len(calls) == 2 and len(calls2) == 2


def test_answers_about_runs_are_bounded_in_bytes() -> None:
    c = _pool_client()
    chunk = ANSWER_MAX_BYTES
    for i in range(ANSWER_FAMILY_BYTES // chunk + 3):
        kept_run_answer(c, ("d", i), lambda: (b"y" * chunk, {"r"}))
    kept_run_answer(c, ("d", "big"), lambda: (b"y" * (chunk + 1), {"r"}))
    count, size = c.metricflow_pool.run_answers.size("d")
    assert size <= ANSWER_FAMILY_BYTES and count == ANSWER_FAMILY_BYTES // chunk


@pytest.mark.parametrize(("text", "want"), [
    ("attributes.run_id = 'Abc'", {"Abc", "abc"}),
    ("run_id IN ('a', 'b')", {"a", "b"}),
    ("attributes.run_id = 'a' AND metrics.loss > 1", {"a"}),
    ("metrics.loss > 1 AND (run_id = 'a' OR run_id IN ('b', 'c'))", {"a", "b", "c"}),
    ("run_id = 'a' OR metrics.loss > 1", None),
    ("attributes.run_name = 'a'", None),
    ("run_id LIKE 'a%'", None),
    ("run_id != 'a'", None),
    ("", None),
    ("run_id = ", None),  # does not parse: the search itself says so
])
def test_a_filter_pins_runs_only_when_it_names_every_run_it_can_match(
        text: str, want: set[str] | None) -> None:
    got = pinned_runs(text)
    assert (None if got is None else set(got)) == want
