"""Serving benchmark: `mlflow models serve` vs `metricflow serve`, side by side, one machine.

The same small sklearn model (logistic regression on iris, with a signature) is
registered through the `mlflow` client against a `metricflow server`, then served

- by `mlflow models serve -m models:/NAME/1 --env-manager local -w 1` (MLflow 3.17.2), and
- by `metricflow serve` for a deployment routing 90/10 between two aliases of it, plus a
  shadow variant that receives a mirror of every request, with prediction logging on.

Measured (closed loop on keep-alive connections, one request in flight per connection):

- `throughput_ratio`: metricflow requests/s / mlflow requests/s (target >= 3);
- `router_overhead_p99_ms`: at one fixed request rate (open loop), p99 latency through
  `metricflow serve` minus p99 of a direct in-process `pyfunc.predict` of the same model
  on a prebuilt one-row DataFrame, on the same schedule (target <= 1 ms). Both are
  measured by the same client on one event loop in alternating blocks (router, direct,
  router, ...; `_paired`), so that both see the same machine: measured one after the
  other (as this benchmark did before), the router's p99 was taken right after the
  throughput runs and the direct one later, on a machine in a different state;
- `switch_failed_requests`: failed requests while the champion alias moves to another
  version under load (target 0).

Diagnostics: `router_overhead_p99_ms_no_request_log` measures the same with a second
serve process started with `--no-log-predictions`: the router without the sends of its
request log to the tracking server.

`router_overhead_p99_ms_tracking_niced` measures the same pair once more at
the end, with every thread of the tracking server reniced by `--tracking-nice` (default
10). The tracking server takes the request log and runs on these same 2 cores; each of
its inserts is a burst of 20-35 ms of CPU, and they come while the router is loaded (a
send follows its points by up to the 5 s linger, and each direct block first waits for
the sends of the router block before it: `_alternating`), so they fall on the router's
side of the pair. Reniced, it gets the CPU the serving side leaves, as if it had a
machine of its own; the serve process's own request-log work (buffering, encoding,
sending) stays in the figure.
`tracking_niced_requests_dropped` and `tracking_niced_settle_s` say whether the reniced
server kept up.

    python loadtests/serve_bench.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests._http_load import LoadResult, closed_loop, open_loop, request_bytes
from loadtests._serve_procs import start_serve
from loadtests._server import start_server
from metricflow.serving._serve_app import ServeConfig

LINGER_S = ServeConfig.log_linger_ms / 1000
"""The serve processes' request-log linger (their default: the benchmark sets none)."""

COLS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"dataframe_split": {"columns": COLS, "data": [ROW]}}).encode()


def _log(quiet: bool, *a: Any) -> None:
    if not quiet:
        print(*a, file=sys.stderr, flush=True)


