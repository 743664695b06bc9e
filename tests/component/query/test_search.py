"""Search results checked against a plain-Python reference over generated data."""

from __future__ import annotations

import math
import re

import pytest
from querydata import RefRun, insert_points

from metricflow.errors import InvalidArgument
from metricflow.query._grammar import BoolOp, Comparison, Node, parse_filter, parse_order_by


def _like(pattern: str, value: str, ci: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S | (re.I if ci else 0)) is not None


def ref_eval(node: Node, run: RefRun) -> bool:
    """The reference filter: a run without the field never matches."""
    if isinstance(node, BoolOp):
        parts = [ref_eval(a, run) for a in node.args]
        return all(parts) if node.op == "AND" else any(parts)
    assert isinstance(node, Comparison)
    f, op, v = node.field, node.op, node.value
    src = {"metrics": run.metrics, "params": run.params, "tags": run.tags,
           "attributes": run.attrs}[f.kind]
    if f.key not in src:
        return False
    x = src[f.key]
    if op == "IN":
        return x in v
    if op == "NOT IN":
        return x not in v
    if op.endswith("LIKE"):
        m = _like(str(v), str(x), "ILIKE" in op)
        return not m if op.startswith("NOT") else m
    return {"=": x == v, "!=": x != v, ">": x > v, ">=": x >= v, "<": x < v,
            "<=": x <= v}[op]


def ref_search(runs: dict[str, RefRun], text: str, order_by: list[str],
               exps: list[str] | None = None, view: str = "active") -> list[str]:
    tree = parse_filter(text)
    hits = [r for r in runs.values()
            if (view == "all" or r.attrs["lifecycle_stage"] == view)
            and (exps is None or r.attrs["experiment_id"] in exps)
            and (tree is None or ref_eval(tree, r))]
    terms = parse_order_by(order_by) or parse_order_by(["attributes.start_time DESC"])
    hits.sort(key=lambda r: r.attrs["run_id"])
    for t in reversed(terms):  # stable sorts, last term first
        src = lambda r, t=t: {"metrics": r.metrics, "params": r.params, "tags": r.tags,  # noqa: E731
                              "attributes": r.attrs}[t.field.kind]
        have = [r for r in hits if t.field.key in src(r)]
        miss = [r for r in hits if t.field.key not in src(r)]
        if t.field.kind == "metrics":
            nan = [r for r in have if math.isnan(src(r)[t.field.key])]
            num = [r for r in have if not math.isnan(src(r)[t.field.key])]
            num.sort(key=lambda r: src(r)[t.field.key], reverse=not t.ascending)
            have = num + nan
        else:
            have.sort(key=lambda r: src(r)[t.field.key], reverse=not t.ascending)
        hits = have + miss
    return [r.attrs["run_id"] for r in hits]


def all_pages(core, text: str, order_by: list[str], page: int,
              exps: list[str] | None = None, view: str = "active") -> list[str]:
    ids, token = [], ""
    while True:
        p = core.search_run_ids(exps or [], text, order_by, page, token, view)
        ids += p.run_ids
        token = p.next_page_token
        if not token:
            return ids


FILTERS = [
    "", "metrics.acc > 0.5", "metrics.acc >= 0.5", "metrics.acc < 0.2", "metrics.acc <= 0.2",
    "metrics.acc = 0.5", "metrics.acc != 0.5", "metrics.loss > 1e308", "metrics.loss < -1e308",
    "params.lr = '0.1'", "params.lr != '0.1'", "params.opt LIKE 'a%'", "params.opt ILIKE 'a%'",
    "params.opt NOT LIKE 'a%'", "params.opt NOT ILIKE 'A%'", "params.lr IN ('0.1', '1e-3')",
    "params.lr NOT IN ('0.1')", "tags.team = 'vision'", "tags.team ILIKE 'VISION'",
    "tags.team LIKE '%\\%%'", "tags.team LIKE 'nlp\\_%'", "tags.team = 'o''brien'",
    "tags.team = 'say \"hi\"'", "tags.note = 'x'", "tags.note != 'y'",
    "attributes.status = 'FINISHED'", "attributes.status IN ('FAILED', 'KILLED')",
    "attributes.status != 'RUNNING'", "attributes.run_name LIKE 'run-1%'",
    "attributes.run_name = 'it''s 5'", "attributes.user_id = 'user1'",
    "attributes.start_time > 1025", "attributes.end_time = 0", "attributes.end_time >= 2100",
    "attributes.experiment_id = '2'",
    "metrics.acc > 0.5 AND params.lr = '0.01'",
    "metrics.acc > 0.5 OR params.lr = '0.01'",
    "metrics.acc > 0.9 OR metrics.loss < 0.1 AND tags.team = 'rl'",
    "(metrics.acc > 0.9 OR metrics.loss < 0.1) AND tags.team = 'rl'",
    "(params.opt = 'sgd' OR attributes.status = 'FAILED') AND (metrics.loss > 0.3 OR "
    "tags.note = 'x')",
    "params.lr = '1'' OR 1=1 --'", "tags.`x') OR 1=1 --` = 'a'",
]


