"""What MLflow's `datasets.*` and `attributes.artifact_uri` run filters cost.

Starts a `metricflow server` subprocess (auth off), creates `--runs` runs through the
MLflow REST API, gives every `--every`-th run a dataset input `iris` (runs/log-inputs)
and the tag `ds=iris`, then times `runs/search` (one page of `--page` runs) with:

- `datasets.name = 'iris'` (resolved to a run-id set from the control plane),
- `tags.ds = 'iris'` (the same runs through the data plane's search tables: the
  reference a dataset clause is compared with),
- `attributes.artifact_uri LIKE 'mlflow-artifacts:/<exp>/%'` (scans the runs table),
- no filter.

    python loadtests/mlflow_search_fields_bench.py --runs 5000 --every 2 --json

`--json` prints one line: runs, matching, and per filter the median and p90 latency
in ms over `--repeat` searches (dataset_filter_ms_p50, tag_filter_ms_p50,
artifact_uri_like_ms_p50, no_filter_ms_p50, ...).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests._server import start_server

API = "/api/2.0/mlflow/"


def _post(s: requests.Session, base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = s.post(base + API + path, json=body, timeout=120)
    if r.status_code != 200:
        raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
    return r.json()  # type: ignore[no-any-return]


def seed(base: str, runs: int, every: int, workers: int = 4) -> tuple[str, int]:
    """An experiment with `runs` runs; every `every`-th has the input and the tag."""
    s = requests.Session()
    exp = _post(s, base, "experiments/create", {"name": f"bench-{time.time_ns()}"})[
        "experiment_id"]

    def one(i: int) -> int:
        sess = requests.Session()
        rid = _post(sess, base, "runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
        if i % every:
            return 0
        _post(sess, base, "runs/log-inputs", {"run_id": rid, "datasets": [{
            "tags": [{"key": "mlflow.data.context", "value": "train"}],
            "dataset": {"name": "iris", "digest": f"d{i % 7}", "source_type": "local",
                        "source": "x"}}]})
        _post(sess, base, "runs/set-tag", {"run_id": rid, "key": "ds", "value": "iris"})
        return 1

    with ThreadPoolExecutor(workers) as pool:
        matching = sum(pool.map(one, range(runs)))
    return exp, matching


def time_search(base: str, exp: str, flt: str, page: int, repeat: int) -> tuple[list[float], int]:
    s = requests.Session()
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = _post(s, base, "runs/search", {"experiment_ids": [exp], "filter": flt,
                                             "max_results": page})
        times.append((time.perf_counter() - t0) * 1000)
        n = len(out.get("runs", []))
    return times, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--every", type=int, default=2, help="every N-th run has the dataset")
    ap.add_argument("--page", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="mf-search-fields-")
    srv = start_server(data_dir, extra_args=["--auth", "off"])
    base = f"http://127.0.0.1:{srv.http_port}"
    try:
        t0 = time.perf_counter()
        exp, matching = seed(base, args.runs, args.every)
        seed_s = time.perf_counter() - t0
        filters = {"dataset_filter": "datasets.name = 'iris'", "tag_filter": "tags.ds = 'iris'",
                   "artifact_uri_like": f"attributes.artifact_uri LIKE 'mlflow-artifacts:/{exp}/%'",
                   "no_filter": ""}
        out: dict[str, Any] = {"runs": args.runs, "matching": matching, "page": args.page,
                               "seed_s": round(seed_s, 1)}
        for name, flt in filters.items():
            time_search(base, exp, flt, args.page, 2)  # warm up
            times, n = time_search(base, exp, flt, args.page, args.repeat)
            out[f"{name}_ms_p50"] = round(statistics.median(times), 1)
            out[f"{name}_ms_p90"] = round(sorted(times)[int(0.9 * (len(times) - 1))], 1)
            out[f"{name}_page_runs"] = n
    finally:
        srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
