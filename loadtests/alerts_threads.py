"""Where the embedded server's CPU goes with and without alert rules, per thread.

    python loadtests/alerts_threads.py --points-per-worker 500000 --order ABBA

Runs alerts_bench's load (and its probe) against a fresh `metricflow server` per trial:
A = no rules, B = `--rules` rules (alerts_bench's). Prints one JSON line per trial: the
server's CPU seconds per million points (/proc/<pid>/stat), the same per thread
(/proc/<pid>/task/<tid>/stat, from the load's start to its end), and the alerts
threads' own counters and latency stages (its /metrics). Python threads are named
with `py-spy dump` when py-spy is installed (next to this interpreter or on PATH);
otherwise, and for native threads (chDB), by the kernel's thread name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests._server import start_server  # after the path
from loadtests.alerts_bench import (
    Prober,
    Receiver,
    _alerts_metrics,
    _load,
    _metrics_delta,
    _setup_rules,
)

TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[float, str]]:
    """{tid: (CPU seconds, kernel thread name)} of a process's threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                p = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except FileNotFoundError:
            continue
        out[int(tid)] = ((int(p[11]) + int(p[12])) / TCK, comm)
    return out


def python_names(pid: int) -> dict[int, str]:
    """{tid: Python thread name} from py-spy, or {} without it."""
    local = os.path.join(os.path.dirname(sys.executable), "py-spy")
    spy = local if os.path.exists(local) else shutil.which("py-spy")
    if not spy:
        return {}
    r = subprocess.run([spy, "dump", "--pid", str(pid), "--json", "--nonblocking"],
                       capture_output=True, text=True, timeout=60)
    try:
        return {t["os_thread_id"]: t.get("thread_name") or "?" for t in json.loads(r.stdout)}
    except (ValueError, KeyError, TypeError):
        return {}


def trial(args: argparse.Namespace, with_rules: bool) -> dict[str, Any]:
    points = args.workers * args.points_per_worker
    srv = start_server(extra_args=["--linger-ms", "100"])
    rcv = Receiver()
    try:
        exps = _setup_rules(srv.http_port, rcv, args) if with_rules else {}
        prober = Prober(srv.uri, exps.get("probe", "0"), rcv if with_rules else None,
                        args.probes)
        prober.prepare()
        names: dict[int, str] = {}

        def name_threads() -> None:
            time.sleep(3)  # the load's threads exist by then
            names.update(python_names(srv.proc.pid))

        namer = threading.Thread(target=name_threads)
        namer.start()
        snaps: list[dict[int, tuple[float, str]]] = []

        def cpu() -> float:
            snaps.append(thread_cpu(srv.proc.pid))
            return srv.cpu_s()

        m0 = _alerts_metrics(srv.http_port)
        pps, cpu_per_m, _merge = _load(srv.uri, srv.uri, args, prober, cpu)
        m1 = _alerts_metrics(srv.http_port)
        namer.join()
        prober.close()
        c0, c1 = snaps
        by: dict[str, float] = {}
        for tid, (c, comm) in c1.items():
            name = names.get(tid) or f"native:{comm}"
            by[name] = by.get(name, 0.0) + (c - c0.get(tid, (0.0, ""))[0]) / points * 1e6
        return {"side": "rules" if with_rules else "no_rules", "points_per_sec": round(pps),
                "server_cpu_s_per_mpoint": round(cpu_per_m, 3),
                "loadavg_1m": round(os.getloadavg()[0], 1),
                "threads_cpu_s_per_mpoint": {n: round(v, 3) for n, v in
                                             sorted(by.items(), key=lambda x: -x[1])
                                             if v > 0.002},
                "alerts": _metrics_delta(m0, m1, points)}
    finally:
        rcv.close()
        srv.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--points-per-worker", type=int, default=500_000)
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--stalled-s", type=float, default=3.0)
    ap.add_argument("--probes", type=int, default=40)
    ap.add_argument("--order", default="ABBA", help="A: no rules, B: rules; one trial each")
    args = ap.parse_args()
    for side in args.order:
        print(json.dumps(trial(args, side == "B")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
