"""Sweeps, MLflow REST writes and search: metricflow vs MLflow and FastTrackML, in one run.

    python loadtests/sweep_bench.py --json --fasttrackml /path/to/fml

Systems (side by side, one after the other, in one run):
- `metricflow`: the embedded server through metricflow.Client (gRPC);
- `metricflow_rest`: the same server through the official `mlflow` client (its MLflow REST API);
- `mlflow`: MLflow's own server (SQLite backend), through the `mlflow` client;
- `fasttrackml`: FastTrackML's `fml` (SQLite) through the `mlflow` client. Only with
  `--fasttrackml PATH` (a built binary; build script: ../shared/peers/fasttrackml/build.sh).
  Nothing is downloaded.

Workloads:
- sweep: W worker processes (default 8) each run R short runs (default 40): create, log
  10 params (one call) and 5 tags (one call), 20 steps x 5 metrics, end FINISHED.
  metricflow's client buffers the steps and set_terminated flushes them; MLflow clients
  send the run's 100 points in one log_batch (with --rest-log-per-step: one per step,
  what `mlflow.log_metrics` at each step sends). So every system makes 5 calls per run.
  `sweep_runs_per_sec` = runs finished / wall time from the common start to the last
  worker's end.
  `create_run_p50_ms`: median create_run latency seen by the workers.
- rest log_batch: 4 worker processes, 1,000 metrics per request (MLflow's maximum), for
  T seconds; points/s of acknowledged requests (compare_mlflow.py's ingest worker).
- search at 10k runs (bulk-loaded into each system's own store before its server starts,
  untimed): top 100 by a metric; a metric + param filter sorted by a metric; a tag filter.
  Median latency through the official `mlflow` client (metricflow also natively).
- the same at 1,000,000 runs for metricflow and FastTrackML (skip with --skip-1m).

Ratios (`*_vs_best_peer`): metricflow over the best of MLflow and FastTrackML (for
latencies: the peer's median / metricflow's median).

Ceilings: the sweep workers run on the same cores as the server, so each system's
`client_cpu_ms_per_run` (the workers' own CPU over their runs, `time.process_time`)
bounds what any server could give them, assuming a run's client CPU does not depend on
the server: `ceiling_runs_per_sec` = cores x 1000 / client_cpu_ms_per_run.
`sweep_native_ceiling_vs_best_peer` and `sweep_rest_ceiling_vs_best_peer` put that bound
over the best peer's measured rate: the highest ratio this machine allows with these
clients, even with a server that cost nothing. metricflow's own server CPU a run is
`sweep_server_cpu_ms_per_run` (the embedded server process, whole sweep).
Likewise each search reports the client's own CPU for it (`client_cpu_ms`, median), and
`search_10k_ceiling_vs_best_peer` = the best peer's median / that CPU through the mlflow
client: no server answers a search faster than its client can read the answer.
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
from typing import Any

from loadtests._compare_systems import mlflow_store_uris, start_mlflow

QUERIES = {
    "top100": ("", ["metrics.s0 DESC"]),
    "filtered": ("metrics.s1 > 0.5 AND params.opt = 'adam'", ["metrics.s0 DESC"]),
    "tag": ("tags.team = 't1'", []),
}
TARGETS = {"sweep_native_vs_best_peer": 10.0, "sweep_rest_vs_best_peer": 5.0,
           "rest_log_batch_vs_best_peer": 3.0, "search_10k_vs_best_peer": 2.0,
           "search_1m_vs_fasttrackml": 20.0}
PEERS = ("mlflow", "fasttrackml")


def _say(msg: str) -> None:
    print(f"[sweep_bench] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ sweep worker
def _sweep_native(uri: str, exp: str, worker: int, runs: int, steps: int,
                  wait_start: Any, per_step: bool = False) -> tuple[int, list[float], float]:
    import metricflow as mf

    c = mf.Client(uri)
    try:
        start_at = wait_start()
        del start_at
        cpu0 = time.process_time()
        creates: list[float] = []
        for r in range(runs):
            t = time.perf_counter()
            rid = c.create_run(exp, run_name=f"sweep-{worker}-{r}").info.run_id
            creates.append((time.perf_counter() - t) * 1000)
            c.log_params(rid, _params(worker, r))
            c.set_tags(rid, _tags(worker, r))
            for s in range(steps):
                c.log_metrics(rid, _metrics(worker, r, s), step=s)
            c.set_terminated(rid, "FINISHED")
        return runs, creates, time.process_time() - cpu0
    finally:
        c.close()


def _sweep_mlflow(uri: str, exp: str, worker: int, runs: int, steps: int,
                  wait_start: Any, per_step: bool = False) -> tuple[int, list[float], float]:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    wait_start()
    cpu0 = time.process_time()
    creates: list[float] = []
    for r in range(runs):
        t = time.perf_counter()
        rid = c.create_run(exp, run_name=f"sweep-{worker}-{r}").info.run_id
        creates.append((time.perf_counter() - t) * 1000)
        c.log_batch(rid, params=[Param(k, v) for k, v in _params(worker, r).items()])
        c.log_batch(rid, tags=[RunTag(k, v) for k, v in _tags(worker, r).items()])
        ts = int(time.time() * 1000)
        points = [Metric(k, v, ts, s) for s in range(steps)
                  for k, v in _metrics(worker, r, s).items()]
        if per_step:  # what `mlflow.log_metrics` at each step sends
            for lo in range(0, len(points), len(points) // steps):
                c.log_batch(rid, metrics=points[lo:lo + len(points) // steps])
        else:  # the run's points in one request, as metricflow's client sends them
            c.log_batch(rid, metrics=points)
        c.set_terminated(rid, "FINISHED")
    return runs, creates, time.process_time() - cpu0


def _params(worker: int, r: int) -> dict[str, str]:
    return {f"p{k}": str((worker * 1000 + r) * 10 + k) for k in range(10)}


def _tags(worker: int, r: int) -> dict[str, str]:
    return {f"t{k}": f"w{worker}-r{r}-{k}" for k in range(5)}


def _metrics(worker: int, r: int, s: int) -> dict[str, float]:
    return {f"m{k}": ((worker * 31 + r * 7 + s * 13 + k) % 997) / 997.0 for k in range(5)}


def sweep_worker(kind: str, uri: str, exp: str, worker: int, runs: int, steps: int,
                 per_step: bool, q: Any, go: Any, start_v: Any) -> None:
    """One sweep worker (spawned): ("ready",), then (runs, end time, create ms, error, the
    worker's own CPU seconds over its runs)."""
    from loadtests._compare_systems import _ready

    sys.stdout = open(os.devnull, "w")  # mlflow prints a 'View run' line per ended run
    try:
        fn = _sweep_native if kind == "native" else _sweep_mlflow
        n, creates, cpu = fn(uri, exp, worker, runs, steps, lambda: _ready(q, go, start_v),
                             per_step)
        q.put((n, time.time(), creates, "", cpu))
    except Exception as e:  # reported by the parent
        q.put((0, time.time(), [], f"{type(e).__name__}: {e}", 0.0))


def run_sweep(kind: str, uri: str, exp: str, args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q, go, start_v = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=sweep_worker, daemon=True,
                         args=(kind, uri, exp, w, args.sweep_runs, args.sweep_steps,
                               args.rest_log_per_step, q, go, start_v))
             for w in range(args.sweep_workers)]
    for p in procs:
        p.start()
    results: list[Any] = []
    ready = 0
    while ready + len(results) < len(procs):
        m = q.get(timeout=300)
        if m == ("ready",):
            ready += 1
        else:
            results.append(m)
    start = time.time() + 0.2
    start_v.value = start
    go.set()
    results += [q.get(timeout=1800) for _ in range(ready)]
    for p in procs:
        p.join(30)
    runs = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results) - start
    creates = sorted(x for r in results for x in r[2])
    # The clients' own CPU: the workers share the machine's cores with the server, so
    # if a run's client CPU does not depend on the server, no server can make them
    # finish faster than cores / (client CPU a run). Not given when a worker failed
    # (fewer workers, less contention).
    errors = [r[3] for r in results if r[3]]
    client_ms = 1000 * sum(r[4] for r in results) / runs if runs and not errors else None
    cores = len(os.sched_getaffinity(0))
    return {"runs": runs, "seconds": round(elapsed, 3),
            "client_cpu_ms_per_run": round(client_ms, 2) if client_ms else None,
            "ceiling_runs_per_sec": round(cores * 1000 / client_ms, 1) if client_ms else None,
            "runs_per_sec": round(runs / elapsed, 2) if elapsed > 0 else 0.0,
            "create_run_p50_ms": round(statistics.median(creates), 2) if creates else None,
            "create_run_p95_ms": round(creates[int(0.95 * (len(creates) - 1))], 2)
            if creates else None,
            "errors": errors}


