"""Ingest benchmark: W worker processes log_metrics K keys per step into one server.

    python loadtests/ingest_bench.py --workers 8 --keys 100 --points-per-worker 1000000 --json

Prints one JSON line. points_per_sec is end to end: from the first log call
until every point is acknowledged and the store's exact count equals what was
sent. client_ns_per_point is the CPU time of the workers' hot loop (building
the metrics dict and calling log_metrics) per point; client_process_ns_per_point
adds the sender thread. server_rss_mb is the server's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker(uri: str, parent_run_id: str, experiment_id: str, idx: int, keys: int,
            points: int, buffer_mb: int, go: mp.Event, out: mp.Queue) -> None:
    import numpy as np

    import metricflow as mf

    client = mf.Client(uri, buffer_bytes=buffer_mb * 1024 * 1024)
    run = client.create_run(experiment_id, run_name=f"worker-{idx}",
                            parent_run_id=parent_run_id)
    names = [f"metric_{k:03d}" for k in range(keys)]
    steps = points // keys
    rng = np.random.default_rng(idx)
    table = rng.random((min(steps, 1000), keys)).tolist()  # values the "model" produces
    out.put(("ready", idx))
    go.wait()
    p0 = time.process_time()
    t0 = time.perf_counter()
    c0 = time.thread_time()
    for step in range(steps):
        client.log_metrics(run.run_id, dict(zip(names, table[step % len(table)])), step=step)
    hot_cpu = time.thread_time() - c0
    hot_wall = time.perf_counter() - t0
    client.flush()
    done_wall = time.perf_counter() - t0
    sent = steps * keys
    total = float(sum(sum(row) for row in table[: steps % len(table)]) +
                  sum(sum(row) for row in table) * (steps // len(table)))
    out.put(("done", idx, {
        "run_id": run.run_id, "points": sent, "sum": total, "hot_cpu_s": hot_cpu,
        "hot_wall_s": hot_wall, "flush_wall_s": done_wall,
        "process_cpu_s": time.process_time() - p0,
        "peak_buffer_mb": client._acc.peak_used_bytes / 2**20,
        "dropped": client.dropped_points, "reconnects": client._sender.reconnects,
    }))
    client.close()


def run(args: argparse.Namespace) -> dict:
    import metricflow as mf
    from loadtests._server import start_server

    srv = start_server(extra_args=["--linger-ms", str(args.linger_ms)])
    try:
        admin = mf.Client(srv.uri)
        parent = admin.create_run("0", run_name="ingest-bench")
        ctx = mp.get_context("spawn")
        go, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(srv.uri, parent.run_id, "0", i, args.keys,
                                                   args.points_per_worker, args.buffer_mb, go,
                                                   out)) for i in range(args.workers)]
        for p in procs:
            p.start()
        for _ in procs:
            assert out.get(timeout=300)[0] == "ready"
        cpu0 = srv.cpu_s()
        t0 = time.perf_counter()
        go.set()
        results = []
        for _ in procs:
            msg = out.get(timeout=1800)
            results.append(msg[2])
        acked = time.perf_counter() - t0
        run_ids = [r["run_id"] for r in results]
        sent = sum(r["points"] for r in results)
        count, total = admin.count_points(run_ids)
        elapsed = time.perf_counter() - t0
        server_cpu = srv.cpu_s() - cpu0
        for p in procs:
            p.join()
        rss, peak = srv.rss_mb()
        expected_sum = sum(r["sum"] for r in results)
        admin.set_terminated(parent.run_id)
        admin.close()
        return {
            "mode": "embedded", "workers": args.workers, "keys": args.keys,
            "points_sent": sent, "points_stored": count,
            "checksum_ok": abs(total - expected_sum) <= 1e-6 * max(1.0, abs(expected_sum)),
            "points_per_sec": round(sent / elapsed),
            "elapsed_s": round(elapsed, 3), "all_acked_s": round(acked, 3),
            "client_ns_per_point": round(
                sum(r["hot_cpu_s"] for r in results) / sent * 1e9, 1),
            "client_process_ns_per_point": round(
                sum(r["process_cpu_s"] for r in results) / sent * 1e9, 1),
            "server_cpu_s": round(server_cpu, 2),
            "server_rss_mb": round(peak, 1), "server_rss_end_mb": round(rss, 1),
            "client_buffer_limit_mb": args.buffer_mb,
            "client_buffer_peak_mb": round(max(r["peak_buffer_mb"] for r in results), 2),
            "dropped_points": sum(r["dropped"] for r in results),
            "reconnects": sum(r["reconnects"] for r in results),
            "cpus": os.cpu_count(),
        }
    finally:
        srv.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mode", choices=["embedded"], default="embedded")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--points-per-worker", type=int, default=1_000_000)
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--linger-ms", type=float, default=100.0)
    ap.add_argument("--json", action="store_true", help="print one JSON line (default)")
    res = run(ap.parse_args())
    print(json.dumps(res))
    return 0 if res["points_stored"] == res["points_sent"] and res["checksum_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
