"""Keyed searches skip the scope's run-key set when every run of the searched
experiments is visible (query/_sql.scope_covers_experiments): same answers, and a
delete is seen by the next search."""

from __future__ import annotations

import uuid

import pytest
from querydata import insert_points

from metricflow.entities import RunInfo
from metricflow.query._core import QueryCore
from metricflow.query._sql import Scope, scope_covers_experiments


def _runs(store, exp: str, n: int, deleted: set[int]) -> dict[str, tuple[float, str, str]]:
    """n runs in `exp` with metric acc and param p; {run_id: (acc, p, stage)}."""
    out = {}
    infos = []
    for i in range(n):
        rid = uuid.uuid4().hex
        stage = "deleted" if i in deleted else "active"
        infos.append(RunInfo(rid, exp, f"r{i}", "u", "RUNNING", 1000 + i,
                             lifecycle_stage=stage))
        out[rid] = ((i * 37 % n) / n, "x" if i % 2 else "y", stage)
    store.insert_runs(infos, [1] * n)
    store.insert_params([(r, "p", v[1]) for r, v in out.items()], 1)
    for r, v in out.items():
        insert_points(store, r, "acc", [0], [0], [v[0]])
    return out


def _ref(runs: dict[str, tuple[float, str, str]], view: str, want_p: str | None,
         min_acc: float | None) -> list[str]:
    hits = [r for r, v in runs.items() if (view == "all" or v[2] == view)
            and (want_p is None or v[1] == want_p) and (min_acc is None or v[0] > min_acc)]
    return sorted(hits, key=lambda r: (-runs[r][0], int(r, 16)))


def _all(core: QueryCore, exps: list[str], text: str, view: str, page: int) -> list[str]:
    ids, token = [], ""
    while True:
        p = core.search_run_ids(exps, text, ["metrics.acc DESC"], page, token, view)
        ids += p.run_ids
        token = p.next_page_token
        if not token:
            return ids


@pytest.fixture(scope="module")
def data(store):
    e1 = f"c{uuid.uuid4().hex[:6]}"
    e2 = f"d{uuid.uuid4().hex[:6]}"
    runs = {e1: _runs(store, e1, 30, set()), e2: _runs(store, e2, 20, {3, 11})}
    store.mark_sole_writer()
    yield store, QueryCore(store, None), e1, e2, runs
    store._pool.sole_writer = False


@pytest.mark.parametrize("view", ["active", "deleted", "all"])
@pytest.mark.parametrize("text", ["", "params.p = 'x'", "metrics.acc > 0.3 AND params.p = 'y'"])
def test_same_answers(data, view: str, text: str) -> None:
    store, core, e1, e2, runs = data
    want_p = {"": None, "params.p = 'x'": "x"}.get(text, "y")
    min_acc = 0.3 if "acc" in text else None
    for exps in ([e1], [e2], [e1, e2]):
        every = {r: v for e in exps for r, v in runs[e].items()}
        assert _all(core, exps, text, view, 7) == _ref(every, view, want_p, min_acc)


def test_covered_only_when_every_run_is_visible(data) -> None:
    store, _, e1, e2, _ = data
    c = store.client
    assert scope_covers_experiments(c, store.db, Scope((e1,), "active"))
    assert not scope_covers_experiments(c, store.db, Scope((e2,), "active"))
    assert not scope_covers_experiments(c, store.db, Scope((e1, e2), "active"))
    assert scope_covers_experiments(c, store.db, Scope((e2,), "all"))
    assert not scope_covers_experiments(c, store.db, Scope((e1,), "deleted"))
    assert not scope_covers_experiments(c, store.db, Scope(None, "active"))
    # a deleted experiment's runs are hidden from the active view
    assert not scope_covers_experiments(c, store.db, Scope((e1,), "active", frozenset({e1})))
    store._pool.sole_writer = False  # unknown without a query: keep the set
    try:
        assert not scope_covers_experiments(c, store.db, Scope((e1,), "active"))
    finally:
        store._pool.sole_writer = True


def test_delete_is_seen_by_the_next_search(store) -> None:
    e = f"z{uuid.uuid4().hex[:6]}"
    runs = _runs(store, e, 12, set())
    store.mark_sole_writer()
    try:
        core = QueryCore(store, None)
        assert _all(core, [e], "", "active", 100) == _ref(runs, "active", None, None)
        assert scope_covers_experiments(store.client, store.db, Scope((e,), "active"))
        top = _ref(runs, "active", None, None)[0]
        store.insert_runs([RunInfo(top, e, "r", "u", "RUNNING", 1000,
                                   lifecycle_stage="deleted")], [2])
        runs[top] = (*runs[top][:2], "deleted")
        got = _all(core, [e], "", "active", 100)
        assert top not in got and got == _ref(runs, "active", None, None)
    finally:
        store._pool.sole_writer = False


def test_answers_kept_are_bounded(store, monkeypatch) -> None:
    import metricflow.query._sql as sql

    monkeypatch.setattr(sql, "SCOPE_CHECK_CACHE", 5)
    store.mark_sole_writer()
    try:
        for i in range(12):
            assert scope_covers_experiments(store.client, store.db,
                                            Scope((f"none{i}",), "active"))
        kept = [k for k in store._pool.read_cache if k[0] == "scope_covers"]
        assert 1 <= len(kept) <= 5
    finally:
        store._pool.sole_writer = False
