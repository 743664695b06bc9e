"""The runs table's server side: /ui-api/v1 windows, keys and experiment counts over N runs.

Usage: python loadtests/ui_window_bench.py --data-dir DIR --runs 1000000 --json
       (first run generates DIR; later runs with the same --runs reuse it)

Data: query_bench.py's runs (100 experiments, 10 params, 5 tags; metrics m0..m9, one
step each instead of ten: a window reads metric summaries, not points) plus one run
with 10,000 metric keys in experiment 0 (the column picker's case). Times RunWindow
calls in-process on chDB (what POST /ui-api/v1/runs/window runs, without HTTP), as
median wall and CPU ms over --repeat runs after a warm-up. CPU time is reported
because this 2-core machine is often shared: wall time then measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from metricflow.entities import DecodedMetrics, RunInfo
from metricflow.query._core import QueryCore
from metricflow.query._window import _COUNTS, RunWindow, parse_columns
from metricflow.store import MetricStore, build_insert

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loadtests.query_bench import gen_metrics, gen_runs, run_ids

WIDE_RUN = "feed" * 8
COLUMNS = ["metrics.m0", "metrics.m1", "params.p0", "tags.t0"]


def generate(store: MetricStore, n: int, log: Callable[[str], None]) -> None:
    rng = np.random.default_rng(42)
    t0 = time.perf_counter()
    ids = run_ids(n, 1)
    for i in range(0, n, 200_000):
        gen_runs(store, ids[i:i + 200_000], rng)
    gen_metrics(store, ids, tuple(f"m{k}" for k in range(10)), 1, rng)
    store.insert_runs([RunInfo(WIDE_RUN, "0", "wide", "u", "FINISHED", 1, 2)], [1])
    keys = tuple(f"k{i:05d}" for i in range(10_000))
    store.insert_metrics(build_insert([DecodedMetrics(
        WIDE_RUN, keys, np.arange(10_000, dtype=np.int32), np.zeros(10_000, np.int64),
        np.zeros(10_000, np.int64), rng.random(10_000))]))
    for t in ("runs", "params", "tags", "metric_summary", "search_runs", "search_metrics",
              "search_params", "search_tags"):
        store.client.command(f"OPTIMIZE TABLE {store.db}.{t} FINAL")
    log(f"generated {n:,} runs in {time.perf_counter() - t0:.0f} s")


def timeit(fn: Callable[[], Any], repeat: int, cold: bool) -> dict[str, float]:
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        if cold:
            _COUNTS._d.clear()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"wall_p50_ms": round(statistics.median(wall), 1),
            "wall_min_ms": round(min(wall), 1),
            "cpu_p50_ms": round(statistics.median(cpu), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    fresh = not os.path.exists(os.path.join(args.data_dir, "generated"))
    store = MetricStore(f"chdb://{os.path.abspath(args.data_dir)}", "bench")
    store.ensure_schema()
    try:
        if fresh:
            generate(store, args.runs, log)
            with open(os.path.join(args.data_dir, "generated"), "w") as f:
                f.write(str(args.runs))
        core = QueryCore(store, None)
        w = RunWindow(store.db, store.client, lambda: store.client)
        cols = parse_columns(COLUMNS)
        every, one = core.scope([], "active"), core.scope(["5"], "active")
        half = args.runs // 2
        cases: dict[str, tuple[Callable[[], Any], bool]] = {
            "first_rows_all": (lambda: w.window(every, "", "", 0, 100, cols, top_level=True), True),
            "deep_half_start_time": (lambda: w.window(every, "", "", half, 100, cols,
                                                      with_total=False, top_level=True), False),
            "deep_half_metric": (lambda: w.window(every, "", "metrics.m0 ASC", half, 100, cols,
                                                  with_total=False, top_level=True), False),
            "deep_half_param": (lambda: w.window(every, "", "params.p0 DESC", half, 100, cols,
                                                 with_total=False, top_level=True), False),
            "requery_sort_metric": (lambda: w.window(every, "", "metrics.m1 DESC", 0, 100, cols,
                                                     top_level=True), True),
            "requery_filter_all": (lambda: w.window(
                every, "metrics.m0 < 0.5 AND params.p1 = 'v3'", "metrics.m1 DESC", 0, 100,
                cols, top_level=True), True),
            "requery_filter_one_experiment": (lambda: w.window(
                one, "metrics.m0 < 0.5 AND params.p1 = 'v3'", "metrics.m1 DESC", 0, 100,
                cols, top_level=True), True),
            "keys_all": (lambda: w.keys(every, ("metrics", "params", "tags"), "", 100_000), False),
            "keys_10k_metric_keys": (lambda: w.keys(core.scope(["0"], "active"), ("metrics",),
                                                    "", 100_000), False),
            "experiment_counts": (lambda: w.experiment_stats(every), False),
        }
        results = {}
        for name, (fn, cold) in cases.items():
            results[name] = timeit(fn, args.repeat, cold)
            log(f"{name}: {results[name]}")
        load = os.getloadavg()[0]
        out = {"runs": args.runs, "backend": "chDB in-process, RunWindow calls, no HTTP",
               "cpus": os.cpu_count(), "load_avg_1m": round(load, 1), "repeat": args.repeat,
               "page": 100, "columns": COLUMNS, "results": results}
        print(json.dumps(out, indent=None if args.json else 2))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
