"""Ingest benchmark: W worker processes log_metrics K keys per step into one server.

    python loadtests/ingest_bench.py --workers 8 --keys 100 --points-per-worker 1000000 --json
    python loadtests/ingest_bench.py --mode kafka --workers 8 --keys 100 \
        --points-per-worker 1000000 --json

--mode kafka runs the distributed path: a real Kafka broker (METRICFLOW_TEST_KAFKA, or a
local one from metricflow.devservices), one `metricflow ingest` and one `metricflow writer`
process (chDB; it also serves the query API). points_per_sec then ends when the writer has
inserted every point (verified afterwards with an exact count); lag_p99_s is measured by
the writer per Kafka message, from the record timestamp the ingest node's producer set
(at or before the client's ack) to the end of the insert that made it queryable.

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

from metricflow.ingest._kafka_config import WriterConfig  # after the path


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
    if args.mode == "kafka":
        return run_kafka(args)
    import metricflow as mf
    from loadtests._server import start_server

    srv = start_server(extra_args=["--linger-ms", str(args.linger_ms),
                                   *(["--no-uvloop"] if args.no_uvloop else [])])
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
        cpu0, merge0 = srv.cpu_s(), _merge_cpu_s(srv.proc.pid)
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
        merge_cpu = _merge_cpu_s(srv.proc.pid) - merge0
        for p in procs:
            p.join()
        rss, peak = srv.rss_mb()
        expected_sum = sum(r["sum"] for r in results)
        admin.set_terminated(parent.run_id)
        admin.close()
        return {
            "mode": "embedded", "loop": "asyncio" if args.no_uvloop else "uvloop",
            "workers": args.workers, "keys": args.keys,
            "points_sent": sent, "points_stored": count,
            "checksum_ok": abs(total - expected_sum) <= 1e-6 * max(1.0, abs(expected_sum)),
            "points_per_sec": round(sent / elapsed),
            "elapsed_s": round(elapsed, 3), "all_acked_s": round(acked, 3),
            "client_ns_per_point": round(
                sum(r["hot_cpu_s"] for r in results) / sent * 1e9, 1),
            "client_process_ns_per_point": round(
                sum(r["process_cpu_s"] for r in results) / sent * 1e9, 1),
            "server_cpu_s": round(server_cpu, 2),
            # of which chDB's background merges (its MergeMutate threads)
            "server_merge_cpu_s": round(merge_cpu, 2),
            "server_rss_mb": round(peak, 1), "server_rss_end_mb": round(rss, 1),
            "client_buffer_limit_mb": args.buffer_mb,
            "client_buffer_peak_mb": round(max(r["peak_buffer_mb"] for r in results), 2),
            "dropped_points": sum(r["dropped"] for r in results),
            "reconnects": sum(r["reconnects"] for r in results),
            "cpus": os.cpu_count(),
        }
    finally:
        srv.stop()


# ------------------------------------------------------------------ --mode kafka
def _start_role(role: str, args: list[str], env: dict, timeout_s: float = 120.0):
    """Start `metricflow <role>` on free ports; return (Popen, ready-info)."""
    import json as _json
    import subprocess

    cmd = [sys.executable, "-m", "metricflow.server.cli", role, "--grpc-port", "0",
           "--http-port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"metricflow {role} exited with {proc.wait()}")
        if line.startswith("{") and _json.loads(line).get("event") == "ready":
            return proc, _json.loads(line)
    proc.kill()
    raise RuntimeError(f"metricflow {role} did not become ready")


def _http_json(port: int, path: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.loads(r.read())


def _merge_cpu_s(pid: int) -> float:
    """CPU seconds of the process's chDB background merges so far: its threads named
    MergeMutate* (ClickHouse names its merge pool's threads so), from /proc."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                name, rest = f.read().split("(", 1)[1].rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
        if name.startswith("MergeMutate"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _proc_stats(pid: int) -> tuple[float, float]:
    """(cpu seconds, peak RSS MiB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    cpu = (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


def run_kafka(args: argparse.Namespace) -> dict:
    """The distributed path: workers -> ingest -> Kafka -> writer -> chDB."""
    import contextlib
    import tempfile
    import uuid

    import metricflow as mf

    data = tempfile.mkdtemp(prefix="metricflow-kbench-")
    env = {**os.environ, "METRICFLOW_METADATA_URI": f"sqlite:///{data}/metadata.db"}
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("METRICFLOW_TEST_KAFKA")
        broker = None
        if not bootstrap:
            from metricflow.devservices import KafkaBroker

            broker = stack.enter_context(KafkaBroker(heap="1g"))
            bootstrap = broker.bootstrap
        kafka = ["--kafka", bootstrap, "--topic", topic, "--partitions", str(args.partitions)]
        writer, winfo = _start_role("writer", [*kafka, "--clickhouse", f"chdb://{data}/ch",
                                               "--serve-query", "--linger-ms",
                                               str(args.writer_linger_ms), "--max-rows",
                                               str(args.writer_max_rows)], env)
        stack.callback(lambda: (writer.terminate(), writer.wait(60)))
        ingest, iinfo = _start_role("ingest", [*kafka, "--compression", args.compression], env)
        stack.callback(lambda: (ingest.terminate(), ingest.wait(60)))
        uri = f"grpc://127.0.0.1:{iinfo['grpc_port']}"
        admin = mf.Client(uri)
        reads = mf.Client(f"grpc://127.0.0.1:{winfo['grpc_port']}")
        parent = admin.create_run("0", run_name="ingest-bench-kafka")
        ctx = mp.get_context("spawn")
        go, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(uri, parent.run_id, "0", i, args.keys,
                                                   args.points_per_worker, args.buffer_mb, go,
                                                   out)) for i in range(args.workers)]
        for p in procs:
            p.start()
        for _ in procs:
            assert out.get(timeout=300)[0] == "ready"
        pids = {"ingest": ingest.pid, "writer": writer.pid}
        if broker is not None:
            pids["kafka"] = broker.pid
        cpu0 = {k: _proc_stats(v)[0] for k, v in pids.items()}
        base = _http_json(winfo["http_port"], "/stats?reset=true")["points_written"]
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        go.set()
        results = [out.get(timeout=1800)[2] for _ in procs]
        acked = time.perf_counter() - t0
        sent = sum(r["points"] for r in results)
        stats = {}
        while time.perf_counter() - t0 < 1800:
            stats = _http_json(winfo["http_port"], "/stats")
            if stats["points_written"] - base >= sent:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
        cpu = {k: round(_proc_stats(v)[0] - cpu0[k], 2) for k, v in pids.items()}
        peak = {k: round(_proc_stats(v)[1], 1) for k, v in pids.items()}
        for p in procs:
            p.join()
        run_ids = [r["run_id"] for r in results]
        v0 = time.perf_counter()
        count, total = reads.count_points(run_ids)
        verify_s = time.perf_counter() - v0
        expected_sum = sum(r["sum"] for r in results)
        admin.close()
        reads.close()
        lag = stats.get("e2e_lag_s", {})
        return {
            "mode": "kafka", "workers": args.workers, "keys": args.keys,
            "partitions": args.partitions, "compression": args.compression,
            "points_sent": sent, "points_stored": count,
            "checksum_ok": abs(total - expected_sum) <= 1e-6 * max(1.0, abs(expected_sum)),
            "points_per_sec": round(sent / elapsed),
            "lag_p50_s": round(lag.get("p50", -1), 3), "lag_p99_s": round(lag.get("p99", -1), 3),
            "lag_max_s": round(lag.get("p100", -1), 3), "lag_samples": int(lag.get("samples", 0)),
            "elapsed_s": round(elapsed, 3), "all_acked_s": round(acked, 3),
            "verify_count_s": round(verify_s, 3),
            "client_ns_per_point": round(sum(r["hot_cpu_s"] for r in results) / sent * 1e9, 1),
            "client_process_ns_per_point": round(
                sum(r["process_cpu_s"] for r in results) / sent * 1e9, 1),
            "cpu_s": cpu, "peak_rss_mb": peak,
            "client_buffer_peak_mb": round(max(r["peak_buffer_mb"] for r in results), 2),
            "dropped_points": sum(r["dropped"] for r in results),
            "reconnects": sum(r["reconnects"] for r in results),
            "loadavg_before": round(load0, 2), "loadavg_after": round(load1, 2),
            "cpus": os.cpu_count(),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mode", choices=["embedded", "kafka"], default="embedded")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--points-per-worker", type=int, default=1_000_000)
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--linger-ms", type=float, default=100.0)
    ap.add_argument("--partitions", type=int, default=8, help="kafka mode: topic partitions")
    ap.add_argument("--writer-linger-ms", type=int, default=200, help="kafka mode")
    ap.add_argument("--writer-max-rows", type=int, default=WriterConfig.max_rows,
                    help="kafka mode (default: the writer's own)")
    ap.add_argument("--compression", default="lz4",
                    help="kafka mode: producer compression (the product default)")
    ap.add_argument("--no-uvloop", action="store_true",
                    help="embedded mode: run the server on the default asyncio loop")
    ap.add_argument("--json", action="store_true", help="print one JSON line (default)")
    res = run(ap.parse_args())
    print(json.dumps(res))
    return 0 if res["points_stored"] == res["points_sent"] and res["checksum_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