@pytest.mark.parametrize("text", FILTERS)
def test_filter_matches_reference(dataset, text: str) -> None:
    core, runs = dataset
    got = all_pages(core, text, ["attributes.run_id"], 1000)
    assert got == ref_search(runs, text, ["attributes.run_id"])


def test_run_id_in(dataset) -> None:
    core, runs = dataset
    some = sorted(runs)[:5]
    text = "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in some) + ")"
    assert all_pages(core, text, [], 100, view="all") == ref_search(runs, text, [], view="all")


def test_run_id_filters_read_runs_by_key(dataset) -> None:
    """A run-id filter narrows search_runs by its primary key (`SqlBuilder.pinned_runs`):
    the same answers as the reference, alone, ANDed, ORed (not pinned) and for ids that
    are not hex (their key matches no stored run, and neither does their run_id)."""
    core, runs = dataset
    a, b = sorted(runs)[3], sorted(runs)[-2]
    texts = [f"attributes.run_id = '{a}'", f"attributes.run_id IN ('{a}', '{b}', 'nothex')",
             f"attributes.run_id = '{a}' AND metrics.acc > 0.1",
             f"metrics.acc > 0.1 AND attributes.run_id IN ('{b}')",
             f"attributes.run_id = '{a}' OR attributes.run_id = '{b}'",
             "attributes.run_id = 'not-a-hex-id'", "attributes.run_id = ''",
             f"attributes.run_id != '{a}'", f"attributes.run_id NOT IN ('{a}', '{b}')",
             f"(attributes.run_id = '{a}' AND metrics.acc > 0.1) OR attributes.run_id = '{b}'",
             f"attributes.run_id = '{a.upper()}'"]
    for text in texts:
        for view in ("all", "active"):
            for order in ([], ["metrics.acc DESC"], ["params.lr"]):  # runs or a key drives
                assert all_pages(core, text, order, 100, view=view) == ref_search(
                    runs, text, order, view=view), (text, order)
    from metricflow.query._sql import Binder, SqlBuilder

    sb = SqlBuilder("db", Binder())
    assert sb.pinned_runs(parse_filter(texts[0])).startswith("rk = ")
    assert sb.pinned_runs(parse_filter(texts[2])).startswith("rk = ")
    assert sb.pinned_runs(parse_filter(texts[3])).startswith("rk IN ")
    assert sb.pinned_runs(parse_filter(texts[4])) is None
    assert sb.pinned_runs(None) is None


def test_a_one_run_lookup_answers_as_the_search_does(dataset) -> None:
    """search_runs loads a run looked up by id while the search runs (QueryCore._one_run):
    the search still decides. In and out of the experiment asked for, deleted runs in each
    view, an unknown id, and the same id inside a wider filter."""
    core, runs = dataset
    stage = {r: ref.attrs["lifecycle_stage"] for r, ref in sorted(runs.items())}
    deleted = next(r for r, s in stage.items() if s == "deleted")
    alive = next(r for r, s in stage.items() if s == "active")
    others = sorted({ref.attrs["experiment_id"] for ref in runs.values()})
    for rid in (alive, deleted, "f" * 32, "nothex"):
        home = runs[rid].attrs["experiment_id"] if rid in runs else others[0]
        for exps in ([], [home], [e for e in others if e != home][:1]):
            for view in ("active", "deleted", "all"):
                for text in (f"attributes.run_id = '{rid}'",
                             f"attributes.run_id = '{rid}' AND metrics.acc > 0.5"):
                    got, token = core.search_runs(exps, text, [], 10, "", view)
                    want = ref_search({k: v for k, v in runs.items()
                                       if not exps or v.attrs["experiment_id"] in exps},
                                      text, [], view=view)
                    assert [r.info.run_id for r in got] == want, (rid, exps, view, text)
                    assert token == ""
                    for r in got:  # the whole run, as load_runs gives it
                        assert repr(r) == repr(core.load_runs([r.info.run_id])[0])  # NaN-safe


class _Reads:
    """An authorizer stand-in: the caller may read these experiments."""

    def __init__(self, exps: set[str]) -> None:
        self.exps = frozenset(exps)

    def readable_experiments(self, principal: object) -> frozenset[str]:
        return self.exps


def test_a_one_run_lookup_sees_what_the_caller_may_read(dataset) -> None:
    """With auth on (ScopedQueryCore) the caller is a context variable: the search that
    decides, on another thread, sees the same caller (a run the caller may read is
    found; one it may not is not; no caller sees nothing)."""
    from metricflow.auth._context import CURRENT
    from metricflow.query import ScopedQueryCore

    core, runs = dataset
    scoped = ScopedQueryCore(core.store, None)
    alive = sorted(r for r, ref in runs.items() if ref.attrs["lifecycle_stage"] == "active")
    home = runs[alive[0]].attrs["experiment_id"]
    other = next(r for r in alive if runs[r].attrs["experiment_id"] != home)

    def find(rid: str) -> list[str]:
        got, _ = scoped.search_runs([], f"attributes.run_id = '{rid}'", [], 1, "", "all")
        return [r.info.run_id for r in got]

    tok = CURRENT.set((object(), _Reads({home})))  # type: ignore[arg-type]
    try:
        assert find(alive[0]) == [alive[0]]
        assert find(other) == []
    finally:
        CURRENT.reset(tok)
    assert find(alive[0]) == []


