"""Query benchmark: search, downsampling and bulk history over N runs (default 1,000,000).

Usage: python loadtests/query_bench.py --runs 1000000 --json
       python loadtests/query_bench.py --runs 20000          (quick mode)

Generation (not timed): N runs in 100 experiments, each with 10 params, 5
tags and 10 metrics x 10 steps; one run with a 10,000,000-point metric; 100
runs with 100,000 points each. Data goes straight into the MetricStore in big
Arrow batches (the writer's own insert path), on chDB in-process, so the
figures are the query service's work without gRPC/HTTP. Then it times
QueryCore calls (median and p95 over --repeat runs after one warm-up):
  (a) metric + param filter in one experiment, ordered by a metric, page of 100
  (b) top 100 runs by a metric across all experiments
  (c) tag LIKE filter in one experiment, page of 100
  (d) the 10M-point history downsampled into 1,000 buckets (from the rollup;
      d_raw: the same answer from one GROUP BY over the points, for comparison;
      d_cut: steps 123..9,876,543, whose ends cut two blocks read from the points)
  (e) 100 runs x 100k points downsampled into 500 buckets each
Search figures include loading the 100 full runs (info, params, tags, metric
summaries) unless noted as ids_only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from metricflow._wire import DecodedMetrics
from metricflow.query._core import QueryCore
from metricflow.query._history import downsample_raw
from metricflow.store._arrow import build_insert
from metricflow.store._metric_store import MetricStore

N_EXP, N_PARAMS, N_TAGS, N_METRICS, N_STEPS = 100, 10, 5, 10, 10
CHUNK = 20_000
TARGETS_MS = {"a": 100, "b": 100, "c": 100, "d": 100, "e": 1000}


def run_ids(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).view(np.uint64)
    return np.array([f"{a:016x}{b:016x}" for a, b in raw])


def gen_runs(store: MetricStore, ids: np.ndarray, rng: np.random.Generator) -> None:
    n = len(ids)
    idx = np.arange(n)
    start = 1_700_000_000_000 + idx * 1000
    runs = pa.table({
        "run_id": ids, "experiment_id": (idx % N_EXP).astype(str),
        "run_name": np.char.add("run-", idx.astype(str)),
        "user_id": np.char.add("user", (idx % 37).astype(str)),
        "status": np.array(["FINISHED", "RUNNING", "FAILED"])[idx % 3],
        "start_time": start, "end_time": np.where(idx % 3 == 1, 0, start + 5000),
        "parent_run_id": np.full(n, ""), "lifecycle_stage": np.full(n, "active"),
        "artifact_uri": np.full(n, ""), "version": np.ones(n, np.uint64),
    })
    store.client.insert_arrow(f"{store.db}.runs", runs)
    for table, width, make in (
        ("params", N_PARAMS, lambda k: np.char.add("v", rng.integers(0, 20, n).astype(str))),
        ("tags", N_TAGS, lambda k: np.char.add("team-", rng.integers(0, 100, n).astype(str))),
    ):
        cols: dict[str, Any] = {
            "run_id": np.tile(ids, width),
            "key": np.repeat([f"{table[0]}{k}" for k in range(width)], n),
            "value": np.concatenate([make(k) for k in range(width)]),
        }
        if table == "tags":
            cols["deleted"] = np.zeros(n * width, np.uint8)
        cols["version"] = np.full(n * width, 5, np.uint64)
        store.client.insert_arrow(f"{store.db}.{table}", pa.table(cols))


def gen_metrics(store: MetricStore, ids: np.ndarray, keys: tuple[str, ...], steps: int,
                rng: np.random.Generator, step_chunk: int | None = None) -> None:
    """Insert `steps` points of every key for every run, in ~1M-point inserts."""
    k = len(keys)
    per_run = k * steps
    runs_per_insert = max(1, 1_000_000 // per_run)
    kidx = np.repeat(np.arange(k, dtype=np.int32), steps)
    st = np.tile(np.arange(steps, dtype=np.int64), k)
    if step_chunk:  # one huge series: insert it in step slices
        for s0 in range(0, steps, step_chunk):
            s = np.arange(s0, min(steps, s0 + step_chunk), dtype=np.int64)
            for rid in ids:
                v = np.sin(s / 1000.0) + rng.normal(0, 0.1, len(s))
                store.insert_metrics(build_insert([DecodedMetrics(
                    str(rid), keys, np.zeros(len(s), np.int32), s, s * 10, v)]))
        return
    for i in range(0, len(ids), runs_per_insert):
        chunk = ids[i:i + runs_per_insert]
        vals = rng.random(len(chunk) * per_run)
        batches = [DecodedMetrics(str(r), keys, kidx, st, st * 10,
                                  vals[j * per_run:(j + 1) * per_run])
                   for j, r in enumerate(chunk)]
        store.insert_metrics(build_insert(batches))


def generate(store: MetricStore, n_runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = np.random.default_rng(42)
    t0 = time.perf_counter()
    ids = run_ids(n_runs, 1)
    big = run_ids(1, 2)
    mid = run_ids(100, 3)
    for i in range(0, n_runs, 200_000):
        gen_runs(store, ids[i:i + 200_000], rng)
    gen_runs(store, np.concatenate([big, mid]), rng)
    log(f"runs/params/tags: {time.perf_counter() - t0:.1f}s")
    keys = tuple(f"m{k}" for k in range(N_METRICS))
    gen_metrics(store, ids, keys, N_STEPS, rng)
    log(f"+ {n_runs * N_METRICS * N_STEPS:,} points: {time.perf_counter() - t0:.1f}s")
    gen_metrics(store, big, ("loss",), 10_000_000, rng, step_chunk=1_000_000)
    gen_metrics(store, mid, ("loss",), 100_000, rng, step_chunk=100_000)
    log(f"+ 20M long-history points: {time.perf_counter() - t0:.1f}s")
    return {"big": str(big[0]), "mid": [str(r) for r in mid], "gen_s": time.perf_counter() - t0}


def settle(store: MetricStore, log: Callable[[str], None]) -> float:
    """Merge parts (what background merges reach at rest) so timings are repeatable."""
    t0 = time.perf_counter()
    for t in ("runs", "params", "tags", "metrics", "metric_summary", "metric_rollup", "search_runs",
              "search_metrics", "search_params", "search_tags"):
        store.client.command(f"OPTIMIZE TABLE {store.db}.{t} FINAL")
    log(f"optimize: {time.perf_counter() - t0:.1f}s")
    return time.perf_counter() - t0


def timeit(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    p95 = ts[min(len(ts) - 1, int(round(0.95 * (len(ts) - 1))))]
    return {"p50_ms": round(statistics.median(ts), 1), "p95_ms": round(p95, 1)}


def cases(core: QueryCore, info: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    def a(ids_only: bool = False) -> Any:
        fn = core.search_run_ids if ids_only else core.search_runs
        return fn(["7"], "metrics.m1 > 0.5 AND params.p3 = 'v7'", ["metrics.m2 DESC"], 100,
                  "", "active")

    def b(ids_only: bool = False) -> Any:
        fn = core.search_run_ids if ids_only else core.search_runs
        return fn([], "", ["metrics.m0 DESC"], 100, "", "active")

    def c(ids_only: bool = False) -> Any:
        fn = core.search_run_ids if ids_only else core.search_runs
        return fn(["7"], "tags.t1 LIKE 'team-1%'", [], 100, "", "active")

    return {
        "a": a, "a_ids_only": lambda: a(True), "b": b, "b_ids_only": lambda: b(True),
        "c": c, "c_ids_only": lambda: c(True),
        "d": lambda: core.downsample([info["big"]], "loss", 1000),
        "d_cut": lambda: core.downsample([info["big"]], "loss", 1000, 123, 9_876_543),
        "d_raw": lambda: downsample_raw(core.store.client, core.store.db, [info["big"]], "loss",
                                        1000, 0, 9_999_999),
        "e": lambda: core.downsample(info["mid"], "loss", 500),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--data-dir", default="", help="keep data here (default: temp dir)")
    ap.add_argument("--no-optimize", action="store_true", help="time before merges settle")
    ap.add_argument("--reuse", action="store_true",
                    help="data already generated in --data-dir by the same --runs")
    args = ap.parse_args(argv)
    quiet = args.json
    log = (lambda m: print(m, file=sys.stderr)) if quiet else print
    tmp = args.data_dir or tempfile.mkdtemp(prefix="mf-qbench-")
    store = MetricStore(f"chdb://{os.path.abspath(tmp)}", "bench")
    store.ensure_schema()
    core = QueryCore(store, None)
    try:
        if args.reuse:
            info = {"big": str(run_ids(1, 2)[0]), "mid": [str(r) for r in run_ids(100, 3)],
                    "gen_s": 0.0}
            opt_s = 0.0
        else:
            info = generate(store, args.runs, log)
            opt_s = 0.0 if args.no_optimize else settle(store, log)
        results: dict[str, Any] = {}
        for name, fn in cases(core, info).items():
            results[name] = timeit(fn, args.repeat)
            if name in TARGETS_MS:
                results[name]["target_ms"] = TARGETS_MS[name]
                results[name]["met"] = results[name]["p50_ms"] <= TARGETS_MS[name]
            log(f"{name}: {results[name]}")
        a_runs, _ = cases(core, info)["a"]()
        out = {"runs": args.runs, "experiments": N_EXP, "backend": "chDB in-process "
               "(clickhouse-connect), QueryCore calls, no RPC", "cpus": os.cpu_count(),
               "generate_s": round(info["gen_s"], 1), "optimize_s": round(opt_s, 1),
               "repeat": args.repeat, "a_rows": len(a_runs), "results": results}
        print(json.dumps(out, indent=None if quiet else 2))
    finally:
        store.close()
        if not args.data_dir and not args.reuse:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
