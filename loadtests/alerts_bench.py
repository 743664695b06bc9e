"""Alerts benchmark: the embedded ingest benchmark's load with 1,000 active rules, then
the same through Kafka with the `metricflow alerts` role.

    python loadtests/alerts_bench.py --json
    python loadtests/alerts_bench.py --points-per-worker 200000 --repeats 1 --skip-kafka --json

Per mode:
- ingest_slowdown_pct: points/s of the load (8 workers x 100 keys, as
  loadtests/ingest_bench.py: from the first log call until every point is acked, plus
  the probe client's small flushed batches on both sides) with no rules against the
  same with `--rules` active rules (threshold, NaN/Inf, relative
  change, stalled, FAILED; none fires on the load's values in [0, 1)). Runs alternate
  (no rules, rules, no rules, rules, ...) and each side keeps its best, so a burst of
  load from another process on the machine does not decide the figure.
- fire_latency_p99_ms: while the load runs, a probe client logs a breaching point
  into its own run; from the moment the server acked it (flush returned) to the
  moment a local HTTP receiver got the signed alert.firing webhook; p99 of up to
  `--probes` per run, taken while the load runs (a short load ends after fewer: the
  printed `probes` says how many).
- stalled_detect_s: a run logs one point and stops; a stalled rule with T =
  `--stalled-s` fires; from the point's ack to the webhook's receipt (target T + <= 2 s).

Kafka mode: one `metricflow writer` (chDB, --serve-query: the API for rules), one
`metricflow ingest` (the workers' target), and one `metricflow alerts` process (its own
consumer group on the topic); the baseline runs without the alerts process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests.ingest_bench import _proc_stats, _start_role, _worker  # after the path


class Receiver:
    """A local webhook receiver: records (receipt time, payload) of every POST."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                t = time.perf_counter()
                with outer.cond:
                    outer.got.append((t, json.loads(body)))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, pred: Any, timeout: float) -> tuple[float, dict[str, Any]] | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, j in self.got:
                    if pred(j):
                        return t, j
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()


def _api(port: int, path: str, body: Any) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _rules(n: int, keys: int, stalled_s: float) -> list[dict[str, Any]]:
    """`n` rules over the load's keys; none fires on values in [0, 1)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        key = f"metric_{i % keys:03d}"
        kind = i % 20
        if kind < 12:
            cond: dict[str, Any] = {"type": "threshold", "metric": key,
                                    "op": ">" if i % 2 else "<", "value": 10 if i % 2 else -10}
        elif kind < 16:
            cond = {"type": "nonfinite", "metric": key}
        elif kind < 18:
            cond = {"type": "change", "metric": key, "op": ">", "value": 1000,
                    "window_steps": 100}
        elif kind == 18:
            cond = {"type": "stalled", "seconds": max(600.0, stalled_s)}
        else:
            cond = {"type": "failed"}
        out.append({"name": f"bench-{i}", "experiment_ids": ["0"], "condition": cond,
                    "for_s": 0.0 if i % 3 else 5.0, "severity": "warning"})
    return out


def _load(uri: str, admin_uri: str, args: argparse.Namespace, probe: Any = None,
          cpu: Any = lambda: 0.0) -> tuple[float, float]:
    """Run the ingest benchmark's load against `uri`; return (points/s until all were
    acked, server CPU seconds per million points by `cpu()`)."""
    import metricflow as mf

    admin = mf.Client(admin_uri)
    parent = admin.create_run("0", run_name="alerts-bench")
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(uri, parent.run_id, "0", i, args.keys,
                                               args.points_per_worker, args.buffer_mb, go,
                                               out)) for i in range(args.workers)]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get(timeout=300)[0] == "ready"
    stop = threading.Event()
    t = None
    if probe is not None:
        t = threading.Thread(target=probe, args=(stop,), daemon=True)
        t.start()
    c0 = cpu()
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=1800)[2] for _ in procs]
    elapsed = time.perf_counter() - t0
    used = cpu() - c0
    stop.set()
    if t is not None:
        t.join(120)
    for p in procs:
        p.join()
    admin.set_terminated(parent.run_id)
    admin.close()
    points = sum(r["points"] for r in results)
    return points / elapsed, used / points * 1e6


def _prober(uri: str, exp: str, rcv: Receiver | None, n: int, lat: list[float]) -> Any:
    """Log a breaching point into a probe run, time ack -> webhook; then resolve it.
    Without a receiver (the no-rules runs) it logs the same points at a similar pace,
    so both sides of the slowdown carry the same traffic."""
    def probe(stop: threading.Event) -> None:
        import metricflow as mf

        c = mf.Client(uri, linger_ms=1)
        run = c.create_run(exp, run_name="alerts-bench-probe").run_id
        time.sleep(0.5)
        for i in range(n):
            c.log_metrics(run, {"probe": 1.0}, step=2 * i)
            c.flush()
            t_ack = time.perf_counter()
            if rcv is None:
                time.sleep(0.05)  # about what a firing takes to arrive
            else:
                got = rcv.wait(lambda j, i=i: j.get("event") == "alert.firing"
                               and j["data"].get("run_id") == run
                               and j["data"]["step"] == 2 * i, 30)
                if got is not None:
                    lat.append((got[0] - t_ack) * 1000)
            c.log_metrics(run, {"probe": 0.0}, step=2 * i + 1)
            c.flush()
            if rcv is None:
                time.sleep(0.05)
            else:
                rcv.wait(lambda j, i=i: j.get("event") == "alert.resolved"
                         and j["data"].get("run_id") == run
                         and j["data"]["step"] == 2 * i + 1, 30)
            if stop.is_set() and (rcv is None or len(lat) >= n // 2):
                break
        c.set_terminated(run)
        c.close()
    return probe


def _evaluator_cpu(http_port: int) -> float:
    """CPU seconds of the process's alert evaluator so far (its /metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("metricflow_alerts_cpu_seconds_total{"))


