"""Search runs: filter + order_by + keyset paging over the search_* tables.

Plan. The first order_by term picks the table that drives the query:
- an attribute (or no order_by: start_time DESC) -> search_runs;
- a metric/param/tag -> that key's rows of search_metrics/params/tags
  (phase 1), then the runs that lack the key, ordered by the remaining terms
  (phase 2). Runs without the sort key therefore come last in both directions,
  as in MLflow, and NaN metric values come after all numbers.
MLflow's runs/search also filters on `datasets.name|digest|context` (resolved by
the caller's `dataset_runs` into the set of runs with a matching input, which
lives in the control plane) and `attributes.artifact_uri` (compared in SQL as
MLflow shows it; `_sql.py`).
The run id (as `rk`) ends every sort key, so the order is total and pages are
cut by keyset (`sort key > last row's key`), never OFFSET: runs inserted while
a client pages appear on the page their sort key falls on and nothing shifts.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from metricflow.errors import InvalidArgument
from metricflow.query._deadline import read_settings
from metricflow.query._grammar import (
    BoolOp,
    Comparison,
    Field,
    Node,
    OrderTerm,
    parse_filter,
    parse_order_by,
)
from metricflow.query._history import FINAL_SETTING
from metricflow.query._sql import (
    ATTRIBUTE_COLUMNS,
    Binder,
    Component,
    Scope,
    SqlBuilder,
    keyset_after,
    order_clause,
    scope_covers_experiments,
    unfiled_keys,
)

DEFAULT_ORDER = [OrderTerm(Field("attributes", "start_time"), False)]
RK = Component("rk", True, "RunKey")

DatasetRuns = Callable[[str, str, "str | tuple[str, ...]"], Iterable[str]]
"""(dataset field name|digest|context, operator, value) -> ids of the runs that have a
dataset input matching it (MLflow: any of the run's inputs)."""


@dataclass(frozen=True)
class SearchPage:
    run_ids: list[str]
    next_page_token: str


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: dict[str, Any]
    ncomp: int


class RunSearch:
    """Runs one search request against the store's client."""

    def __init__(self, db: str, client: Any) -> None:
        self.db, self.client = db, client
        self._unfiled: frozenset[tuple[str, str]] = frozenset()
        self._artifact_root: str | None = None
        self._covered = False

    def search(self, scope: Scope, filter_string: str, order_by: list[str], limit: int,
               page_token: str = "", *, dataset_runs: DatasetRuns | None = None,
               artifact_root: str | None = None) -> SearchPage:
        """Run ids of one page and the next page's token ('' when done).

        `dataset_runs` and `artifact_root` (both, or neither) turn on MLflow's
        `datasets.*` and `attributes.artifact_uri` fields: runs whose stored artifact
        URI lies under `artifact_root` compare as `mlflow-artifacts:/<exp>/<run>/artifacts`.
        """
        mlflow_fields = dataset_runs is not None and artifact_root is not None
        tree = parse_filter(filter_string, mlflow_fields=mlflow_fields)
        if tree is not None and dataset_runs is not None:
            tree = resolve_datasets(tree, dataset_runs)
        self._artifact_root = artifact_root
        terms = parse_order_by(order_by) or DEFAULT_ORDER
        shape = _shape_hash(scope, filter_string, order_by)
        phase, after = 1, None
        if page_token:
            tok = _decode(page_token)
            if tok.get("h") != shape:
                raise InvalidArgument("page_token belongs to a different search (filter, "
                                      "order_by, experiments or view_type changed)",
                                      field="page_token")
            phase, after = int(tok["p"]), list(tok["k"])
        keyed = terms[0].field.kind != "attributes"
        self._unfiled = unfiled_keys(self.client, self.db)
        self._covered = (keyed and phase == 1
                         and (terms[0].field.kind, terms[0].field.key) not in self._unfiled
                         and scope_covers_experiments(self.client, self.db, scope))
        ids: list[str] = []
        seen: set[str] = set()
        last: tuple[int, list[Any]] | None = None
        phases = (1, 2) if keyed else (1,)
        for ph in phases:
            if ph < phase:
                continue
            want = limit + 1 - len(ids)
            plan = self._plan(scope, tree, terms, ph, after if ph == phase else None, want)
            rows = self.client.query(plan.sql, parameters=plan.params,
                                        settings=read_settings()).result_rows
            for row in rows[:limit - len(ids)]:
                rid = f"{int(row[0]):032x}"
                if rid in seen:  # a key got rows under '' after unfiled_keys was read
                    continue
                seen.add(rid)
                ids.append(rid)
                last = (ph, [_jsonable(v) for v in row[1:]])
            if len(rows) >= want:
                break
        else:
            return SearchPage(ids, "")
        assert last is not None
        return SearchPage(ids, _encode({"h": shape, "p": last[0], "k": last[1]}))

    # ------------------------------------------------------------------ plan
    def _plan(self, scope: Scope, tree: Node | None, terms: list[OrderTerm], phase: int,
              after: list[Any] | None, limit: int) -> _Plan:
        b = Binder()
        sb = SqlBuilder(self.db, b)
        sb.artifact_root = self._artifact_root
        sb.restrict(scope)
        sb.unfiled = self._unfiled
        first = terms[0].field
        joins: list[str] = []
        where: list[str] = []
        if first.kind != "attributes" and phase == 1:
            driver: Field | None = first
            if self._covered:
                # The key's rows filed under the scope's experiments are the scope (not
                # under '': a run filed there has no known experiment).
                every = sb.experiments
                sb.experiments = [e for e in every or () if e]
                src = sb.key_rows(first)
                sb.experiments = every
            else:
                src = sb.key_rows(first)
                where.append(sb.scope_as_set(scope))
                if scope.experiment_ids is not None:
                    # same text -> ClickHouse builds the scope set once and reuses it
                    sb.leaf_restrict = where[-1]
            comps = _value_components(first, terms[0].ascending, sb.value_expr(first.kind))
            rest = terms[1:]
        else:
            driver = None
            src = f"{sb.runs_table()} WHERE {sb.scope(scope)}"
            pin = sb.pinned_runs(tree)
            if pin:
                src += f" AND {pin}"
            comps = []
            rest = terms[1:] if first.kind != "attributes" else terms
            if first.kind != "attributes":  # phase 2: runs lacking the first sort key
                where.append(f"rk NOT IN (SELECT rk FROM {sb.key_rows(first)})")
        for i, t in enumerate(rest):
            comps.extend(self._secondary(sb, t, i, driver, joins))
        comps.append(RK)
        if tree is not None:
            where.append(sb.tree(tree, driver))
        if after is not None:
            if len(after) != len(comps):
                raise InvalidArgument("page_token does not fit this search", field="page_token")
            where.append(keyset_after(b, comps, after))
        inner = f"SELECT * FROM {src}"
        if joins:
            inner = f"SELECT * FROM ({inner}) AS d " + " ".join(joins)
        cols = ", ".join(f"{c.expr} AS c{i}" for i, c in enumerate(comps))
        sql = (f"SELECT rk, {cols} FROM ({inner}) "
               f"WHERE {' AND '.join(f'({w})' for w in where) or '1'} "
               f"ORDER BY {order_clause(comps)} LIMIT {int(limit)} "
               f"SETTINGS {FINAL_SETTING}")
        return _Plan(sql, b.params, len(comps))

    def _secondary(self, sb: SqlBuilder, t: OrderTerm, i: int, driver: Field | None,
                   joins: list[str]) -> list[Component]:
        f = t.field
        if f.kind == "attributes":
            col = ATTRIBUTE_COLUMNS[f.key]
            if driver is None:
                return [Component(col, t.ascending, _attr_type(f.key))]
            joins.append(f"LEFT JOIN (SELECT rk, {col} AS a{i} FROM {sb.runs_table()}) "
                         f"AS j{i} USING rk")
            return [Component(f"a{i}", t.ascending, _attr_type(f.key))]
        joins.append(f"LEFT JOIN (SELECT rk, 1 AS h{i}, {sb.value_expr(f.kind)} AS v{i} "
                     f"FROM {sb.key_rows(f)}) AS j{i} USING rk")
        return [Component(f"h{i}", False, "UInt8"),
                *_value_components(f, t.ascending, f"v{i}")]


def resolve_datasets(node: Node, dataset_runs: DatasetRuns) -> Node:
    """`node` with every `datasets.*` comparison replaced by `run_id IN (matching runs)`
    (an empty set matches nothing), so AND/OR keep their meaning."""
    if isinstance(node, BoolOp):
        return BoolOp(node.op, tuple(resolve_datasets(a, dataset_runs) for a in node.args))
    if node.field.kind != "datasets":
        return node
    value = node.value
    assert isinstance(value, (str, tuple))  # datasets fields compare with strings
    ids = tuple(sorted(set(dataset_runs(node.field.key, node.op, value))))
    return Comparison(Field("attributes", "run_id"), "IN", ids)


def _value_components(f: Field, ascending: bool, expr: str) -> list[Component]:
    if f.kind == "metrics":
        # NaN sorts after every number in both directions; keyset needs it finite.
        return [Component(f"isNaN({expr})", True, "UInt8"),
                Component(f"if(isNaN({expr}), 0, {expr})", ascending, "Float64")]
    return [Component(expr, ascending, "String")]


def _attr_type(key: str) -> str:
    return "Int64" if key in ("start_time", "end_time") else "String"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)  # exact round trip, and inf survives JSON
    return v


def _shape_hash(scope: Scope, filter_string: str, order_by: list[str]) -> str:
    blob = json.dumps([sorted(scope.experiment_ids) if scope.experiment_ids is not None
                       else None, scope.view_type, filter_string, order_by])
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def _encode(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> dict[str, Any]:
    try:
        obj = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(obj, dict) or not {"h", "p", "k"} <= obj.keys():
            raise ValueError
        return obj
    except Exception:  # any garbage token is the caller's
        raise InvalidArgument("page_token is not a token this server issued",
                              field="page_token", received=token[:80]) from None