def run_log_batch(uri: str, exp: str, args: argparse.Namespace) -> dict[str, Any]:
    from loadtests.compare_mlflow import run_ingest

    ns = argparse.Namespace(workers=args.rest_workers, keys=100,
                            ingest_seconds=args.rest_seconds)
    return run_ingest("mlflow", uri, exp, ns)  # MlflowClient.log_batch, 1,000 per request


# ----------------------------------------------------------------------- search
def _search_fn(kind: str, uri: str, exp: str, query: str) -> Any:
    flt, order = QUERIES[query]
    if kind == "native":
        import metricflow as mf

        c = mf.Client(uri)
        return lambda: len(c.search_runs([exp], flt, order, 100)[0])
    from mlflow.tracking import MlflowClient

    mc = MlflowClient(tracking_uri=uri)
    return lambda: len(mc.search_runs([exp], filter_string=flt, order_by=order, max_results=100))


def time_searches(kind: str, uri: str, exp: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in QUERIES:
        fn = _search_fn(kind, uri, exp, q)
        n = fn()  # warm-up
        ms: list[float] = []
        cpu: list[float] = []  # the client's own CPU (this process) per call
        spent = 0.0
        for _ in range(args.search_repeat):
            if len(ms) >= 3 and spent >= args.search_budget_s:
                break
            t, c = time.perf_counter(), time.process_time()
            fn()
            dt = time.perf_counter() - t
            cpu.append((time.process_time() - c) * 1000)
            spent += dt
            ms.append(dt * 1000)
        out[q] = {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
                  "client_cpu_ms": round(statistics.median(cpu), 2),
                  "n": len(ms), "returned": n}
    return out


# ------------------------------------------------------------------------- main
def _cached_load(cache: str | None, name: str, load: Any) -> tuple[str, str, float, bool]:
    """(data dir, experiment id, load seconds, reused) of a bulk-loaded store.

    With --data-cache the loaded store is kept and reused by later runs (a copy of it is
    served, so the cached one stays as loaded)."""
    if cache:
        src = os.path.join(cache, name)
        meta = os.path.join(cache, name + ".json")
        if not os.path.exists(meta):
            shutil.rmtree(src, ignore_errors=True)
            t = time.perf_counter()
            exp = load(src)
            with open(meta, "w") as f:
                json.dump({"experiment": exp, "seconds": time.perf_counter() - t}, f)
        with open(meta) as f:
            m = json.load(f)
        work = tempfile.mkdtemp(prefix=f"sweep-bench-{name}-")
        shutil.rmtree(work)
        shutil.copytree(src, work, symlinks=True)
        return work, m["experiment"], m["seconds"], True
    work = tempfile.mkdtemp(prefix=f"sweep-bench-{name}-")
    t = time.perf_counter()
    exp = load(work)
    return work, exp, time.perf_counter() - t, False


def _ratio(num: float | None, den: float | None) -> float | None:
    if not num or not den:
        return None
    return round(num / den, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1] if __doc__ else None)
    ap.add_argument("--json", action="store_true", help="print one JSON line only")
    ap.add_argument("--fasttrackml", metavar="PATH", help="FastTrackML `fml` binary")
    ap.add_argument("--systems", default="metricflow,metricflow_rest,mlflow,fasttrackml",
                    help="comma-separated subset of systems")
    ap.add_argument("--parts", default="sweep,rest,search10k,search1m",
                    help="comma-separated subset of sweep,rest,search10k,search1m")
    ap.add_argument("--skip-1m", action="store_true", help="no search at 1,000,000 runs")
    ap.add_argument("--sweep-workers", type=int, default=8)
    ap.add_argument("--sweep-runs", type=int, default=40, help="runs per sweep worker")
    ap.add_argument("--sweep-steps", type=int, default=20)
    ap.add_argument("--rest-log-per-step", action="store_true",
                    help="MLflow clients send one log_batch per step (20 requests per run) "
                         "instead of one with the run's 100 points")
    ap.add_argument("--rest-workers", type=int, default=4)
    ap.add_argument("--rest-seconds", type=float, default=10.0)
    ap.add_argument("--runs-10k", type=int, default=10_000)
    ap.add_argument("--runs-1m", type=int, default=1_000_000)
    ap.add_argument("--search-repeat", type=int, default=20)
    ap.add_argument("--search-budget-s", type=float, default=20.0,
                    help="stop timing a query after this many seconds (at least 3 calls)")
    ap.add_argument("--mlflow-workers", type=int, default=2,
                    help="mlflow server --workers (the issue's figures used 2)")
    ap.add_argument("--data-cache", metavar="DIR",
                    help="keep bulk-loaded stores here and reuse them in later runs")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra argument for the metricflow server (repeatable)")
    args = ap.parse_args(argv)

    import mlflow

    from loadtests._bulk_load import load_metricflow_in_child, load_mlflow
    from loadtests._fasttrackml import load_fasttrackml, start_fasttrackml
    from loadtests._server import start_server

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.skip_1m:
        parts.discard("search1m")
    notes: list[str] = []
    if "fasttrackml" in systems and not args.fasttrackml:
        systems.remove("fasttrackml")
        msg = "FastTrackML skipped: no --fasttrackml PATH given (build it with " \
              "../shared/peers/fasttrackml/build.sh OUT_DIR, then pass OUT_DIR/fml)"
        _say(msg)
        notes.append(msg)
    if args.fasttrackml and not os.access(args.fasttrackml, os.X_OK):
        ap.error(f"--fasttrackml: {args.fasttrackml!r} is not an executable file")
    if args.data_cache:
        os.makedirs(args.data_cache, exist_ok=True)
    t_all = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    n10 = args.runs_10k
    want_mf = bool({"metricflow", "metricflow_rest"} & set(systems))
    exp_name = f"search-{n10}"

    def mf_load(n: int) -> Any:
        return lambda d: load_metricflow_in_child(d, f"search-{n}", n)[0]

    def ml_load(d: str) -> str:
        os.makedirs(d, exist_ok=True)
        return load_mlflow(*mlflow_store_uris(d), exp_name, n10)

    def fml_load(n: int) -> Any:
        return lambda d: load_fasttrackml(args.fasttrackml, d, f"search-{n}", n)

    search10 = "search10k" in parts
    result: dict[str, Any] = {"systems": systems, "parts": sorted(parts), "notes": notes}
    figures: dict[str, dict[str, Any]] = {s: {} for s in systems}
    loads: dict[str, Any] = {}
    servers: list[Any] = []
    dirs: list[str] = []
    try:
        # --------------------------------------------------- 10k stores and servers
        uris: dict[str, str] = {}
        exps: dict[str, str] = {}
        if want_mf:
            if search10:
                _say(f"metricflow: bulk-loading {n10:,} runs")
                d, exp, s, reused = _cached_load(args.data_cache, f"mf-{n10}", mf_load(n10))
                loads["metricflow_10k"] = {"seconds": round(s, 1), "reused": reused}
            else:
                d, exp = tempfile.mkdtemp(prefix="sweep-bench-mf-"), ""
            dirs.append(d)
            srv = start_server(d, args.server_arg)
            servers.append(srv)
            uris["metricflow"] = srv.uri
            uris["metricflow_rest"] = f"http://127.0.0.1:{srv.http_port}"
            exps["metricflow"] = exps["metricflow_rest"] = exp
            mf_srv = srv
        if "mlflow" in systems:
            if search10:
                _say(f"mlflow: bulk-loading {n10:,} runs")
                d, exp, s, reused = _cached_load(args.data_cache, f"mlflow-{n10}", ml_load)
                loads["mlflow_10k"] = {"seconds": round(s, 1), "reused": reused}
            else:
                d, exp = tempfile.mkdtemp(prefix="sweep-bench-mlflow-"), ""
            dirs.append(d)
            srv = start_mlflow(args.mlflow_workers, workdir=d)
            servers.append(srv)
            uris["mlflow"], exps["mlflow"] = srv.uri, exp
        if "fasttrackml" in systems:
            if search10:
                _say(f"fasttrackml: bulk-loading {n10:,} runs")
                d, exp, s, reused = _cached_load(args.data_cache, f"fml-{n10}", fml_load(n10))
                loads["fasttrackml_10k"] = {"seconds": round(s, 1), "reused": reused}
            else:
                d, exp = tempfile.mkdtemp(prefix="sweep-bench-fml-"), ""
            dirs.append(d)
            srv = start_fasttrackml(args.fasttrackml, d)
            servers.append(srv)
            uris["fasttrackml"], exps["fasttrackml"] = srv.uri, exp

        tag = f"{int(time.time())}-{os.getpid()}"
        for system in systems:
            kind = "native" if system == "metricflow" else "rest"
            fig = figures[system]
            if "sweep" in parts:
                exp = _experiment(system, uris[system], f"sweep-{system}-{tag}")
                _say(f"{system}: sweep ({args.sweep_workers} workers x {args.sweep_runs} runs)")
                cpu0 = mf_srv.cpu_s() if system.startswith("metricflow") else None
                fig["sweep"] = run_sweep(kind, uris[system], exp, args)
                if cpu0 is not None:
                    fig["sweep"]["server_cpu_s"] = round(mf_srv.cpu_s() - cpu0, 2)
                    if fig["sweep"]["runs"]:
                        fig["sweep"]["server_cpu_ms_per_run"] = round(
                            1000 * fig["sweep"]["server_cpu_s"] / fig["sweep"]["runs"], 2)
                _say(f"{system}: {fig['sweep']['runs_per_sec']} runs/s")
            if "rest" in parts and system != "metricflow":
                exp = _experiment(system, uris[system], f"rest-{system}-{tag}")
                _say(f"{system}: REST log_batch ({args.rest_workers} workers)")
                fig["rest_log_batch"] = run_log_batch(uris[system], exp, args)
                _say(f"{system}: {fig['rest_log_batch']['points_per_s']:,.0f} points/s")
            if search10:
                _say(f"{system}: search at {n10:,} runs")
                fig["search_10k"] = time_searches(kind, uris[system], exps[system], args)
        for srv in servers:
            srv.stop()
        servers.clear()

        # --------------------------------------------------------- 1M runs
        n1 = args.runs_1m
        if "search1m" in parts:
            for system in ("metricflow", "fasttrackml"):
                if system not in systems and not (system == "metricflow" and want_mf):
                    continue
                _say(f"{system}: bulk-loading {n1:,} runs (untimed)")
                load = mf_load(n1) if system == "metricflow" else fml_load(n1)
                d, exp, s, reused = _cached_load(args.data_cache, f"{system[:3]}-{n1}", load)
                loads[f"{system}_1m"] = {"seconds": round(s, 1), "reused": reused}
                dirs.append(d)
                if system == "metricflow":
                    srv = start_server(d, args.server_arg)
                    servers.append(srv)
                    sides = {"metricflow": ("native", srv.uri),
                             "metricflow_rest": ("rest", f"http://127.0.0.1:{srv.http_port}")}
                else:
                    srv = start_fasttrackml(args.fasttrackml, d)
                    servers.append(srv)
                    sides = {"fasttrackml": ("rest", srv.uri)}
                for name, (kind, uri) in sides.items():
                    if name in figures:
                        _say(f"{name}: search at {n1:,} runs")
                        figures[name]["search_1m"] = time_searches(kind, uri, exp, args)
                srv.stop()
                servers.remove(srv)
    finally:
        for srv in servers:
            srv.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

    result.update(_summary(figures))
    result.update({
        "figures": figures, "loads": loads, "targets": TARGETS,
        "workload": {"sweep_workers": args.sweep_workers, "sweep_runs": args.sweep_runs,
                     "sweep_steps": args.sweep_steps,
                     "rest_log_per_step": args.rest_log_per_step, "params": 10, "tags": 5,
                     "keys": 5,
                     "rest_workers": args.rest_workers, "rest_seconds": args.rest_seconds,
                     "rest_metrics_per_request": 1000, "runs_10k": n10,
                     "runs_1m": args.runs_1m,
                     "mlflow_workers": args.mlflow_workers},
        "versions": {"mlflow": mlflow.__version__, "python": sys.version.split()[0],
                     "fasttrackml": _fml_version(args.fasttrackml)},
        "host": {"cpus": os.cpu_count(), "loadavg_start": load_start,
                 "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - t_all, 1),
    })
    if not args.json:
        for k in TARGETS:
            print(f"{k:30s} {json.dumps(result.get(k))}   (target >= {TARGETS[k]:g})")
    print(json.dumps(result))
    return 0


def _experiment(system: str, uri: str, name: str) -> str:
    if system == "metricflow":
        import metricflow as mf

        c = mf.Client(uri)
        try:
            return c.get_or_create_experiment(name)
        finally:
            c.close()
    from mlflow.tracking import MlflowClient

    return str(MlflowClient(tracking_uri=uri).create_experiment(name))


def _fml_version(path: str | None) -> str | None:
    if not path:
        return None
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip().split()[-1] if out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def _summary(fig: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's top-level keys from the per-system figures."""
    def get(system: str, *path: str) -> Any:
        cur: Any = fig.get(system, {})
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return cur

    out: dict[str, Any] = {}
    out["sweep_runs_per_sec"] = {s: get(s, "sweep", "runs_per_sec") for s in fig
                                 if get(s, "sweep") is not None}
    out["rest_log_batch_points_per_sec"] = {s: get(s, "rest_log_batch", "points_per_s")
                                            for s in fig if get(s, "rest_log_batch")}
    out["create_run_p50_ms"] = {s: get(s, "sweep", "create_run_p50_ms") for s in fig
                                if get(s, "sweep") is not None}
    for scale in ("10k", "1m"):
        out[f"search_{scale}_ms"] = {s: {q: get(s, f"search_{scale}", q, "median_ms")
                                         for q in QUERIES}
                                     for s in fig if get(s, f"search_{scale}")}
    peers = [p for p in PEERS if p in fig]

    def best_rate(path: tuple[str, ...]) -> float | None:
        vals = [get(p, *path) for p in peers]
        vals = [v for v in vals if v]
        return max(vals) if vals else None

    sw = best_rate(("sweep", "runs_per_sec"))
    out["sweep_native_vs_best_peer"] = _ratio(get("metricflow", "sweep", "runs_per_sec"), sw)
    out["sweep_rest_vs_best_peer"] = _ratio(get("metricflow_rest", "sweep", "runs_per_sec"), sw)
    # What these clients allow at best on this machine, with a server that costs nothing.
    out["sweep_client_cpu_ms_per_run"] = {s: get(s, "sweep", "client_cpu_ms_per_run")
                                          for s in fig if get(s, "sweep") is not None}
    out["sweep_server_cpu_ms_per_run"] = {s: get(s, "sweep", "server_cpu_ms_per_run")
                                          for s in fig if get(s, "sweep", "server_cpu_ms_per_run")}
    out["sweep_native_ceiling_vs_best_peer"] = _ratio(
        get("metricflow", "sweep", "ceiling_runs_per_sec"), sw)
    out["sweep_rest_ceiling_vs_best_peer"] = _ratio(
        get("metricflow_rest", "sweep", "ceiling_runs_per_sec"), sw)
    out["rest_log_batch_vs_best_peer"] = _ratio(
        get("metricflow_rest", "rest_log_batch", "points_per_s"),
        best_rate(("rest_log_batch", "points_per_s")))
    s10: dict[str, Any] = {}
    s10n: dict[str, Any] = {}
    s10c: dict[str, Any] = {}
    for q in QUERIES:
        lat = [get(p, "search_10k", q, "median_ms") for p in peers]
        lat = [v for v in lat if v]
        best = min(lat) if lat else None
        s10[q] = _ratio(best, get("metricflow_rest", "search_10k", q, "median_ms"))
        s10n[q] = _ratio(best, get("metricflow", "search_10k", q, "median_ms"))
        # a search through the client cannot take less than the client's own CPU for it
        s10c[q] = _ratio(best, get("metricflow_rest", "search_10k", q, "client_cpu_ms"))
    out["search_10k_vs_best_peer"] = s10
    out["search_10k_ceiling_vs_best_peer"] = s10c
    out["search_10k_native_vs_best_peer"] = s10n
    out["search_1m_vs_fasttrackml"] = {
        q: _ratio(get("fasttrackml", "search_1m", q, "median_ms"),
                  get("metricflow_rest", "search_1m", q, "median_ms")) for q in QUERIES}
    out["search_1m_native_vs_fasttrackml"] = {
        q: _ratio(get("fasttrackml", "search_1m", q, "median_ms"),
                  get("metricflow", "search_1m", q, "median_ms")) for q in QUERIES}
    return out


if __name__ == "__main__":
    sys.exit(main())
