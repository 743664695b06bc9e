"""`metricflow deploy report`: per-variant figures and variant-vs-baseline tests.

The request log is ordinary runs (see `_naming.py`): this module finds a
deployment's runs through the query layer (`QueryCore`: a tag search, then each
run's metric histories as numpy columns), groups them by variant, and computes
per variant the count, error rate, latency p50/p95/p99 and the mean of every
outcome with a confidence interval; then, for every routed variant against the
baseline (the deployment's fallback, its champion, unless another is named):

- continuous values (latency, non-0/1 outcomes): Welch's t-test;
- rates (the error rate, 0/1 outcomes): the two-proportion z-test;
- both: the always-valid mixture SPRT (`_stats.msprt`), safe to read at any time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from metricflow.errors import InvalidArgument, InvalidState, NotFound
from metricflow.serving._naming import (
    KEY_ERROR,
    KEY_LATENCY,
    OUTCOME_PREFIX,
    ROLE_SHADOW,
    TAG_DEPLOYMENT,
    TAG_ROLE,
    TAG_VARIANT,
    TAG_VERSION,
    experiment_name,
)
from metricflow.serving._stats import (
    Comparison,
    Interval,
    mean_ci,
    msprt,
    percentiles,
    two_proportion_z_test,
    welch_t_test,
    wilson_ci,
)

if TYPE_CHECKING:
    from metricflow.query import QueryCore
    from metricflow.store.metadata import MetadataStore

_PAGE = 1_000_000
MAX_RUNS = 10_000
"""Runs of one deployment the report reads (one per variant, version and serve process)."""


@dataclass
class Series:
    """One key's points of one variant, in arrival order."""

    ts: np.ndarray
    values: np.ndarray

    @staticmethod
    def empty() -> Series:
        return Series(np.empty(0, np.int64), np.empty(0, np.float64))

    def extend(self, ts: np.ndarray, values: np.ndarray) -> Series:
        return Series(np.concatenate([self.ts, ts]), np.concatenate([self.values, values]))

    def ordered(self) -> np.ndarray:
        return self.values[np.argsort(self.ts, kind="stable")]


def is_rate(values: np.ndarray) -> bool:
    """Values that are all 0 or 1 are a rate (a conversion, a correct label)."""
    return bool(len(values)) and bool(np.all((values == 0) | (values == 1)))


@dataclass
class VariantData:
    name: str
    shadow: bool = False
    versions: dict[str, int] = field(default_factory=dict)
    """version -> requests it answered (an alias move mid-test shows here)."""
    runs: list[str] = field(default_factory=list)
    keys: dict[str, Series] = field(default_factory=dict)

    def add(self, key: str, ts: np.ndarray, values: np.ndarray) -> None:
        self.keys[key] = self.keys.get(key, Series.empty()).extend(ts, values)

    def series(self, key: str) -> Series:
        return self.keys.get(key, Series.empty())


def _interval(i: Interval) -> dict[str, float | None]:
    return {"mean": _num(i.estimate), "ci_low": _num(i.low), "ci_high": _num(i.high)}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _test(c: Comparison) -> dict[str, Any]:
    out: dict[str, Any] = {"test": c.test, "difference": _num(c.difference),
                           "ci_low": _num(c.ci_low), "ci_high": _num(c.ci_high),
                           "statistic": _num(c.statistic), "p_value": _num(c.p_value)}
    if c.test == "welch_t":
        out["df"] = _num(c.df)
    return out


def _summary(v: VariantData, confidence: float) -> dict[str, Any]:
    lat = v.series(KEY_LATENCY).values
    err = v.series(KEY_ERROR).values
    p50, p95, p99 = percentiles(lat)
    outcomes = {}
    for key in sorted(k for k in v.keys if k.startswith(OUTCOME_PREFIX)):
        vals = v.keys[key].values
        rate = is_rate(vals)
        ci = wilson_ci(int(vals.sum()), len(vals), confidence) if rate else \
            mean_ci(vals, confidence)
        outcomes[key[len(OUTCOME_PREFIX):]] = {"kind": "rate" if rate else "continuous",
                                               "count": len(vals), **_interval(ci)}
    errors = int(err.sum())
    return {
        "variant": v.name, "shadow": v.shadow,
        "versions": dict(sorted(v.versions.items(), key=lambda kv: (len(kv[0]), kv[0]))),
        "runs": len(v.runs), "count": int(len(lat)),
        "errors": errors, "error_rate": {"kind": "rate", "count": int(len(err)),
                                         **_interval(wilson_ci(errors, len(err), confidence))},
        "latency_ms": {"p50": _num(p50), "p95": _num(p95), "p99": _num(p99),
                       **_interval(mean_ci(lat, confidence))},
        "outcomes": outcomes,
    }


def _compare_values(a: Series, b: Series, rate: bool, confidence: float) -> dict[str, Any]:
    av, bv = a.ordered(), b.ordered()
    fixed = (two_proportion_z_test(int(av.sum()), len(av), int(bv.sum()), len(bv), confidence)
             if rate else welch_t_test(av, bv, confidence))
    return {"kind": "rate" if rate else "continuous", "fixed_horizon": _test(fixed),
            "sequential": _test(msprt(av, bv, confidence=confidence))}


