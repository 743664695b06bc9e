"""Alerts benchmark: the embedded ingest benchmark's load with 1,000 active rules, then
the same through Kafka with the `metricflow alerts` role.

    python loadtests/alerts_bench.py --json
    python loadtests/alerts_bench.py --points-per-worker 200000 --repeats 1 --skip-kafka --json

Per mode, `--repeats` rounds of three trials, each on a fresh server, in alternating
order (none, quiet, alerting; then alerting, quiet, none; ...):
- none: no rules. A probe client logs a point into its own run every ~50 ms.
- quiet: `--rules` active rules (threshold, NaN/Inf, relative change, stalled, FAILED;
  none fires on the load's values in [0, 1)) plus the probe's rule, which the probe's
  points (0.0) never breach: every point is evaluated, nothing fires.
- alerting: the same rules; the probe's points breach its rule and recover, one after
  the other, so its alert fires and resolves several times a second (about 7 in the
  embedded trials here: an alert storm, each a state write and a signed webhook
  POST); fire latency is measured here.
Figures:
- ingest_slowdown_pct: the median over the rounds of the throughput difference between
  the none and quiet trials (points/s of the load, 8 workers x 100 keys as
  loadtests/ingest_bench.py, from the first log call until every point is acked): what
  evaluating the rules on the stream costs the writers, the issue's figure. Each
  round's figure beside it (ingest_slowdown_pct_pairs).
  ingest_slowdown_pct_alerting: the same between the none and alerting trials (until
  2026-12-07 the bench had only these two trials, and this was ingest_slowdown_pct).
  Throughput on a shared machine is noisy; server_cpu_overhead_pct (and _alerting) are
  the medians of the differences of the ingest path's CPU seconds per point
  (/proc/<pid>/stat of the server; Kafka: ingest + writer).
- fire_latency_p99_ms: in the alerting trials, while the load runs, a probe client logs
  a breaching point into its own run; from the moment the server acked it (flush returned) to the
  moment a local HTTP receiver got the signed alert.firing webhook; p99 of up to
  `--probes` per run (a short load ends after fewer: `probes` says how many;
  `probes_missed` counts alerts that did not come within 30 s). Before the load the
  probe does one uncounted cycle and waits for its webhook, so the path is ready end
  to end (Kafka: the alerts role's group joined, positioned, rules loaded) and no
  probe includes a group join. ack_to_evaluated_*: ack -> the evaluator's `fired_at`
  (the rest is the state write, the send and the POST); alerts_during_load: the
  evaluating process's alerts CPU per million points by thread part and its latency
  stages (consume lag, queue, write, deliver) from its /metrics, per alerting trial
  (alerts_during_quiet_load: per quiet trial), with `evaluated_lag_s`: how long after
  the load's last ack the evaluator had evaluated all its points (the slowdown's window
  ends at that ack: work still queued then is not in it), `dropped_points` and
  `consumer_wait_s`. The quiet trials also wait for a warm-up alert before the load, so
  their rules are loaded as the alerting trials' are. The receiver speaks HTTP/1.1 with
  keep-alive, as production receivers do (until 2026-12-07 it closed the connection
  after each POST, and the server opened one per delivery).
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
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests.ingest_bench import _merge_cpu_s, _proc_stats, _start_role, _worker  # after the path


class Receiver:
    """A local webhook receiver: records (receipt time, payload) of every POST."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        outer = self

        class H(BaseHTTPRequestHandler):
            # keep-alive, as production receivers (HTTP/1.1 servers, chat services) do:
            # http.server's HTTP/1.0 default closed every connection after one POST, so
            # the server under test opened a TCP connection per delivery
            protocol_version = "HTTP/1.1"

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
            # a fall of more than 200%: never, for values >= 0 (a rise of 1000x, the
            # rule until 2026-12-07, fired now and then on the load: a base value near 0)
            cond = {"type": "change", "metric": key, "op": "<", "value": -2,
                    "window_steps": 100}
        elif kind == 18:
            cond = {"type": "stalled", "seconds": max(600.0, stalled_s)}
        else:
            cond = {"type": "failed"}
        out.append({"name": f"bench-{i}", "experiment_ids": ["0"], "condition": cond,
                    "for_s": 0.0 if i % 3 else 5.0, "severity": "warning"})
    return out


