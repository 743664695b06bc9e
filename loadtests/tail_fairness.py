"""Does a crowd of live tails slow other requests? (security review finding 5)

Starts `metricflow server` (auth off, embedded) in a child process, logs to one
run a point every 100 ms, and measures another caller's `GET /api/v1/runs/<id>`
latency and the server's CPU, first with no tail open, then with `--tails` HTTP
tails polling every `--poll-ms`. Prints one JSON object.

    python loadtests/tail_fairness.py --tails 50 --poll-ms 50
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import psutil


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_run_ms(http: str, run_id: str, calls: int) -> list[float]:
    out = []
    with httpx.Client(timeout=60) as c:
        for _ in range(calls):
            t0 = time.perf_counter()
            c.get(f"{http}/api/v1/runs/{run_id}").raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _tail(http: str, run_id: str, poll_ms: int, stop: threading.Event,
          lines: list[int], i: int) -> None:
    body = {"run_ids": [run_id], "poll_interval_ms": poll_ms}
    try:
        with httpx.stream("POST", f"{http}/api/v1/metrics/tail", json=body,
                          timeout=None) as r:
            for _ in r.iter_lines():
                lines[i] += 1
                if stop.is_set():
                    return
    except Exception:  # refused (over a limit) or closed at the end
        lines[i] = -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tails", type=int, default=50)
    ap.add_argument("--poll-ms", type=int, default=50)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--settle-s", type=float, default=3.0)
    a = ap.parse_args()

    import metricflow as mf

    data = tempfile.mkdtemp(prefix="mf-tailfair-")
    grpc_port, http_port = _port(), _port()
    env = dict(os.environ)
    # Room for every tail: this measures CPU fairness, not the stream limits.
    env.setdefault("METRICFLOW_TAIL_MAX_STREAMS_PER_USER", str(a.tails + 1))
    env.setdefault("METRICFLOW_TAIL_MAX_STREAMS", str(a.tails + 1))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from metricflow.server.cli import main; main()", "server",
         "--data-dir", data, "--grpc-port", str(grpc_port), "--http-port", str(http_port),
         "--auth", "off"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = f"http://127.0.0.1:{http_port}"
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{http}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        client = mf.Client(f"grpc://127.0.0.1:{grpc_port}", linger_ms=5)
        run_id = client.create_run(client.get_or_create_experiment("tailfair")).run_id
        for s in range(1000):
            client.log_metric(run_id, "loss", float(s), step=s)
        client.flush()

        def log() -> None:
            s = 1000
            while not stop.is_set():
                client.log_metric(run_id, "loss", float(s), step=s)
                s += 1
                stop.wait(0.1)

        logger = threading.Thread(target=log, daemon=True)
        logger.start()
        sp = psutil.Process(proc.pid)
        _get_run_ms(http, run_id, 20)  # warm up
        sp.cpu_percent(None)
        base = _get_run_ms(http, run_id, a.calls)
        base_cpu = sp.cpu_percent(None)
        lines = [0] * a.tails
        tails = [threading.Thread(target=_tail, args=(http, run_id, a.poll_ms, stop, lines, i),
                                  daemon=True) for i in range(a.tails)]
        for t in tails:
            t.start()
        time.sleep(a.settle_s)
        sp.cpu_percent(None)
        time.sleep(5.0)
        idle_cpu = sp.cpu_percent(None)  # tails only
        loaded = _get_run_ms(http, run_id, a.calls)
        print(json.dumps({
            "tails": a.tails, "poll_ms": a.poll_ms, "calls": a.calls,
            "get_run_p50_ms_no_tails": round(statistics.median(base), 1),
            "get_run_p50_ms_with_tails": round(statistics.median(loaded), 1),
            "get_run_p95_ms_with_tails": round(sorted(loaded)[int(0.95 * len(loaded))], 1),
            "server_cpu_pct_no_tails": round(base_cpu, 1),
            "server_cpu_pct_tails_only": round(idle_cpu, 1),
            "tails_open": sum(1 for n in lines if n >= 0),
            "tail_lines_received": sum(n for n in lines if n > 0),
        }))
        client.close()
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
