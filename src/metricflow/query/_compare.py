"""Compare runs: a runs x metrics/params table, and group-by-param aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from metricflow._validation import check_key, check_run_id
from metricflow.errors import InvalidArgument
from metricflow.query._deadline import read_settings
from metricflow.query._grammar import Field, parse_filter
from metricflow.query._sql import Binder, Scope, SqlBuilder, unfiled_keys
from metricflow.store import MetricStore

MAX_COMPARE_RUNS = 1000


@dataclass(frozen=True)
class CompareTable:
    """Columns aligned with `run_ids`; `present` masks say which cells exist."""

    run_ids: list[str]
    metrics: dict[str, dict[str, np.ndarray]]
    """key -> {"last", "min", "max": float64, "present": bool}."""
    params: dict[str, tuple[list[str], np.ndarray]]
    """key -> (values, present)."""


@dataclass(frozen=True)
class ParamGroup:
    param_value: str
    run_count: int
    finite_count: int
    mean: float
    std: float
    min: float
    max: float


def compare_runs(store: MetricStore, run_ids: list[str], metric_keys: list[str],
                 param_keys: list[str]) -> CompareTable:
    """Latest/min/max of metrics and param values of up to 1,000 runs."""
    if not 1 <= len(run_ids) <= MAX_COMPARE_RUNS:
        raise InvalidArgument(f"run_ids must hold 1 to {MAX_COMPARE_RUNS} runs, "
                              f"got {len(run_ids)}", field="run_ids",
                              limit=MAX_COMPARE_RUNS, received=len(run_ids))
    for r in run_ids:
        check_run_id(r, "run_ids")
    for k in [*metric_keys, *param_keys]:
        check_key(k, "key")
    summaries = store.get_summaries(run_ids)
    params = store.get_params(run_ids)
    mkeys = metric_keys or sorted({k for s in summaries.values() for k in s})
    pkeys = param_keys or sorted({k for p in params.values() for k in p})
    n = len(run_ids)
    metrics: dict[str, dict[str, np.ndarray]] = {}
    for k in mkeys:
        col = {c: np.full(n, np.nan) for c in ("last", "min", "max")}
        present = np.zeros(n, bool)
        for i, r in enumerate(run_ids):  # per run and key, never per point
            s = summaries.get(r, {}).get(k)
            if s is not None:
                col["last"][i], col["min"][i], col["max"][i] = (s.last_value, s.min_value,
                                                                 s.max_value)
                present[i] = True
        metrics[k] = {**col, "present": present}
    pcols: dict[str, tuple[list[str], np.ndarray]] = {}
    for k in pkeys:
        vals = [params.get(r, {}).get(k) for r in run_ids]
        pcols[k] = ([v or "" for v in vals], np.array([v is not None for v in vals], bool))
    return CompareTable(list(run_ids), metrics, pcols)


def group_by_param(client: Any, db: str, scope: Scope, filter_string: str, param_key: str,
                   metric_key: str) -> list[ParamGroup]:
    """Aggregate the latest value of `metric_key` over runs grouped by `param_key`.

    Only runs with both the param and the metric count. mean/std/min/max use
    finite latest values only (std is the sample std, NaN below 2 values).
    """
    check_key(param_key, "param_key")
    check_key(metric_key, "metric_key")
    tree = parse_filter(filter_string)
    b = Binder()
    sb = SqlBuilder(db, b)
    sb.restrict(scope)
    sb.unfiled = unfiled_keys(client, db)
    pf = Field("params", param_key)
    where = [sb.scope_as_set(scope)]
    if tree is not None:
        where.append(sb.tree(tree, pf))
    sql = f"""
        SELECT p.value, count() AS n, countIf(isFinite(v)) AS nf,
               avgIf(v, isFinite(v)), stddevSampIf(v, isFinite(v)),
               minIf(v, isFinite(v)), maxIf(v, isFinite(v))
        FROM (SELECT * FROM {sb.key_rows(pf)}) AS p
        INNER JOIN (SELECT rk, last.3 AS v FROM {sb.key_rows(Field("metrics", metric_key))}) AS m
            USING rk
        WHERE {' AND '.join(f'({w})' for w in where)}
        GROUP BY p.value ORDER BY p.value
    """
    rows = client.query(sql, parameters=b.params, settings=read_settings()).result_rows
    return [ParamGroup(str(v), int(n), int(nf), *(float(x) if nf else float("nan")
                                                  for x in rest))
            for v, n, nf, *rest in rows]