def _load(uri: str, admin_uri: str, args: argparse.Namespace, probe: Any = None,
          cpu: Any = lambda: 0.0, merge: Any = lambda: 0.0) -> tuple[float, float, float]:
    """Run the ingest benchmark's load against `uri`; return (points/s until all were
    acked, server CPU seconds per million points by `cpu()`, the part of it that chDB's
    background merges used, by `merge()`)."""
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
    c0, m0 = cpu(), merge()
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=1800)[2] for _ in procs]
    elapsed = time.perf_counter() - t0
    used, merged = cpu() - c0, merge() - m0
    stop.set()
    if t is not None:
        t.join(120)
    for p in procs:
        p.join()
    admin.set_terminated(parent.run_id)
    admin.close()
    points = sum(r["points"] for r in results)
    return points / elapsed, used / points * 1e6, merged / points * 1e6


class Prober:
    """Fire latency: log a breaching point into a probe run, time ack -> webhook; then
    log a recovering point and wait for the resolution. Without a receiver (the
    no-rules and quiet trials) it logs the same points at a similar pace, so every
    trial carries the same traffic (the quiet trials' first points do not breach).

    `prepare()` (before the load) creates the probe run and logs breaching points until
    one fires, then a recovery, not counted: the path is ready end to end (the alerts
    role's consumer has its partitions and positions, the rules are loaded, the run is
    known, the sender's connection is open) before anything is measured. Each probe
    records (ack -> receipt, ack -> the evaluator's `fired_at`), so the latency splits
    into getting to the evaluator and the rest (state write, send, POST)."""

    def __init__(self, uri: str, exp: str, rcv: Receiver | None, n: int,
                 breach: float = 1.0, warm: Receiver | None = None) -> None:
        """`breach`: the value of each cycle's first point (the quiet trials log 0.0,
        which the probe's rule `probe > 0.5` never fires on). `warm`: the receiver of
        `prepare`'s warm-up alert when the cycles have none (the quiet trials: their
        rules are loaded before the load, as in the alerting trials)."""
        self.uri, self.exp, self.rcv, self.n, self.breach = uri, exp, rcv, n, breach
        self.warm = warm if warm is not None else rcv
        self.lat: list[float] = []  # ack -> webhook receipt (ms)
        self.to_eval: list[float] = []  # ack -> the evaluator's fired_at (ms, wall clock)
        self.missed = 0  # probes whose webhook did not arrive within 30 s
        self.c: Any = None
        self.run = ""
        self.step = 0

    def _cycle(self, timeout_s: float) -> tuple[float, float] | None:
        """One breach and recovery; (ack -> receipt, ack -> fired_at) in ms, or None."""
        c, run, i = self.c, self.run, self.step
        self.step += 2
        c.log_metrics(run, {"probe": self.breach}, step=i)
        c.flush()
        t_ack, w_ack = time.perf_counter(), time.time()
        got = None
        if self.rcv is None:
            time.sleep(0.05)  # about what a firing takes to arrive
        else:
            got = self.rcv.wait(lambda j: j.get("event") == "alert.firing"
                                and j["data"].get("run_id") == run
                                and j["data"]["step"] == i, timeout_s)
        c.log_metrics(run, {"probe": 0.0}, step=i + 1)
        c.flush()
        if self.rcv is None:
            time.sleep(0.05)
            return None
        self.rcv.wait(lambda j: j.get("event") == "alert.resolved"
                      and j["data"].get("run_id") == run
                      and j["data"]["step"] == i + 1, timeout_s)
        if got is None:
            return None
        return (got[0] - t_ack) * 1000, got[1]["data"]["fired_at"] - w_ack * 1000

    def prepare(self, timeout_s: float = 120.0) -> None:
        import metricflow as mf

        self.c = mf.Client(self.uri, linger_ms=1)
        self.run = self.c.create_run(self.exp, run_name="alerts-bench-probe").run_id
        rcv = self.warm
        if rcv is None:
            return
        # Breaching points until one fires (the evaluating process may still be loading
        # the rules: a point it evaluated before that fires nothing), then a recovery.
        c, run, first = self.c, self.run, self.step
        deadline = time.monotonic() + timeout_s
        while True:
            c.log_metrics(run, {"probe": 1.0}, step=self.step)
            c.flush()
            self.step += 2
            if rcv.wait(lambda j: j.get("event") == "alert.firing"
                        and j["data"].get("run_id") == run
                        and j["data"]["step"] >= first, 2.0) is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the warm-up probe's alert did not arrive in {timeout_s} s")
        i = self.step
        self.step += 2
        c.log_metrics(run, {"probe": 0.0}, step=i)
        c.flush()
        if rcv.wait(lambda j: j.get("event") == "alert.resolved"
                    and j["data"].get("run_id") == run
                    and j["data"]["step"] == i, timeout_s) is None:
            raise RuntimeError("the warm-up probe's alert did not resolve")

    def __call__(self, stop: threading.Event) -> None:
        for _ in range(self.n):
            got = self._cycle(30)
            if got is not None:
                self.lat.append(got[0])
                self.to_eval.append(got[1])
            elif self.rcv is not None:
                self.missed += 1
            if stop.is_set() and (self.rcv is None or len(self.lat) >= self.n // 2):
                break

    def close(self) -> None:
        if self.c is not None:
            self.c.set_terminated(self.run)
            self.c.close()


def _alerts_metrics(http_port: int) -> dict[str, Any]:
    """The process's alerts figures so far (its /metrics): CPU seconds per part of the
    alerts threads, and the stage histograms' cumulative bucket counts."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as r:
        text = r.read().decode()
    cpu: dict[str, float] = {}
    stages: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("metricflow_alerts_dropped_points_total",
                     "metricflow_alerts_consumer_wait_seconds_total",
                     "metricflow_alerts_evaluated_points_total"):
            if line.startswith(name + " "):
                totals[name] = float(line.rsplit(" ", 1)[1])
        if line.startswith("metricflow_alerts_cpu_seconds_total{"):
            part = line.split('part="', 1)[1].split('"', 1)[0]
            cpu[part] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(("metricflow_alerts_stage_seconds_bucket{",
                              "metricflow_alerts_stage_seconds_sum{",
                              "metricflow_alerts_stage_seconds_count{")):
            stage = line.split('stage="', 1)[1].split('"', 1)[0]
            kind = line.split("{", 1)[0].rsplit("_", 1)[1]
            key = kind if kind != "bucket" else line.split('le="', 1)[1].split('"', 1)[0]
            stages.setdefault(stage, {})[key] = float(line.rsplit(" ", 1)[1])
    return {"cpu": cpu, "stages": stages, "totals": totals}


def _metrics_delta(before: dict[str, Any], after: dict[str, Any], points: int
                   ) -> dict[str, Any]:
    """CPU per million points by part, and per stage: count, mean and the bucket bound
    under which 99% of the observations fell (ms), during one load."""
    cpu = {k: round((v - before["cpu"].get(k, 0.0)) / points * 1e6, 4)
           for k, v in after["cpu"].items()}
    stages: dict[str, Any] = {}
    for stage, h in after["stages"].items():
        h0 = before["stages"].get(stage, {})
        d = {k: v - h0.get(k, 0.0) for k, v in h.items()}
        n = d.get("count", 0.0)
        if not n:
            continue
        bounds = sorted((float(k), v) for k, v in d.items() if k not in ("sum", "count"))
        p99 = next((b for b, c in bounds if c >= 0.99 * n), float("inf"))
        stages[stage] = {"n": int(n), "mean_ms": round(d["sum"] / n * 1000, 1),
                         "p99_le_ms": p99 * 1000 if p99 != float("inf") else "inf"}
    t0, t1 = before.get("totals", {}), after.get("totals", {})
    return {"cpu_s_per_mpoint": cpu, "stages": stages,
            # points the evaluator skipped (its queue full: embedded) and how long the
            # alerts role's consumer waited for room instead (Kafka)
            "dropped_points": int(t1.get("metricflow_alerts_dropped_points_total", 0)
                                  - t0.get("metricflow_alerts_dropped_points_total", 0)),
            "consumer_wait_s": round(t1.get("metricflow_alerts_consumer_wait_seconds_total", 0)
                                     - t0.get("metricflow_alerts_consumer_wait_seconds_total",
                                              0), 3)}


def _evaluated_lag(http_port: int, before: dict[str, Any], points: int,
                   timeout_s: float = 120.0) -> float:
    """Seconds from now (the load's last ack) until the evaluating process has evaluated
    at least `points` more points than at `before` (the load's; the probe's come on
    top): how far evaluation trailed the writers. -1.0 when it did not within
    `timeout_s` (points dropped for evaluation never count)."""
    name = "metricflow_alerts_evaluated_points_total"
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        done = _alerts_metrics(http_port)["totals"].get(name, 0.0)
        if done - before["totals"].get(name, 0.0) >= points:
            return round(time.perf_counter() - t0, 3)
        time.sleep(0.02)
    return -1.0


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
        "url": rcv.url, "events": ["alert.firing", "alert.resolved"], "secret": "bench-secret-0123",
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


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return -1.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


NONE, QUIET, ALERTING = "none", "quiet", "alerting"
"""The three trials of a round: no rules; the rules with nothing firing; the rules with
the probe's alert firing and resolving back to back (see the module docstring)."""


class Trials:
    """The trials of one mode: per round one of each kind, in alternating order (none,
    quiet, alerting; then alerting, quiet, none; ...: a drift of the machine's load over
    the bench hits every kind alike), compared within the round."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, dict[str, Any]]] = []
        self.lat: list[float] = []
        self.to_eval: list[float] = []
        self.missed = 0
        self.stall = -1.0
        self.alerts: list[dict[str, Any]] = []
        self.quiet_alerts: list[dict[str, Any]] = []

    @staticmethod
    def order(rep: int) -> tuple[str, str, str]:
        return (NONE, QUIET, ALERTING) if rep % 2 == 0 else (ALERTING, QUIET, NONE)

    def add_probes(self, prober: Prober) -> None:
        self.lat += prober.lat
        self.to_eval += prober.to_eval
        self.missed += prober.missed

    def _versus(self, kind: str) -> dict[str, Any]:
        """Throughput and CPU of `kind`'s trials against the rounds' no-rules trials."""
        base = [r[NONE] for r in self.rounds]
        other = [r[kind] for r in self.rounds]
        slow = [(b["pps"] - o["pps"]) / b["pps"] * 100 for b, o in zip(base, other)]
        # None where the no-rules trial used no measurable CPU (/proc counts clock ticks
        # of 10 ms: tiny trials can read 0)
        cpu = [(o["cpu"] - b["cpu"]) / b["cpu"] * 100 if b["cpu"] else None
               for b, o in zip(base, other)]
        # the same without chDB's background merges: more than half of the embedded
        # server's CPU in this load, and the part that moves most from trial to trial
        # (1.9-4.9 s of 8M-point loads on one server, 2026-12-08)
        own = [((o["cpu"] - o["merge"]) - (b["cpu"] - b["merge"])) / (b["cpu"] - b["merge"])
               * 100 if b["cpu"] - b["merge"] > 0 else None for b, o in zip(base, other)]
        med_slow, med_cpu = _median(slow), _median([x for x in cpu if x is not None])
        med_own = _median([x for x in own if x is not None])
        return {"slow": None if med_slow is None else round(med_slow, 2),
                "slow_pairs": [round(x, 2) for x in slow],
                "cpu": None if med_cpu is None else round(med_cpu, 2),
                "cpu_pairs": [None if x is None else round(x, 2) for x in cpu],
                "own": None if med_own is None else round(med_own, 2),
                "own_pairs": [None if x is None else round(x, 2) for x in own],
                "merge_s": [round(x["merge"], 3) for x in other],
                "pps": [round(x["pps"]) for x in other],
                "cpu_s": [round(x["cpu"], 3) for x in other]}

    def summary(self) -> dict[str, Any]:
        q, a = self._versus(QUIET), self._versus(ALERTING)
        base = [r[NONE] for r in self.rounds]
        return {
            "fire_latency_p99_ms": round(_pct(self.lat, 0.99), 1),
            "fire_latency_p50_ms": round(_pct(self.lat, 0.5), 1),
            "fire_latency_max_ms": round(max(self.lat), 1) if self.lat else -1.0,
            "probes": len(self.lat),
            # a probe whose alert did not arrive within 30 s (not in the percentiles)
            "probes_missed": self.missed,
            # ack -> the evaluator's fired_at: consuming, queueing (the rest of the
            # latency is the state write, the send and the POST)
            "ack_to_evaluated_p50_ms": round(_pct(self.to_eval, 0.5), 1),
            "ack_to_evaluated_p99_ms": round(_pct(self.to_eval, 0.99), 1),
            # median over the rounds of (points/s without rules - with) / without: the
            # rules evaluated on every point, none firing
            "ingest_slowdown_pct": q["slow"],
            "ingest_slowdown_pct_pairs": q["slow_pairs"],
            # the same with the probe's alert firing and resolving ~7 times a second
            "ingest_slowdown_pct_alerting": a["slow"],
            "ingest_slowdown_pct_alerting_pairs": a["slow_pairs"],
            "points_per_sec_no_rules": [round(x["pps"]) for x in base],
            "points_per_sec_rules": q["pps"],
            "points_per_sec_alerting": a["pps"],
            # CPU seconds of the ingest path's process(es) per million points (from
            # /proc/<pid>/stat): far steadier than throughput on a shared machine
            "server_cpu_overhead_pct": q["cpu"],
            "server_cpu_overhead_pct_pairs": q["cpu_pairs"],
            "server_cpu_overhead_pct_alerting": a["cpu"],
            "server_cpu_overhead_pct_alerting_pairs": a["cpu_pairs"],
            "server_cpu_s_per_mpoint_no_rules": [round(x["cpu"], 3) for x in base],
            "server_cpu_s_per_mpoint_rules": q["cpu_s"],
            "server_cpu_s_per_mpoint_alerting": a["cpu_s"],
            # the server's CPU without chDB's background merges (Kafka: ingest + writer,
            # without the writer's merges): the rules' cost with the noisiest part out
            "server_cpu_overhead_excl_merges_pct": q["own"],
            "server_cpu_overhead_excl_merges_pct_pairs": q["own_pairs"],
            "server_cpu_overhead_excl_merges_pct_alerting": a["own"],
            # of the CPU seconds per million points above, chDB's background merges
            "server_merge_cpu_s_per_mpoint_no_rules": [round(x["merge"], 3) for x in base],
            "server_merge_cpu_s_per_mpoint_rules": q["merge_s"],
            "server_merge_cpu_s_per_mpoint_alerting": a["merge_s"],
            **({f"broker_cpu_s_per_mpoint_{k}": [round(r[k]["broker_cpu"], 3)
                                                 for r in self.rounds]
                for k in (NONE, QUIET, ALERTING)}
               if self.rounds and "broker_cpu" in self.rounds[0][NONE] else {}),
            "trial_order": [k for rep in range(len(self.rounds)) for k in self.order(rep)],
            "loadavg_1m_per_round": [[round(r[k]["load"], 1) for k in (NONE, QUIET, ALERTING)]
                                     for r in self.rounds],
            # the evaluating process's alerts threads (CPU per million points by part)
            # and the latency stages of everything it evaluated during each load: the
            # alerting trials, then the quiet ones
            "alerts_during_load": self.alerts,
            "alerts_during_quiet_load": self.quiet_alerts,
            "stalled_detect_s": round(self.stall, 3)}


def _prober(uri: str, kind: str, exps: dict[str, str], rcv: Receiver, n: int) -> Prober:
    if kind == NONE:
        return Prober(uri, "0", None, n)
    if kind == QUIET:
        return Prober(uri, exps["probe"], None, n, breach=0.0, warm=rcv)
    return Prober(uri, exps["probe"], rcv, n)


def run_embedded(args: argparse.Namespace) -> dict[str, Any]:
    from loadtests._server import start_server

    tr = Trials()
    points = args.workers * args.points_per_worker
    for rep in range(args.repeats):
        rnd: dict[str, dict[str, Any]] = {}
        for kind in tr.order(rep):
            srv = start_server(extra_args=["--linger-ms", str(args.linger_ms)])
            rcv = Receiver()
            try:
                exps: dict[str, str] = {}
                if kind != NONE:
                    exps = _setup_rules(srv.http_port, rcv, args)
                prober = _prober(srv.uri, kind, exps, rcv, args.probes)
                prober.prepare()
                m0 = _alerts_metrics(srv.http_port)
                pps, cpu, merge = _load(srv.uri, srv.uri, args, prober, srv.cpu_s,
                                        lambda pid=srv.proc.pid: _merge_cpu_s(pid))
                rnd[kind] = {"pps": pps, "cpu": cpu, "merge": merge,
                             "load": os.getloadavg()[0]}
                lag = _evaluated_lag(srv.http_port, m0, points) if kind != NONE else 0.0
                prober.close()
                if kind != NONE:
                    d = _metrics_delta(m0, _alerts_metrics(srv.http_port), points)
                    d["evaluated_lag_s"] = lag
                    (tr.alerts if kind == ALERTING else tr.quiet_alerts).append(d)
                if kind == ALERTING:
                    tr.add_probes(prober)
                    if tr.stall < 0:
                        tr.stall = _stalled(srv.uri, exps["stall"], rcv, args.stalled_s)
            finally:
                rcv.close()
                srv.stop()
        tr.rounds.append(rnd)
    return {"mode": "embedded", **tr.summary()}


def run_kafka(args: argparse.Namespace) -> dict[str, Any]:
    tr = Trials()
    points = args.workers * args.points_per_worker
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("METRICFLOW_TEST_KAFKA")
        broker_pid = None  # a broker of its own: its CPU per trial is reported too
        if not bootstrap:
            from metricflow.devservices import KafkaBroker

            broker = stack.enter_context(KafkaBroker(heap="1g"))
            bootstrap, broker_pid = broker.bootstrap, broker.pid
        for rep in range(args.repeats):
            rnd: dict[str, dict[str, Any]] = {}
            for kind in tr.order(rep):
                data = tempfile.mkdtemp(prefix="metricflow-abench-")
                env = {**os.environ, "METRICFLOW_METADATA_URI": f"sqlite:///{data}/md.db"}
                kafka = ["--kafka", bootstrap, "--topic", f"abench-{uuid.uuid4().hex[:8]}",
                         "--partitions", str(args.partitions)]
                with contextlib.ExitStack() as procs:
                    # the trial's stores, once its processes have stopped (callbacks run
                    # last first)
                    procs.callback(shutil.rmtree, data, True)
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
                    exps: dict[str, str] = {}
                    a: dict[str, Any] = {}
                    if kind != NONE:
                        a = start("alerts", kafka)
                        # Its group joined and positioned (/ready) before anything is
                        # produced; Prober.prepare then checks the whole path (rules
                        # loaded: no fixed sleep), so no probe includes the join.
                        _wait_ready(a["http_port"])
                        exps = _setup_rules(w["http_port"], rcv, args)
                    prober = _prober(uri, kind, exps, rcv, args.probes)
                    prober.prepare()
                    pids = (w["pid"], i["pid"])
                    m0 = _alerts_metrics(a["http_port"]) if a else None
                    a0 = _proc_stats(a["pid"])[0] if a else 0.0
                    k0 = _proc_stats(broker_pid)[0] if broker_pid else 0.0
                    pps, cpu, merge = _load(
                        uri, uri, args, prober,
                        lambda pids=pids: sum(_proc_stats(x)[0] for x in pids),
                        lambda pid=w["pid"]: _merge_cpu_s(pid))  # (the writer merges)
                    rnd[kind] = {"pps": pps, "cpu": cpu, "merge": merge,
                                 "load": os.getloadavg()[0]}
                    if broker_pid:  # (from the load's start until the bench reads it)
                        rnd[kind]["broker_cpu"] = (
                            (_proc_stats(broker_pid)[0] - k0) / points * 1e6)
                    lag = _evaluated_lag(a["http_port"], m0, points) if m0 is not None else 0.0
                    prober.close()
                    if m0 is not None:
                        d = _metrics_delta(m0, _alerts_metrics(a["http_port"]), points)
                        d["evaluated_lag_s"] = lag
                        d["process_cpu_s_per_mpoint"] = round(
                            (_proc_stats(a["pid"])[0] - a0) / points * 1e6, 3)
                        (tr.alerts if kind == ALERTING else tr.quiet_alerts).append(d)
                    if kind == ALERTING:
                        tr.add_probes(prober)
                        if tr.stall < 0:
                            tr.stall = _stalled(uri, exps["stall"], rcv, args.stalled_s)
            tr.rounds.append(rnd)
    return {"mode": "kafka", **tr.summary()}


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
    ap.add_argument("--repeats", type=int, default=4,
                    help="rounds of trials (none, quiet, alerting) per mode; even keeps the "
                         "order balanced (one trial's noise here is up to +-10 %%, more than "
                         "the rules' cost: 2 rounds, the default until 2026-12-07 evening, "
                         "gave medians from 0.2 to 5.2 %% in one hour)")
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