def compare(base: VariantData, other: VariantData, confidence: float = 0.95) -> dict[str, Any]:
    """`other` against `base` on the error rate, latency and every shared outcome."""
    out: dict[str, Any] = {
        "variant": other.name, "baseline": base.name,
        "error_rate": _compare_values(base.series(KEY_ERROR), other.series(KEY_ERROR), True,
                                      confidence),
        "latency_ms": _compare_values(base.series(KEY_LATENCY), other.series(KEY_LATENCY),
                                      False, confidence),
        "outcomes": {},
    }
    for key in sorted(set(base.keys) & set(other.keys)):
        if key.startswith(OUTCOME_PREFIX):
            a, b = base.keys[key], other.keys[key]
            out["outcomes"][key[len(OUTCOME_PREFIX):]] = _compare_values(
                a, b, is_rate(a.values) and is_rate(b.values), confidence)
    return out


@dataclass
class Report:
    deployment: str
    model_name: str
    baseline: str
    confidence: float
    variants: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment, "model_name": self.model_name,
            "baseline": self.baseline, "confidence": self.confidence,
            "tests": {
                "rates": "two-proportion z-test (pooled standard error), two-sided",
                "continuous": "Welch's t-test (unequal variances), two-sided",
                "sequential": "mixture SPRT (normal mixture, tau = 0.1 sd), always-valid "
                              "p-value over 100 looks in arrival order",
                "intervals": "means: Student t; rates: Wilson score; differences: Welch "
                             "(continuous), Wald (rates), the mSPRT's confidence sequence "
                             "(sequential)",
            },
            "variants": self.variants, "comparisons": self.comparisons,
        }


def analyze(name: str, model_name: str, data: dict[str, VariantData], baseline: str,
            confidence: float) -> Report:
    """The report from variants' request logs (pure: no store)."""
    variants = [_summary(v, confidence) for v in data.values()]
    comparisons = []
    base = data.get(baseline)
    if base is not None:
        for v in data.values():
            if v.name != baseline and not v.shadow:
                comparisons.append(compare(base, v, confidence))
    return Report(name, model_name, baseline, confidence, variants, comparisons)


def collect(query: QueryCore, experiment_id: str, deployment: str,
            routed: set[str], shadows: set[str]) -> dict[str, VariantData]:
    """Every variant's points from the deployment's runs (found by the deployment tag)."""
    data: dict[str, VariantData] = {}
    for n in sorted(routed | shadows):
        data[n] = VariantData(n, shadow=n in shadows)
    token = ""
    ids: list[str] = []
    # The deployment name is validated ([A-Za-z0-9_.-]), so it needs no escaping here.
    flt = f"tags.`{TAG_DEPLOYMENT}` = '{deployment}'"
    while True:
        page = query.search_run_ids([experiment_id], flt, [], 1000, token, "active")
        ids.extend(page.run_ids)
        token = page.next_page_token
        if not token or len(ids) >= MAX_RUNS:
            break
    for run in query.load_runs(ids[:MAX_RUNS]):
        variant = run.tags.get(TAG_VARIANT, "")
        if not variant:
            continue
        shadow = run.tags.get(TAG_ROLE) == ROLE_SHADOW
        v = data.setdefault(variant, VariantData(variant, shadow=shadow))
        v.runs.append(run.run_id)
        for key in run.metrics:
            if key in (KEY_LATENCY, KEY_ERROR) or key.startswith(OUTCOME_PREFIX):
                ts, values = _history(query, run.run_id, key)
                v.add(key, ts, values)
                if key == KEY_LATENCY:
                    version = run.tags.get(TAG_VERSION, "")  # "" for endpoint variants
                    v.versions[version] = v.versions.get(version, 0) + len(values)
    return data


def _history(query: QueryCore, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """All points of one key of one run: (timestamps, values), columnar."""
    ts_parts, val_parts = [], []
    token = ""
    while True:
        _, ts, values, token = query.history_page(run_id, key, _PAGE, token)
        ts_parts.append(np.asarray(ts, np.int64))
        val_parts.append(np.asarray(values, np.float64))
        if not token:
            break
    return np.concatenate(ts_parts), np.concatenate(val_parts)


def report_core(query: QueryCore | None) -> QueryCore | None:
    """The core the report reads with: never scoped to the caller's experiments.

    The report is authorized by READ on the deployment's model (auth/policy); its
    request log belongs to the deployment, whoever created the log's experiment (the
    serve process's credential). Make it once per front end (it owns a page pool).
    """
    if query is None:
        return None
    from metricflow.query import QueryCore, ScopedQueryCore

    if isinstance(query, ScopedQueryCore):
        return QueryCore(query.store, query.metadata)
    return query


def build_report(store: MetadataStore, query: QueryCore | None, name: str, *,
                 confidence: float = 0.95, baseline: str = "") -> Report:
    """The report of deployment `name` from its request log (`query`: see `report_core`)."""
    if isinstance(confidence, bool) or not 0.5 <= confidence < 1.0:
        raise InvalidArgument(f"confidence must be in [0.5, 1), got {confidence!r}",
                              field="confidence", limit=1, received=confidence)
    d = store.get_deployment(name)
    if query is None:
        raise InvalidState("the deployment report reads the request log from ClickHouse: "
                           "ask a server or query role (this node has no query service)",
                           field="name", received=name)
    base = baseline or d.fallback
    if base not in {v.name for v in d.routed}:
        raise NotFound(f"baseline {base!r} is not a routed variant of deployment {name!r}",
                       field="baseline", received=base)
    # The query core's own metadata store: unscoped, like the core (see `report_core`).
    exp = query.metadata.get_experiment_by_name(experiment_name(name))
    routed = {v.name for v in d.routed}
    shadows = {v.name for v in d.shadows}
    if exp is None:
        data = {n: VariantData(n, shadow=n in shadows) for n in sorted(routed | shadows)}
    else:
        data = collect(query, exp.experiment_id, name, routed, shadows)
    return analyze(name, d.model_name, data, base, confidence)
