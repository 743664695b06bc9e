"""Windows by offset over a sorted search, checked against a Python reference."""

from __future__ import annotations

import math

import pytest
from conftest import Ref

from metricflow.errors import InvalidArgument
from metricflow.query._core import QueryCore
from metricflow.query._window import RunWindow, parse_columns


def ref_order(runs: list[Ref], kind: str, key: str, asc: bool) -> list[str]:
    """MLflow order: runs with the key first (NaN after numbers), then the rest; run id ties."""
    if kind == "attributes":
        return [r.attrs["run_id"] for r in sorted(
            sorted(runs, key=lambda r: r.attrs["run_id"]),
            key=lambda r: r.attrs[key], reverse=not asc)]
    src = lambda r: getattr(r, kind)  # noqa: E731
    has = [r for r in runs if key in src(r)]
    rest = sorted((r for r in runs if key not in src(r)), key=lambda r: r.attrs["run_id"])
    has.sort(key=lambda r: r.attrs["run_id"])
    if kind == "metrics":
        nan = [r for r in has if math.isnan(r.metrics[key])]
        num = sorted((r for r in has if not math.isnan(r.metrics[key])),
                     key=lambda r: r.metrics[key], reverse=not asc)
        has = num + nan
    else:
        has.sort(key=lambda r: src(r)[key], reverse=not asc)
    return [r.attrs["run_id"] for r in has + rest]


@pytest.fixture(scope="module")
def win(store, dataset) -> tuple[QueryCore, RunWindow, dict[str, Ref]]:
    return QueryCore(store, None), RunWindow(store.db, store.client), dataset


def visible(runs: dict[str, Ref], exps: set[str] | None = None) -> list[Ref]:
    return [r for r in runs.values() if r.attrs["lifecycle_stage"] == "active"
            and (exps is None or r.attrs["experiment_id"] in exps)]


@pytest.mark.parametrize("order,kind,key,asc", [
    ("", "attributes", "start_time", False),
    ("attributes.start_time ASC", "attributes", "start_time", True),
    ("attributes.run_name DESC", "attributes", "run_name", False),
    ("metrics.loss ASC", "metrics", "loss", True),
    ("metrics.loss DESC", "metrics", "loss", False),
    ("params.lr DESC", "params", "lr", False),
    ("tags.team ASC", "tags", "team", True),
])
def test_windows_are_slices_of_the_full_order(win, order, kind, key, asc) -> None:
    core, w, runs = win
    scope = core.scope(["0", "2"], "active")
    want = ref_order(visible(runs, {"0", "2"}), kind, key, asc)
    # windows that start and end in phase 1, straddle into phase 2, and run past the end
    for offset, limit in ((0, 25), (30, 17), (len(want) - 40, 30), (len(want) - 5, 20),
                          (len(want) + 3, 10)):
        for cold in (True, False):  # counts from the window query itself, then from the cache
            if cold:
                w.caches.counts._d.clear()
            got = w.window(scope, "", order, max(0, offset), limit, [])
            assert got.total == len(want)
            assert [r["run_id"] for r in got.rows] == want[max(0, offset):max(0, offset) + limit]


def test_filter_and_columns(win) -> None:
    core, w, runs = win
    scope = core.scope([], "active")
    flt = "params.opt = 'adam' AND (metrics.acc > 0.4 OR tags.team = 'b')"
    match = [r for r in visible(runs) if r.params["opt"] == "adam" and (
        r.metrics.get("acc", -1) > 0.4 or r.tags["team"] == "b")]
    want = ref_order(match, "metrics", "acc", False)
    cols = parse_columns(["metrics.loss", "params.lr", "tags.team", "metrics.`nope`"])
    got = w.window(scope, flt, "metrics.acc DESC", 3, 20, cols)
    assert got.total == len(match)
    assert [r["run_id"] for r in got.rows] == want[3:23]
    for row in got.rows:
        ref = runs[row["run_id"]]
        assert set(row["metrics"]) == {"loss"} & set(ref.metrics)
        if "loss" in ref.metrics:
            a, b = row["metrics"]["loss"], ref.metrics["loss"]
            assert (math.isnan(a) and math.isnan(b)) or a == b
        assert row["params"] == {k: v for k, v in ref.params.items() if k == "lr"}
        assert row["tags"] == {"team": ref.tags["team"]}
        assert row["parent_run_id"] == ref.tags.get("mlflow.parentRunId", "")
        assert row["status"] == ref.attrs["status"]
        assert row["start_time"] == ref.attrs["start_time"]


def test_run_id_filters(win) -> None:
    """A run-id filter narrows by the run key (`SqlBuilder.pinned_runs`), same rows."""
    core, w, runs = win
    scope = core.scope([], "active")
    ids = sorted(r.attrs["run_id"] for r in visible(runs))
    a, b = ids[1], ids[-3]
    for flt, want in ((f"attributes.run_id = '{a}'", [a]),
                      (f"attributes.run_id IN ('{b}', '{a}', 'zz')", [a, b]),
                      (f"attributes.run_id = '{a}' OR attributes.run_id = '{b}'", [a, b]),
                      ("attributes.run_id = 'zz'", [])):
        got = w.window(scope, flt, "attributes.run_id ASC", 0, 10, [])
        assert got.total == len(want) and [r["run_id"] for r in got.rows] == want, flt
        by_metric = w.window(scope, flt, "metrics.loss DESC", 0, 10, [])  # a key drives
        assert sorted(r["run_id"] for r in by_metric.rows) == want, flt


