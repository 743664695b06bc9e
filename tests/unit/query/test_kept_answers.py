"""Kept answers (query/_sql.kept_answer) are bounded in bytes and never outlive a write."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from metricflow.query import Scope, keepable, kept_answer
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
