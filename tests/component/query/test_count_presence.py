"""A metric summary's `count` is unknown (not 0) where it was not counted: search.

Search loads metric summaries without counting points (counting reads every
point of every listed run), so its summaries must say "not counted" on every
surface instead of a `0` that reads as a fact; `get_run` counts exactly. The
protobuf and client side: tests/unit/entities/test_count_presence_wire.py.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from querydata import insert_points

from metricflow.entities import RunInfo
from metricflow.query._core import QueryCore


@pytest.fixture(scope="module")
def counted_run(store) -> tuple[QueryCore, str, str]:
    exp, rid = f"cnt-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    store.insert_runs([RunInfo(rid, exp, "counted", start_time=1)], [1])
    steps = np.arange(1000)
    insert_points(store, rid, "loss", steps, steps + 10, 1.0 / (steps + 1))
    return QueryCore(store, None), exp, rid


def test_search_leaves_count_unknown_and_get_run_counts(counted_run) -> None:
    core, exp, rid = counted_run
    runs, _ = core.search_runs([exp], "", [], 10, "", "active")
    assert [r.info.run_id for r in runs] == [rid]
    assert runs[0].metrics["loss"].count is None  # not counted, not "zero points"
    assert runs[0].metrics["loss"].last_step == 999  # the rest of the summary is there
    assert core.get_run(rid).metrics["loss"].count == 1000


def test_store_counts_only_when_asked(counted_run, store) -> None:
    _, _, rid = counted_run
    assert store.get_summaries([rid])[rid]["loss"].count is None
    assert store.get_summaries([rid], with_counts=True)[rid]["loss"].count == 1000
