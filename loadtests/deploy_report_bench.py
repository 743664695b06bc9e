"""Deployment control-plane benchmark: the report over a large request log, and the poll.

    python loadtests/deploy_report_bench.py --json
    python loadtests/deploy_report_bench.py --requests 20000 --json      (quick)

Against a real `metricflow server` subprocess (embedded: chDB, SQLite), through the
client and the deployment API:
1. (untimed) a model with two versions, a deployment with a 90/10 split, and its
   request log as `serve` writes it (docs/serving.md): `--requests` requests split
   90/10 over two serve instances per variant (4 runs), each one point of
   `latency_ms`, `status`, `error` and `outcome.revenue` at its step.
2. report_s: `metricflow deploy report`'s call (GetDeploymentReport over gRPC): read
   every point of the log through the query layer, per-variant figures, Welch,
   two-proportion z and mSPRT. Median of `--repeat` calls.
3. poll_ms_p50 / poll_ms_p99: what a serve process pays per poll of its deployment
   (`GET /api/v1/deployments/get`, aliases resolved), over `--polls` sequential polls
   on one keep-alive connection.

Prints one JSON line with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests._server import start_server


def _log(client: Any, exp: str, variant: str, version: str, instance: str, n: int,
         rng: np.random.Generator, lift: float) -> None:
    from metricflow.serving import (
        KEY_ERROR,
        KEY_LATENCY,
        KEY_STATUS,
        TAG_DEPLOYMENT,
        TAG_INSTANCE,
        TAG_ROLE,
        TAG_VARIANT,
        TAG_VERSION,
    )

    run = client.create_run(exp, run_name=f"bench/{variant}/v{version}/{instance}", tags={
        TAG_DEPLOYMENT: "bench", TAG_VARIANT: variant, TAG_VERSION: version,
        TAG_INSTANCE: instance, TAG_ROLE: "primary"})
    lat = rng.gamma(4.0, 1.5, n)
    err = (rng.random(n) < 0.01).astype(float)
    revenue = rng.normal(10.0 + lift, 3.0, n)
    t0 = int(time.time() * 1000)
    for i in range(n):
        client.log_metrics(run.info.run_id, {KEY_LATENCY: float(lat[i]), KEY_ERROR: float(err[i]),
                                             KEY_STATUS: 500.0 if err[i] else 200.0,
                                             "outcome.revenue": float(revenue[i])},
                           step=i + 1, timestamp=t0 + i)


def run_bench(requests_n: int, repeat: int, polls: int) -> dict[str, Any]:
    import requests

    import metricflow as mf
    from metricflow.entities import Variant
    from metricflow.serving import DeployClient, experiment_name
    from metricflow.serving._deploy_client import open_channel

    srv = start_server()
    try:
        client = mf.Client(srv.uri, linger_ms=50)
        reg = client.registry
        reg.create_registered_model("bench-model")
        for i in (1, 2):
            reg.create_model_version("bench-model", f"s3://bench/model/{i}")
        reg.set_registered_model_alias("bench-model", "champion", 1)
        reg.set_registered_model_alias("bench-model", "challenger", 2)
        dc = DeployClient(open_channel(srv.uri))
        dc.create("bench", "bench-model", [Variant("champion", alias="champion", weight=90),
                                           Variant("challenger", alias="challenger", weight=10)])
        rng = np.random.default_rng(1)
        exp = client.get_or_create_experiment(experiment_name("bench"))
        t = time.perf_counter()
        champ = int(requests_n * 0.9)
        split = {"champion": champ, "challenger": requests_n - champ}
        for variant, n in split.items():
            version = "1" if variant == "champion" else "2"
            for inst, part in (("a", n // 2), ("b", n - n // 2)):
                _log(client, exp, variant, version, inst, part, rng,
                     0.3 if variant == "challenger" else 0.0)
        client.flush()
        log_s = time.perf_counter() - t
        client.close()

        times = []
        rep: dict[str, Any] = {}
        for _ in range(repeat):
            t = time.perf_counter()
            rep = dc.report("bench")
            times.append(time.perf_counter() - t)
        counted = sum(v["count"] for v in rep["variants"])
        assert counted == requests_n, f"the report counted {counted} of {requests_n}"

        url = f"http://127.0.0.1:{srv.http_port}/api/v1/deployments/get"
        poll = []
        with requests.Session() as s:
            for _ in range(polls):
                t = time.perf_counter()
                r = s.get(url, params={"name": "bench"}, timeout=30)
                poll.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
        return {
            "requests": requests_n, "points": requests_n * 4, "runs": 4,
            "log_s": round(log_s, 2),
            "report_s": round(statistics.median(times), 3),
            "report_points_per_s": round(requests_n * 3 / statistics.median(times)),
            "poll_ms_p50": round(float(np.percentile(poll, 50)), 2),
            "poll_ms_p99": round(float(np.percentile(poll, 99)), 2),
            "welch_p_revenue": rep["comparisons"][0]["outcomes"]["revenue"]["fixed_horizon"]
            ["p_value"],
        }
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--polls", type=int, default=500)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    out = run_bench(a.requests, a.repeat, a.polls)
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