ORDERS = [
    [], ["metrics.acc DESC"], ["metrics.acc"], ["metrics.loss DESC", "params.lr"],
    ["params.lr"], ["params.lr DESC", "metrics.acc DESC"], ["tags.note DESC"],
    ["attributes.start_time"], ["attributes.run_name DESC", "metrics.loss"],
    ["attributes.status", "attributes.start_time DESC"],
]


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("page", [7, 1000])
def test_order_and_paging_match_reference(dataset, order_by: list[str], page: int) -> None:
    core, runs = dataset
    text = "metrics.acc > 0.1 OR params.opt = 'sgd'"
    got = all_pages(core, text, order_by, page)
    assert len(got) == len(set(got))
    assert got == ref_search(runs, text, order_by)


@pytest.mark.parametrize("view", ["active", "deleted", "all"])
def test_view_types_and_experiments(dataset, view: str) -> None:
    core, runs = dataset
    got = all_pages(core, "", ["metrics.acc DESC"], 50, exps=["1", "3"], view=view)
    assert got == ref_search(runs, "", ["metrics.acc DESC"], ["1", "3"], view)


def test_hidden_experiments_follow_delete(dataset) -> None:
    core, runs = dataset

    class Meta:
        def deleted_experiment_ids(self) -> set[str]:
            return {"2"}

    core.metadata = Meta()
    try:
        got = all_pages(core, "", ["metrics.acc DESC"], 1000)
        want = [r for r in ref_search(runs, "", ["metrics.acc DESC"])
                if runs[r].attrs["experiment_id"] != "2"]
        assert got == want
        deleted = all_pages(core, "", ["attributes.run_id"], 1000, view="deleted")
        assert set(deleted) == {r for r, v in runs.items() if v.attrs["experiment_id"] == "2"
                                or v.attrs["lifecycle_stage"] == "deleted"}
    finally:
        core.metadata = None


def test_readable_experiments_hook(dataset) -> None:
    core, runs = dataset
    page = core.search_run_ids([], "", ["attributes.run_id"], 1000, "", "active",
                               readable_experiments=frozenset({"0"}))
    assert page.run_ids == ref_search(runs, "", ["attributes.run_id"], ["0"])


def test_paging_stable_under_concurrent_inserts(dataset, store) -> None:
    core, runs = dataset
    before = ref_search(runs, "", ["metrics.acc DESC"])
    p1 = core.search_run_ids([], "", ["metrics.acc DESC"], 20, "", "active")
    assert p1.run_ids == before[:20]
    # a new run that sorts onto page 1 and one that sorts onto a later page
    from metricflow.entities import RunInfo
    new_top, new_low = "f" * 32, "e" * 32
    store.insert_runs([RunInfo(new_top, "0"), RunInfo(new_low, "0")], [1, 1])
    insert_points(store, new_top, "acc", [0], [0], [1e9])
    insert_points(store, new_low, "acc", [0], [0], [-1e9])
    rest, token = [], p1.next_page_token
    while token:
        p = core.search_run_ids([], "", ["metrics.acc DESC"], 20, token, "active")
        rest += p.run_ids
        token = p.next_page_token
    # nothing repeats or goes missing; the run inserted above the cursor is not shown
    assert p1.run_ids + [r for r in rest if r != new_low] == before
    assert new_low in rest and new_top not in rest
    store.insert_runs([RunInfo(new_top, "0", lifecycle_stage="deleted"),
                       RunInfo(new_low, "0", lifecycle_stage="deleted")], [2, 2])


def test_bad_inputs(dataset) -> None:
    core, _ = dataset
    with pytest.raises(InvalidArgument, match="position 12"):
        core.search_run_ids([], "metrics.a > x", [], 10, "", "active")
    with pytest.raises(InvalidArgument, match="view_type"):
        core.search_run_ids([], "", [], 10, "", "sideways")
    with pytest.raises(InvalidArgument, match="page_token"):
        core.search_run_ids([], "", [], 10, "garbage!", "active")
    tok = core.search_run_ids([], "", [], 5, "", "active").next_page_token
    with pytest.raises(InvalidArgument, match="different search"):
        core.search_run_ids([], "metrics.acc > 0", [], 5, tok, "active")


def test_full_runs_loaded(dataset) -> None:
    core, runs = dataset
    got, _ = core.search_runs([], "params.lr = '0.1'", ["metrics.acc DESC"], 5, "", "active")
    for r in got:
        ref = runs[r.info.run_id]
        assert r.params == ref.params and r.tags == ref.tags
        assert r.metrics["acc"].last_value == pytest.approx(ref.metrics["acc"], nan_ok=True)