def _register(name: str, copies: int) -> list[str]:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    m = LogisticRegression(max_iter=300).fit(X, y)
    out = []
    for _ in range(copies):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(m, name="model", signature=infer_signature(X, y),
                                            registered_model_name=name)
        out.append(str(info.registered_model_version))
    return out


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log_path: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    with open(log_path, errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"{url} did not answer:\n{tail}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mlflow_serve(model_uri: str, tracking: str, tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_REGISTRY_URI": tracking,
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    log_path = os.path.join(tmp, "mlflow-serve.log")
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [exe, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h",
             "127.0.0.1", "-p", str(port), "-w", "1"], env=env, stdout=out,
            stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    _wait_http(f"http://127.0.0.1:{port}/ping", proc, 300, log_path)
    return proc, port


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """`mlflow models serve` runs uvicorn as a child: stop the session it leads."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _stat(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu(parts: list[str]) -> float:
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process, from /proc."""
    parts = _stat(pid)
    return _cpu(parts) if parts else 0.0


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds of every live process in a process group (mlflow and its uvicorn)."""
    total = 0.0
    for d in os.listdir("/proc"):
        parts = _stat(d) if d.isdigit() else None
        if parts and int(parts[2]) == pgid:
            total += _cpu(parts)
    return total


def _closed(port: int, conns: int, seconds: float, watch: str | None = None) -> LoadResult:
    req = request_bytes("/invocations", BODY)
    return asyncio.run(closed_loop("127.0.0.1", port, lambda i: req, conns=conns,
                                   duration_s=seconds, watch_header=watch))


async def _alternating(port: int, model: Any, rate: float, n: int, blocks: int = 10,
                       between: Callable[[], Awaitable[None]] | None = None
                       ) -> tuple[LoadResult, Any]:
    """Router and direct latencies at one request rate, measured in alternating blocks
    (router, direct, router, ...) by one client on the running event loop: the same
    open-loop schedule and timer path for both, and whatever else the machine does (other
    processes) falls on both alike. Not the request log: `between` runs after each router
    block and waits until the serve process has sent that block's points and the
    tracking server has digested them, so the sends' inserts fall on router blocks (as
    many as the block's length holds: one send per linger) or on the pause, never on a
    direct block. (Without it, a send a linger after a router block's first point could
    land in the next direct block and raise the direct p99 instead.)
    Returns the routed requests' LoadResult and the direct calls' latencies (ms)."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame([ROW], columns=COLS)
    req = request_bytes("/invocations", BODY)
    per = max(1, n // blocks)
    direct = np.empty(per * blocks)

    async def direct_block(k: int) -> None:
        t0 = time.perf_counter()
        for i in range(per):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            model.predict(df)
            direct[k * per + i] = (time.perf_counter() - at) * 1000.0

    for _ in range(50):  # warm both paths
        model.predict(df)
    await open_loop("127.0.0.1", port, lambda i: req, rate=rate, n=min(100, per))
    routed = LoadResult()
    for k in range(blocks):
        r = await open_loop("127.0.0.1", port, lambda i: req, rate=rate, n=per)
        routed.latencies_ms.extend(r.latencies_ms)
        routed.statuses.update(r.statuses)
        routed.conn_errors += r.conn_errors
        routed.elapsed_s += r.elapsed_s
        if between is not None:
            await between()
        await direct_block(k)
    return routed, direct


def _metric_total(url: str, name: str) -> float | None:
    """Sum of a Prometheus metric's samples (every label set) at `url`/metrics; None if
    that cannot be read."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "))


def _niced_pair(srv: Any, mf: Any, model_uri: str, a: argparse.Namespace) -> dict[str, Any]:
    """`_paired` with every thread of the tracking server reniced by `a.tracking_nice`."""
    import numpy as np

    srv.settle()
    nice = srv.renice(a.tracking_nice)
    name = "metricflow_serve_prediction_logs_dropped_total"
    dropped0 = _metric_total(mf.url, name)
    router, direct = _paired(mf.port, model_uri, a.rate, a.requests, srv)
    dropped1 = _metric_total(mf.url, name)
    return {
        "router_overhead_p99_ms_tracking_niced": round(
            router.pct(99) - float(np.percentile(direct, 99)), 3),
        "tracking_niced_router_p99_ms": round(router.pct(99), 3),
        "tracking_niced_direct_p99_ms": round(float(np.percentile(direct, 99)), 3),
        "tracking_niceness": sorted(set(nice)),
        # requests whose points the serve process dropped (buffer full, no run yet)
        "tracking_niced_requests_dropped": None if dropped0 is None or dropped1 is None
        else round(dropped1 - dropped0),
        # how long the niced server then took to digest what it was sent
        "tracking_niced_settle_s": round(srv.settle(), 1),
    }


def _log_sent(srv: Any) -> Callable[[], Awaitable[None]] | None:
    """`_alternating`'s pause after a router block when the serve process logs to the
    tracking server `srv` (None: it logs nothing): a linger (the block's last send has
    left), then until the tracking server's CPU is quiet."""
    if srv is None:
        return None

    async def wait() -> None:
        await asyncio.sleep(LINGER_S + 0.2)
        await asyncio.to_thread(srv.settle)
    return wait


def _paired(port: int, model_uri: str, rate: float, n: int, srv: Any = None
            ) -> tuple[LoadResult, Any]:
    """`_alternating` against a serve process on `port` (a fresh event loop); with `srv`
    (the tracking server it logs requests to), each direct block waits for the request
    log's sends (`_log_sent`)."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    return asyncio.run(_alternating(port, model, rate, n, between=_log_sent(srv)))


def _router_cpu_us(model_uri: str, shadow: bool, rounds: int = 300) -> float:
    """CPU per request of the router alone: the real handler path (parse, route, batch,
    answer, metrics, windows) in process, 32 concurrent requests, a zero-cost model with
    the real model's signature, no sockets."""
    import mlflow.pyfunc
    import numpy as np

    from metricflow.entities import Deployment, Variant
    from metricflow.serving._serve_app import ServeState
    from metricflow.serving._serve_http import Request, encode
    from metricflow.serving._serve_server import Routes

    meta = mlflow.pyfunc.load_model(model_uri).metadata

    class Free:
        metadata = meta

        def predict(self, df: Any) -> Any:
            return np.zeros(len(df), dtype=np.int64)

    vs = [Variant("champion", weight=90, version="1", resolved_version="1"),
          Variant("challenger", weight=10, version="2", resolved_version="2")]
    if shadow:
        vs.append(Variant("mirror", version="1", weight=1.0, shadow=True, resolved_version="1"))

    class Src:
        def get(self, name: str) -> Deployment:
            return Deployment("bench", "m", tuple(vs))

        def report(self, name: str, status: Any) -> None:
            pass

    async def run() -> float:
        st = ServeState(ServeConfig("bench", "http://unused"), Src(), loader=lambda u: Free())
        await st.sync_once()
        routes = Routes(st, "bench")
        hdr = {"content-type": "application/json"}
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            for _ in range(rounds):
                outs = await asyncio.gather(*(routes.handle(
                    Request("POST", "/invocations", "", hdr, BODY)) for _ in range(32)))
                for o in outs:
                    encode(o, True)
                await asyncio.sleep(0)
            best = min(best, (time.process_time() - c0) / (rounds * 32) * 1e6)
        return best

    return asyncio.run(run())


def _in_process_overhead(dep: str, http: str, srv: Any, model_uri: str, rate: float,
                         n: int) -> tuple[float, float]:
    """(router p99, direct p99) in ms with the router in this process: the same serve state
    (deployment read from the control plane, models from the registry, the request log on)
    on a loopback port of this event loop, and the open-loop client on the same loop, so
    no second process has to be woken per request; direct `predict` calls in alternating
    blocks on the same schedule (`_alternating`)."""
    import mlflow.pyfunc
    import numpy as np

    from metricflow.client import Client
    from metricflow.serving._serve_app import ServeState
    from metricflow.serving._serve_http import start_http
    from metricflow.serving._serve_log import PredictionLog
    from metricflow.serving._serve_server import Routes
    from metricflow.serving._serve_source import HttpDeploymentSource

    model = mlflow.pyfunc.load_model(model_uri)

    async def run() -> tuple[float, float]:
        client = Client(srv.uri, drop_when_full=True, linger_ms=ServeConfig.log_linger_ms)
        st = ServeState(ServeConfig(dep, http, instance="bench-inproc"),
                        HttpDeploymentSource(http),
                        predictions=PredictionLog(client, dep, "bench-inproc"))
        await st.sync_once()
        server = await start_http(Routes(st, "bench").handle, "127.0.0.1", 0,
                                  max_body=1 << 20)
        port = server.sockets[0].getsockname()[1]
        res, direct = await _alternating(port, model, rate, n,
                                         between=_log_sent(srv))
        server.close()
        await asyncio.to_thread(st.predictions.close)  # type: ignore[union-attr]
        return res.pct(99), float(np.percentile(direct, 99))

    return asyncio.run(run())


def _switch(port: int, url: str, conns: int, seconds: float, move: Any,
            new_version: str) -> dict[str, Any]:
    got: list[LoadResult] = []
    t = threading.Thread(target=lambda: got.append(_closed(port, conns, seconds,
                                                           "X-Metricflow-Version")))
    t.start()
    time.sleep(seconds / 4)
    moved = time.monotonic()
    move()
    seen_s = None
    while t.is_alive():
        with urllib.request.urlopen(f"{url}/version", timeout=10) as r:
            info = json.loads(r.read())
        if seen_s is None and any(v["name"] == "champion" and v["version"] == new_version
                                  for v in info["variants"]):
            seen_s = time.monotonic() - moved
        time.sleep(0.1)
    t.join()
    res = got[0]
    return {"failed": res.failed, "requests": len(res.latencies_ms) + res.conn_errors,
            "by_version": dict(res.headers), "switch_seen_s": seen_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--conns", type=int, default=32, help="connections of the closed loop")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    p.add_argument("--rounds", type=int, default=2,
                   help="throughput runs per server, interleaved (the best of each is kept)")
    p.add_argument("--rate", type=float, default=50.0, help="open-loop rate for the p99")
    p.add_argument("--requests", type=int, default=1500, help="open-loop requests for the p99")
    p.add_argument("--switch-seconds", type=float, default=12.0)
    p.add_argument("--tracking-nice", type=int, default=10, choices=range(0, 20),
                   metavar="0..19", help="at the end, measure the p99 pair again with the "
                   "tracking server's niceness raised by this much (0: skip)")
    a = p.parse_args(argv)
    q = a.json
    import numpy as np

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    tmp = tempfile.mkdtemp(prefix="serve-bench-")
    srv = start_server(os.path.join(tmp, "data"))
    http = f"http://127.0.0.1:{srv.http_port}"
    os.environ["MLFLOW_TRACKING_URI"] = http
    os.environ["MLFLOW_REGISTRY_URI"] = http
    procs: list[Any] = []
    ml = None
    try:
        name = f"bench-iris-{uuid.uuid4().hex[:6]}"
        with contextlib.redirect_stdout(sys.stderr):  # mlflow prints run links on stdout
            versions = _register(name, 3)
        from mlflow import MlflowClient

        mc = MlflowClient()
        mc.set_registered_model_alias(name, "champion", versions[0])
        mc.set_registered_model_alias(name, "challenger", versions[1])
        dep = f"bench-{uuid.uuid4().hex[:6]}"
        body = {"name": dep, "model_name": name, "variants": [
            {"name": "champion", "alias": "champion", "weight": 90},
            {"name": "challenger", "alias": "challenger", "weight": 10},
            {"name": "mirror", "version": versions[0], "weight": 1.0, "shadow": True}]}
        req = urllib.request.Request(f"{http}/api/v1/deployments/create",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        _log(q, f"registered {name} v{versions}; deployment {dep}")
        ml, ml_port = _mlflow_serve(f"models:/{name}/{versions[0]}", http, tmp)
        mf = start_serve(dep, http, srv.uri, log_dir=tmp)
        procs.append(mf)
        _log(q, f"mlflow models serve on {ml_port}; metricflow serve on {mf.port}")
        # warm both (first requests import and compile lazily)
        _closed(ml_port, 4, 2.0)
        _closed(mf.port, 4, 2.0)

        ml_runs, mf_runs = [], []
        ml_cpu = mf_cpu = 0.0
        for rnd in range(a.rounds):
            c0 = _group_cpu_s(ml.pid)
            r1 = _closed(ml_port, a.conns, a.seconds)
            ml_cpu += _group_cpu_s(ml.pid) - c0
            c0 = _proc_cpu_s(mf.proc.pid)
            r2 = _closed(mf.port, a.conns, a.seconds, "X-Metricflow-Variant")
            mf_cpu += _proc_cpu_s(mf.proc.pid) - c0
            _log(q, f"round {rnd + 1}: mlflow {r1.rps:.0f} req/s (p99 {r1.pct(99):.1f} ms, "
                    f"failed {r1.failed}); metricflow {r2.rps:.0f} req/s (p99 "
                    f"{r2.pct(99):.1f} ms, failed {r2.failed}, {dict(r2.headers)})")
            ml_runs.append(r1)
            mf_runs.append(r2)
        with urllib.request.urlopen(f"{mf.url}/version", timeout=10) as r:
            calls = {v["name"]: (v["requests_in_calls"], v["model_calls"])
                     for v in json.loads(r.read())["variants"]}
        ml_best = max(ml_runs, key=lambda r: r.rps)
        mf_best = max(mf_runs, key=lambda r: r.rps)
        _stop_group(ml)

        model_uri = f"models:/{name}/{versions[0]}"
        srv.settle()  # the throughput runs' request log digested
        router, direct = _paired(mf.port, model_uri, a.rate, a.requests, srv)
        direct_p99 = float(np.percentile(direct, 99))
        _log(q, f"open loop {a.rate:.0f}/s, router and direct in alternating blocks: router "
                f"p50 {router.pct(50):.2f} p99 {router.pct(99):.2f} ms (failed "
                f"{router.failed}); direct p50 {np.percentile(direct, 50):.2f} p99 "
                f"{direct_p99:.2f} ms")

        # The same with the request log off (a second serve process): the router alone.
        quiet = start_serve(dep, http, None, log_dir=tmp)
        procs.append(quiet)
        q_router, q_direct = _paired(quiet.port, model_uri, a.rate, a.requests)
        q_direct_p99 = float(np.percentile(q_direct, 99))
        quiet.stop()
        _log(q, f"request log off: router p99 {q_router.pct(99):.2f} ms, direct p99 "
                f"{q_direct_p99:.2f} ms")

        ip_router, ip_direct = _in_process_overhead(dep, http, srv, model_uri, a.rate,
                                                    a.requests)
        _log(q, f"in process, open loop {a.rate:.0f}/s: router p99 {ip_router:.2f} ms, "
                f"direct p99 {ip_direct:.2f} ms")
        cpu_us = _router_cpu_us(f"models:/{name}/{versions[0]}", False)
        cpu_us_shadow = _router_cpu_us(f"models:/{name}/{versions[0]}", True)
        _log(q, f"router CPU per request (zero-cost model): {cpu_us:.0f} us, with a shadow "
                f"{cpu_us_shadow:.0f} us")
        sw = _switch(mf.port, mf.url, a.conns, a.switch_seconds,
                     lambda: mc.set_registered_model_alias(name, "champion", versions[2]),
                     versions[2])
        _log(q, f"switch: {sw}")
        # Last (lowering a niceness again needs privilege): the same pair with the
        # tracking server reniced, as if it had a machine of its own.
        niced = _niced_pair(srv, mf, model_uri, a) if a.tracking_nice else None
        if niced is not None:
            _log(q, f"tracking server reniced by {a.tracking_nice}: {niced}")
        out = {
            "throughput_ratio": round(mf_best.rps / ml_best.rps, 2) if ml_best.rps else None,
            "router_overhead_p99_ms": round(router.pct(99) - direct_p99, 3),
            **(niced or {}),
            "switch_failed_requests": sw["failed"],
            "mlflow_rps": round(ml_best.rps, 1), "metricflow_rps": round(mf_best.rps, 1),
            "mlflow_p99_ms": round(ml_best.pct(99), 2),
            "metricflow_p99_ms": round(mf_best.pct(99), 2),
            "mlflow_cpu_ms_per_request": round(
                1000 * ml_cpu / max(1, sum(len(r.latencies_ms) for r in ml_runs)), 3),
            "metricflow_cpu_ms_per_request": round(
                1000 * mf_cpu / max(1, sum(len(r.latencies_ms) for r in mf_runs)), 3),
            "mlflow_failed": sum(r.failed for r in ml_runs),
            "metricflow_failed": sum(r.failed for r in mf_runs),
            "split_challenger_share": round(mf_best.headers.get("challenger", 0)
                                            / max(1, sum(mf_best.headers.values())), 4),
            "router_overhead_p99_ms_no_request_log": round(q_router.pct(99) - q_direct_p99,
                                                           3),
            "router_overhead_p99_ms_in_process": round(ip_router - ip_direct, 3),
            "in_process_router_p99_ms": round(ip_router, 3),
            "in_process_direct_p99_ms": round(ip_direct, 3),
            "router_cpu_us_per_request": round(cpu_us, 1),
            "router_cpu_us_per_request_with_shadow": round(cpu_us_shadow, 1),
            "router_p50_ms": round(router.pct(50), 3), "router_p99_ms": round(router.pct(99), 3),
            "direct_p50_ms": round(float(np.percentile(direct, 50)), 3),
            "direct_p99_ms": round(direct_p99, 3), "router_failed": router.failed,
            "switch_requests": sw["requests"], "switch_by_version": sw["by_version"],
            "switch_seen_s": None if sw["switch_seen_s"] is None
            else round(sw["switch_seen_s"], 2),
            "requests_per_model_call": {k: round(n / c, 2) for k, (n, c) in calls.items()
                                        if c},
            "conns": a.conns, "seconds": a.seconds, "rate": a.rate,
            "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        }
        if a.json:
            print(json.dumps(out), flush=True)
        else:
            for k, v in out.items():
                print(f"{k}: {v}")
        return 0
    finally:
        if ml is not None:
            _stop_group(ml)
        for p_ in procs:
            p_.stop()
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
