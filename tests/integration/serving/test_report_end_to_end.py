"""The deployment report on real processes: a `metricflow server`, sklearn models registered
through the `mlflow` client, a `metricflow serve` process answering real HTTP with a 50/50
split, outcomes attached through /feedback, and `metricflow deploy report` over gRPC (the
CLI). Every figure is recomputed with scipy from what the test sent (the outcomes) and
from the request log read back through the query API (the latencies).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
import requests
from scipy import stats
from serving_stack import Stack, api, register_sklearn, unique

COLS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
BODY = json.dumps({"dataframe_split": {"columns": COLS, "data": [[5.1, 3.5, 1.4, 0.2]]}})


def _report(stack: Stack, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "metricflow.server.cli", "deploy", "report",
                           name, "--tracking-uri", stack.grpc, *args],
                          capture_output=True, text=True, timeout=120)


def test_report_matches_scipy_on_a_served_ab_test(stack: Stack, serve: Any) -> None:
    model = unique("iris-ab")
    v1, v2 = register_sklearn(model, 1.0), register_sklearn(model, 0.01)
    dep = unique("ab")
    api(stack, "create", {"name": dep, "model_name": model,
                          "variants": [{"name": "champion", "version": v1, "weight": 50},
                                       {"name": "challenger", "version": v2, "weight": 50}]})
    sp = serve(dep)

    rng = np.random.default_rng(19)
    sent: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    runs: dict[str, set[str]] = defaultdict(set)
    n = 400
    with requests.Session() as s:
        for _ in range(n):
            r = s.post(f"{sp.url}/invocations", data=BODY, timeout=30,
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            variant, rid = r.headers["X-Metricflow-Variant"], r.headers["X-Request-Id"]
            runs[variant].add(rid.rsplit("-", 1)[0])
            lift = 0.8 if variant == "challenger" else 0.0
            revenue = float(rng.normal(10.0 + lift, 3.0))
            converted = float(rng.random() < (0.18 if variant == "challenger" else 0.10))
            fb = s.post(f"{sp.url}/feedback", timeout=30, json={
                "request_id": rid, "outcomes": {"revenue": revenue, "converted": converted}})
            assert fb.status_code == 200, fb.text
            sent[variant]["revenue"].append(revenue)
            sent[variant]["converted"].append(converted)
    assert set(sent) == {"champion", "challenger"}

    # The request log is written asynchronously: wait until the report sees all of it.
    deadline = time.monotonic() + 60
    while True:
        r = _report(stack, dep, "--json")
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        by = {v["variant"]: v for v in rep["variants"]}
        if all(by[k]["count"] == len(sent[k]["revenue"]) and
               by[k]["outcomes"].get("revenue", {}).get("count") == len(sent[k]["revenue"])
               for k in sent):
            break
        assert time.monotonic() < deadline, f"the report never saw every request: {by}"
        time.sleep(0.5)

    assert rep["baseline"] == "champion"  # the largest weight (a tie: the first variant)
    assert sum(v["count"] for v in rep["variants"]) == n
    for k in sent:
        assert by[k]["versions"] == {v1 if k == "champion" else v2: len(sent[k]["revenue"])}
        assert by[k]["errors"] == 0 and by[k]["error_rate"]["mean"] == 0.0
        rev = np.array(sent[k]["revenue"])
        lo, hi = stats.t.interval(0.95, len(rev) - 1, loc=rev.mean(), scale=stats.sem(rev))
        o = by[k]["outcomes"]["revenue"]
        assert (o["mean"], o["ci_low"], o["ci_high"]) == pytest.approx((rev.mean(), lo, hi),
                                                                       rel=1e-9)

    # Latency: the report's percentiles are those of the log read back through the query API.
    from metricflow import Client

    with Client(stack.grpc) as c:
        lat = {k: np.concatenate([c.get_metric_history(rid, "latency_ms").values
                                  for rid in sorted(runs[k])]) for k in sent}
    for k in sent:
        assert len(lat[k]) == by[k]["count"]
        assert [by[k]["latency_ms"][q] for q in ("p50", "p95", "p99")] == pytest.approx(
            list(np.percentile(lat[k], [50, 95, 99])), rel=1e-9)

    (cmp,) = rep["comparisons"]
    assert (cmp["variant"], cmp["baseline"]) == ("challenger", "champion")
    ref = stats.ttest_ind(sent["challenger"]["revenue"], sent["champion"]["revenue"],
                          equal_var=False)
    w = cmp["outcomes"]["revenue"]["fixed_horizon"]
    assert w["test"] == "welch_t"
    assert (w["statistic"], w["p_value"], w["df"]) == pytest.approx(
        (ref.statistic, ref.pvalue, ref.df), rel=1e-7)
    lref = stats.ttest_ind(lat["challenger"], lat["champion"], equal_var=False)
    assert cmp["latency_ms"]["fixed_horizon"]["p_value"] == pytest.approx(lref.pvalue, rel=1e-7)
    conv = {k: np.array(sent[k]["converted"]) for k in sent}
    chi2 = stats.chi2_contingency(
        [[conv[k].sum(), len(conv[k]) - conv[k].sum()] for k in ("champion", "challenger")],
        correction=False)
    z = cmp["outcomes"]["converted"]["fixed_horizon"]
    assert z["test"] == "two_proportion_z" and z["p_value"] == pytest.approx(chi2.pvalue,
                                                                            rel=1e-8)
    assert cmp["error_rate"]["fixed_horizon"]["p_value"] is None  # no errors on either side
    for t in (cmp["outcomes"]["revenue"], cmp["outcomes"]["converted"], cmp["latency_ms"]):
        assert t["sequential"]["test"] == "msprt" and 0 < t["sequential"]["p_value"] <= 1

    text = _report(stack, dep)
    assert text.returncode == 0, text.stderr
    assert "challenger vs champion:" in text.stdout and "welch_t p=" in text.stdout
    assert "two_proportion_z p=" in text.stdout and "msprt p=" in text.stdout