def _stalled(uri: str, exp: str, rcv: Receiver, stalled_s: float) -> float:
    import metricflow as mf

    with mf.Client(uri, linger_ms=1) as c:
        run = c.create_run(exp, run_name="alerts-bench-stall").run_id
        c.log_metrics(run, {"heartbeat": 1.0}, step=0)
        c.flush()
        t_ack = time.perf_counter()
        got = rcv.wait(lambda j: j.get("event") == "alert.firing"
                       and j["data"].get("run_id") == run
                       and j["data"]["condition"] == "stalled", stalled_s + 60)
        c.set_terminated(run)
    return -1.0 if got is None else got[0] - t_ack


def _setup_rules(http_port: int, rcv: Receiver, args: argparse.Namespace) -> dict[str, str]:
    """The webhook, the load's rules, and the probe and stall rules (each in its own
    experiment, so neither sees the load's runs); returns those experiments' ids."""
    hook = _api(http_port, "/webhooks/create", {
        "url": rcv.url, "events": ["alert.firing", "alert.resolved"], "secret": "bench",
    })["webhook"]["webhook_id"]
    for body in _rules(args.rules, args.keys, args.stalled_s):
        _api(http_port, "/alerts/rules/create", body)
    tag = uuid.uuid4().hex[:6]
    exps = {k: str(_api(http_port, "/experiments/create", {"name": f"alerts-bench-{k}-{tag}"})
                   ["experiment_id"]) for k in ("probe", "stall")}
    _api(http_port, "/alerts/rules/create", {
        "name": "probe", "experiment_ids": [exps["probe"]], "channels": [hook],
        "condition": {"type": "threshold", "metric": "probe", "op": ">", "value": 0.5}})
    _api(http_port, "/alerts/rules/create", {
        "name": "stall", "experiment_ids": [exps["stall"]],
        "condition": {"type": "stalled", "seconds": args.stalled_s}})
    return exps


def _p99(xs: list[float]) -> float:
    if not xs:
        return -1.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]