def test_top_level_rows_carry_child_counts(win) -> None:
    core, w, runs = win
    scope = core.scope(["1"], "active")
    vis = visible(runs, {"1"})
    top = [r for r in vis if "mlflow.parentRunId" not in r.tags]
    kids: dict[str, int] = {}
    for r in vis:
        p = r.tags.get("mlflow.parentRunId")
        if p:
            kids[p] = kids.get(p, 0) + 1
    top_ids = {r.attrs["run_id"] for r in top}
    kids = {p: n for p, n in kids.items() if p in top_ids}  # children shown in this scope
    got = w.window(scope, "", "attributes.run_name ASC", 0, 1000, [], top_level=True)
    assert got.total == len(top)
    assert [r["run_id"] for r in got.rows] == ref_order(top, "attributes", "run_name", True)
    assert {r["run_id"]: r["child_count"] for r in got.rows if r["child_count"]} == kids
    assert kids  # the data has nested runs in this experiment
    # a parent's children: the same window call with a filter on the tag
    parent = next(iter(kids))
    ch = w.window(scope, f"tags.mlflow.parentRunId = '{parent}'", "", 0, 100, [])
    assert ch.total == kids[parent]


def test_keys_and_experiment_stats(win) -> None:
    core, w, runs = win
    k = w.keys(core.scope(["0"], "active"), ("metrics", "params", "tags"), "", 100)
    assert k == {"metrics": ["acc", "loss"], "params": ["lr", "opt"],
                 "tags": ["mlflow.parentRunId", "team"]}
    assert w.keys(core.scope([], "active"), ("metrics", "tags"), "OS", 100) == \
        {"metrics": ["loss"], "tags": []}
    assert w.keys(core.scope([], "active"), ("params",), "", 1) == {"params": ["lr"]}
    stats = w.experiment_stats(core.scope([], "active"))
    for e in ("0", "1", "2"):
        vis = visible(runs, {e})
        assert stats[e][0] == len(vis)
        assert stats[e][1] == max(max(r.attrs["start_time"], r.attrs["end_time"] or 0) for r in vis)


def test_bad_input_names_the_field(win) -> None:
    core, w, _ = win
    scope = core.scope([], "active")
    with pytest.raises(InvalidArgument) as e:
        w.window(scope, "metrics.loss > AND", "", 0, 10, [])
    assert e.value.details["field"] == "filter"
    assert e.value.details["position"] == 15
    with pytest.raises(InvalidArgument) as e:
        w.window(scope, "", "", 0, 1001, [])
    assert e.value.details["field"] == "limit"
    with pytest.raises(InvalidArgument) as e:
        w.window(scope, "", "", -1, 10, [])
    assert e.value.details["field"] == "offset"
    with pytest.raises(InvalidArgument) as e:
        parse_columns(["attributes.status"])
    assert e.value.details["field"] == "columns"


class _Pool:
    """What `write_generation` reads: a store only this process writes, at `gen`."""

    def __init__(self) -> None:
        self.sole_writer, self.write_generation, self.read_cache = True, 1, {}


class _Counted:
    """The store's client, counting the queries that look for a child run."""

    def __init__(self, client) -> None:
        self.client, self.metricflow_pool, self.child_lookups = client, _Pool(), 0

    def query(self, sql: str, *a, **k):
        self.child_lookups += "LIMIT 1)" in sql
        return self.client.query(sql, *a, **k)


def test_a_window_after_a_write_is_not_stale_for_its_child_lookup(store, dataset) -> None:
    """Whether any run has a parent is reused across writes when it is a yes (the
    top-level filter is right either way), so the window after a write may be kept; a no
    is read again after a write (a new child would show at the top level)."""
    core = QueryCore(store, None)
    c = _Counted(store.client)
    w = RunWindow(store.db, c)
    nested, empty = core.scope(["1"], "active"), core.scope(["no-such-experiment"], "active")
    first = w.window(nested, "", "attributes.run_name ASC", 0, 50, [], top_level=True)
    w.window(empty, "", "", 0, 50, [], top_level=True)
    assert c.child_lookups == 2 and not w.stale
    c.metricflow_pool.write_generation = 2  # a write
    again = w.window(nested, "", "attributes.run_name ASC", 0, 50, [], top_level=True)
    assert not w.stale and c.child_lookups == 2  # the yes stands
    assert [r["run_id"] for r in again.rows] == [r["run_id"] for r in first.rows]
    w.window(empty, "", "", 0, 50, [], top_level=True)
    assert not w.stale and c.child_lookups == 3  # the no is read again
