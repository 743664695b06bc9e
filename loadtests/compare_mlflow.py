"""metricflow vs MLflow on the same workload, in one run.

    python loadtests/compare_mlflow.py --json

Starts an MLflow tracking server (SQLite backend, 127.0.0.1) and the embedded
metricflow server, runs the same three workloads against both and prints each
system's figures and the ratios:

- ingest: W worker processes log K keys per step for T seconds each; MLflow
  through MlflowClient.log_batch with 1,000 metrics per request (its maximum),
  metricflow through metricflow.Client. points/s counts acknowledged points only.
- search: N runs (5 metrics, 5 params, 1 tag) loaded into both; top 100 runs by
  a metric, and a filtered search (metric and param filter) with the same order.
  By default (--search-load bulk) the runs are written into each system's store
  through its own Python store layer before its server starts (untimed; see
  _bulk_load.py); the searches are timed through each server's client API after
  a warm-up.
- history: one metric of 100,000 points, read whole.

Ratios: ingest_ratio = metricflow points/s / MLflow points/s; the latency
ratios are MLflow median latency / metricflow median latency.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loadtests._compare_systems import (
    MetricflowSide,
    MlflowSide,
    ingest_worker,
    mlflow_store_uris,
    start_mlflow,
)

TARGETS = {"ingest_ratio": 50.0, "search_top100_ratio": 100.0, "history_ratio": 10.0}


def _say(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def _timed(fn: Any, repeat: int, warmup: bool = True, budget_s: float | None = None,
           min_repeat: int = 3) -> tuple[list[float], Any]:
    """Run fn up to `repeat` times (after one warm-up call); latencies in ms and the last result.

    With `budget_s`, stop early once at least `min_repeat` timed calls were made and
    the timed calls took `budget_s` in total (an MLflow search over 10,000 runs
    takes seconds per call).
    """
    result = fn() if warmup else None
    out: list[float] = []
    spent = 0.0
    for _ in range(repeat):
        if budget_s is not None and len(out) >= min_repeat and spent >= budget_s:
            break
        t = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t
        spent += dt
        out.append(dt * 1000)
    return out, result


def _lat(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"median_ms": round(statistics.median(s), 3), "min_ms": round(s[0], 3),
            "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3), "n": len(s)}


def run_ingest(system: str, uri: str, exp: str, args: argparse.Namespace) -> dict[str, Any]:
    """W spawned processes logging K keys per step for T seconds; acked points/s."""
    ctx = mp.get_context("spawn")
    q, go, start_v = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=ingest_worker, daemon=True,
                         args=(system, uri, exp, w, args.keys, args.ingest_seconds, q, go,
                               start_v))
             for w in range(args.workers)]
    for p in procs:
        p.start()
    results: list[Any] = []
    ready = 0
    while ready + len(results) < len(procs):  # every worker is ready (or failed early)
        m = q.get(timeout=300)
        if m == ("ready",):
            ready += 1
        else:
            results.append(m)
    start_v.value = time.time() + 0.2
    go.set()
    results += [q.get(timeout=args.ingest_seconds + 600) for _ in range(ready)]
    for p in procs:
        p.join(30)
    points = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    errors = [r[2] for r in results if r[2]]
    return {"points": points, "seconds": round(elapsed, 3),
            "points_per_s": round(points / elapsed, 1) if elapsed > 0 else 0.0,
            "errors": errors}


def run_side(side: Any, args: argparse.Namespace, tag: str,
             loaded: tuple[str, float] | None = None, prime_exp: str | None = None
             ) -> dict[str, Any]:
    """Search and history workloads on one system (ingest runs separately).

    `loaded` is (experiment id, seconds) of search runs bulk-loaded before the
    server started; without it the runs are created here through the client API.
    `prime_exp` (a small experiment) gets `args.prime` searches of both shapes
    first, so that every server worker process has run the search code once (MLflow
    serves with 4 worker processes; a cold one answered 5-10x slower).
    """
    out: dict[str, Any] = {}
    if loaded is not None:
        exp, out["load_runs_s"] = loaded[0], round(loaded[1], 3)
        out["load_method"] = "bulk"
    else:
        exp = side.experiment(f"compare-search-{tag}")
        t = time.perf_counter()
        with ThreadPoolExecutor(args.load_threads) as pool:
            list(pool.map(lambda i: side.load_run(exp, i), range(args.runs)))
        if isinstance(side, MetricflowSide):
            side.c.flush()
        out["load_runs_s"] = round(time.perf_counter() - t, 3)
        out["load_method"] = "api"
    if prime_exp is not None:
        for _ in range(args.prime):
            side.search(prime_exp, False)
            side.search(prime_exp, True)
    budget = args.search_budget_s
    ms, top = _timed(lambda: side.search(exp, False), args.repeat, budget_s=budget)
    out["search_top100"] = {**_lat(ms), "returned": len(top)}
    out["_top100_values"] = top
    ms, filt = _timed(lambda: side.search(exp, True), args.repeat, budget_s=budget)
    out["search_filtered"] = {**_lat(ms), "returned": len(filt)}
    out["_filtered_values"] = filt
    hexp = side.experiment(f"compare-history-{tag}")
    t = time.perf_counter()
    run_id = side.log_history(hexp, args.history_points)
    out["history_load_s"] = round(time.perf_counter() - t, 3)
    # No warm-up: an MLflow read of 100,000 points takes seconds, and a cold first
    # read only makes metricflow look worse.
    ms, n = _timed(lambda: side.read_history(run_id), args.history_repeat, warmup=False)
    out["history"] = {**_lat(ms), "points": n}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1] if __doc__ else None)
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    ap.add_argument("--workers", type=int, default=4, help="ingest worker processes (W)")
    ap.add_argument("--keys", type=int, default=100, help="keys per step (K)")
    ap.add_argument("--ingest-seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=10_000, help="runs loaded for search (N)")
    ap.add_argument("--search-load", choices=("bulk", "api"), default="bulk",
                    help="bulk: write the N runs into each store before its server starts "
                         "(untimed); api: create them through each client (slow)")
    ap.add_argument("--search-budget-s", type=float, default=30.0,
                    help="stop timing a search after this many seconds (at least 3 calls)")
    ap.add_argument("--prime", type=int, default=8,
                    help="untimed searches of a small experiment before timing, per shape")
    ap.add_argument("--history-points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20, help="timed repetitions of reads")
    ap.add_argument("--history-repeat", type=int, default=3,
                    help="timed full-history reads (MLflow takes seconds per read)")
    ap.add_argument("--load-threads", type=int, default=8)
    ap.add_argument("--mlflow-workers", type=int, default=None,
                    help="mlflow server --workers (default: MLflow's own default)")
    args = ap.parse_args(argv)

    import mlflow

    from loadtests._server import start_server

    t_all = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    tag = f"{int(time.time())}-{os.getpid()}"
    mf_dir = tempfile.mkdtemp(prefix="metricflow-bench-")
    ml_dir = tempfile.mkdtemp(prefix="mlflow-bench-")
    loaded: dict[str, tuple[str, float]] = {}
    if args.search_load == "bulk":
        from loadtests._bulk_load import load_metricflow_in_child, load_mlflow

        _say(f"bulk-loading {args.runs:,} search runs into each store (untimed)")
        t = time.perf_counter()
        ml_exp = load_mlflow(*mlflow_store_uris(ml_dir), f"compare-search-{tag}", args.runs)
        loaded["mlflow"] = (ml_exp, time.perf_counter() - t)
        loaded["metricflow"] = load_metricflow_in_child(mf_dir, f"compare-search-{tag}",
                                                        args.runs)
    _say("starting MLflow and metricflow servers")
    mf_srv = start_server(mf_dir)
    try:
        mlf_srv = start_mlflow(args.mlflow_workers, workdir=ml_dir)
    except BaseException:
        mf_srv.stop()
        raise
    result: dict[str, Any] = {}
    try:
        mfs, mls = MetricflowSide(mf_srv.uri), MlflowSide(mlf_srv.uri)
        figures: dict[str, dict[str, Any]] = {}
        for side in (mfs, mls):
            _say(f"{side.name}: ingest ({args.workers} workers x {args.keys} keys/step, "
                 f"{args.ingest_seconds:.0f} s)")
            exp = side.experiment(f"compare-ingest-{tag}")
            cpu0 = mf_srv.cpu_s() if side is mfs else None
            ingest = run_ingest(side.name, side.uri, exp, args)
            if cpu0 is not None:
                ingest["server_cpu_s"] = round(mf_srv.cpu_s() - cpu0, 2)
            _say(f"{side.name}: {ingest['points_per_s']:,.0f} points/s; search and history")
            figures[side.name] = {"ingest": ingest, **run_side(
                side, args, tag, loaded.get(side.name), prime_exp=exp)}
        mfs.close()
        mf, ml = figures["metricflow"], figures["mlflow"]
        checks = {
            "top100_same_values": mf.pop("_top100_values") == ml.pop("_top100_values"),
            "filtered_same_values": mf.pop("_filtered_values") == ml.pop("_filtered_values"),
            "history_points_equal": mf["history"]["points"] == ml["history"]["points"]
            == args.history_points,
        }
        ratios = {
            "ingest_ratio": round(mf["ingest"]["points_per_s"]
                                  / max(ml["ingest"]["points_per_s"], 1e-9), 2),
            "search_top100_ratio": round(ml["search_top100"]["median_ms"]
                                         / mf["search_top100"]["median_ms"], 2),
            "search_filtered_ratio": round(ml["search_filtered"]["median_ms"]
                                           / mf["search_filtered"]["median_ms"], 2),
            "history_ratio": round(ml["history"]["median_ms"] / mf["history"]["median_ms"], 2),
        }
        result = {
            "workload": {"workers": args.workers, "keys_per_step": args.keys,
                         "ingest_seconds": args.ingest_seconds, "search_runs": args.runs,
                         "history_points": args.history_points, "repeat": args.repeat,
                         "history_repeat": args.history_repeat,
                         "mlflow_batch": 1000, "search_load": args.search_load,
                         "search_budget_s": args.search_budget_s, "prime": args.prime},
            "search_top100_ms": {"metricflow": mf["search_top100"]["median_ms"],
                                 "mlflow": ml["search_top100"]["median_ms"]},
            "versions": {"mlflow": mlflow.__version__, "python": sys.version.split()[0]},
            "metricflow": mf, "mlflow": ml, **ratios,
            "targets": TARGETS,
            "meets_targets": {k: ratios[k] >= v for k, v in TARGETS.items()},
            "checks": checks,
            "host": {"cpus": os.cpu_count(), "loadavg_start": load_start,
                     "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
            "total_seconds": round(time.perf_counter() - t_all, 1),
        }
    finally:
        mf_srv.stop()
        mlf_srv.stop()
    for d in (mf_dir, ml_dir):  # kept on failure: the MLflow server log is in ml_dir
        shutil.rmtree(d, ignore_errors=True)
    if not args.json:
        for k in ("ingest_ratio", "search_top100_ratio", "search_filtered_ratio",
                  "history_ratio"):
            tgt = TARGETS.get(k)
            print(f"{k:24s} {result[k]:>10.2f}" + (f"   (target >= {tgt:g})" if tgt else ""))
    print(json.dumps(result, indent=2))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