def _summary(base: list[tuple[float, float]], rules: list[tuple[float, float]],
             lat: list[float], stall: float) -> dict[str, Any]:
    b, r = max(x[0] for x in base), max(x[0] for x in rules)
    cb, cr = min(x[1] for x in base), min(x[1] for x in rules)
    return {"fire_latency_p99_ms": round(_p99(lat), 1),
            "fire_latency_p50_ms": round(sorted(lat)[len(lat) // 2], 1) if lat else -1.0,
            "probes": len(lat),
            "ingest_slowdown_pct": round((b - r) / b * 100, 2),
            "points_per_sec_no_rules": [round(x[0]) for x in base],
            "points_per_sec_rules": [round(x[0]) for x in rules],
            # CPU of the ingest path per million points: steadier than throughput on a
            # machine other processes load (kafka: the ingest and writer processes)
            "server_cpu_overhead_pct": round((cr - cb) / cb * 100, 2) if cb else None,
            "server_cpu_s_per_mpoint_no_rules": [round(x[1], 3) for x in base],
            "server_cpu_s_per_mpoint_rules": [round(x[1], 3) for x in rules],
            "stalled_detect_s": round(stall, 3)}


def run_embedded(args: argparse.Namespace) -> dict[str, Any]:
    from loadtests._server import start_server

    eval_cpu: list[float] = []
    base: list[tuple[float, float]] = []
    rules: list[tuple[float, float]] = []
    lat: list[float] = []
    stall = -1.0
    for rep in range(args.repeats):
        for with_rules in (False, True):
            srv = start_server(extra_args=["--linger-ms", str(args.linger_ms)])
            rcv = Receiver()
            try:
                probe = None
                exps: dict[str, str] = {}
                if with_rules:
                    exps = _setup_rules(srv.http_port, rcv, args)
                    probe = _prober(srv.uri, exps["probe"], rcv, args.probes, lat)
                else:
                    probe = _prober(srv.uri, "0", None, args.probes, [])
                e0 = _evaluator_cpu(srv.http_port)
                pps = _load(srv.uri, srv.uri, args, probe, srv.cpu_s)
                (rules if with_rules else base).append(pps)
                if with_rules:
                    eval_cpu.append((_evaluator_cpu(srv.http_port) - e0) / (
                        args.workers * args.points_per_worker) * 1e6)
                if with_rules and rep == 0:
                    stall = _stalled(srv.uri, exps["stall"], rcv, args.stalled_s)
            finally:
                rcv.close()
                srv.stop()
    return {"mode": "embedded", **_summary(base, rules, lat, stall),
            "evaluator_cpu_s_per_mpoint": [round(x, 3) for x in eval_cpu]}


def run_kafka(args: argparse.Namespace) -> dict[str, Any]:
    base: list[tuple[float, float]] = []
    rules: list[tuple[float, float]] = []
    lat: list[float] = []
    stall = -1.0
    alerts_cpu: list[float] = []
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("METRICFLOW_TEST_KAFKA")
        if not bootstrap:
            from metricflow.devservices import KafkaBroker

            bootstrap = stack.enter_context(KafkaBroker(heap="1g")).bootstrap
        for rep in range(args.repeats):
            for with_rules in (False, True):
                data = tempfile.mkdtemp(prefix="metricflow-abench-")
                env = {**os.environ, "METRICFLOW_METADATA_URI": f"sqlite:///{data}/md.db"}
                kafka = ["--kafka", bootstrap, "--topic", f"abench-{uuid.uuid4().hex[:8]}",
                         "--partitions", str(args.partitions)]
                with contextlib.ExitStack() as procs:
                    def start(role: str, a: list[str], env: dict[str, str] = env
                              ) -> dict[str, Any]:
                        p, info = _start_role(role, a, env)
                        procs.callback(lambda: (p.terminate(), p.wait(60)))
                        return {**info, "pid": p.pid}
                    w = start("writer", [*kafka, "--clickhouse", f"chdb://{data}/ch",
                                         "--serve-query", "--linger-ms", "100"])
                    i = start("ingest", kafka)
                    uri = f"grpc://127.0.0.1:{i['grpc_port']}"
                    rcv = Receiver()
                    procs.callback(rcv.close)
                    probe = None
                    exps: dict[str, str] = {}
                    if with_rules:
                        a = start("alerts", kafka)
                        _wait_ready(a["http_port"])
                        exps = _setup_rules(w["http_port"], rcv, args)
                        time.sleep(1.0)  # the alerts role loads rules within its tick
                        probe = _prober(uri, exps["probe"], rcv, args.probes, lat)
                    else:
                        probe = _prober(uri, "0", None, args.probes, [])
                    pids = (w["pid"], i["pid"])
                    a0 = _proc_stats(a["pid"])[0] if with_rules else 0.0
                    pps = _load(uri, uri, args, probe,
                                lambda pids=pids: sum(_proc_stats(x)[0] for x in pids))
                    if with_rules:
                        alerts_cpu.append((_proc_stats(a["pid"])[0] - a0) / (
                            args.workers * args.points_per_worker) * 1e6)
                    (rules if with_rules else base).append(pps)
                    if with_rules and rep == 0:
                        stall = _stalled(uri, exps["stall"], rcv, args.stalled_s)
    return {"mode": "kafka", **_summary(base, rules, lat, stall),
            "alerts_role_cpu_s_per_mpoint": [round(x, 3) for x in alerts_cpu]}


def _wait_ready(http_port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the alerts role did not get its partitions")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--points-per-worker", type=int, default=1_000_000)
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--linger-ms", type=float, default=100.0, help="embedded server's linger")
    ap.add_argument("--rules", type=int, default=1000, help="active rules besides the probes")
    ap.add_argument("--probes", type=int, default=40, help="fire-latency samples per run")
    ap.add_argument("--stalled-s", type=float, default=3.0, help="T of the stalled rule")
    ap.add_argument("--repeats", type=int, default=2, help="alternating pairs per mode")
    ap.add_argument("--partitions", type=int, default=8, help="kafka mode: topic partitions")
    ap.add_argument("--skip-kafka", action="store_true")
    ap.add_argument("--skip-embedded", action="store_true",
                    help="Kafka mode only (its figures are then the top-level keys too)")
    ap.add_argument("--json", action="store_true", help="print one JSON line (default)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    if args.skip_embedded:
        res: dict[str, Any] = run_kafka(args)
    else:
        res = run_embedded(args)
        if not args.skip_kafka:
            res["kafka"] = run_kafka(args)
    res.update(workers=args.workers, keys=args.keys, points_per_worker=args.points_per_worker,
               rules=args.rules, stalled_s=args.stalled_s, repeats=args.repeats,
               loadavg_before=round(load0, 2), loadavg_after=round(os.getloadavg()[0], 2),
               cpus=os.cpu_count(), elapsed_s=round(time.perf_counter() - t0, 1))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
