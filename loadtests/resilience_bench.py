"""Resilience benchmark: a server outage under full-speed logging, offline sync, fork.

    python loadtests/resilience_bench.py --json
    python loadtests/resilience_bench.py --outage-s 10 --before-s 5 --after-s 5 \\
        --sync-mb 64 --fork-points 1000000 --json                         (quick)

1. Outage (`--workers` 8 processes, each a Client with a spool under one
   METRICFLOW_SPOOL_DIR and a `--buffer-mb` buffer, logging 10 keys per step as
   fast as they can): `--before-s` seconds with the server up, the server is
   SIGKILLed and stays down `--outage-s` (60) seconds, restarted on the same port
   and data, `--after-s` more seconds of logging; then every worker flushes (its
   spool drains) and reports.
   - points_lost: points logged by the workers minus points stored (exact count,
     FINAL), target 0;
   - client_rss_peak_mb: the largest peak RSS (VmHWM) of a worker; with
     `--baseline-s` > 0 the same workers first run that long with no outage and
     client_rss_peak_mb_no_outage is theirs;
   - catch_up_s: from the restart until the last worker's spool was drained (every
     point of the outage acknowledged as stored, the client sending directly again);
   - spooled_mb: what the workers appended to their spools in this phase (the
     outage, and the backlog's tail while they kept logging during the catch-up).
   With `--memory-trace DIR` each worker writes, every 0.1 s, its RSS next to what its
   client holds (buffer bytes, spool frames in flight) and glibc's heap figures (in
   use, kept free) to DIR/<phase>-w<i>.jsonl, and DIR/outage-events.json has the
   kill and restart times: where a peak comes from (docs/resilience.md).
2. Offline: a Client(offline=True) logs `--sync-mb` MiB (default 1024) of spool
   (10 keys per step, as fast as it can), then `metricflow sync`'s function uploads
   it into a fresh embedded server (a subprocess).
   - spool_write_mb_per_s: the spool's write speed: its frames (the real encoded
     batches) appended again into a new spool, bytes / (time spent in the appends:
     CRC32 and write, + the final fsync; the fsync every METRICFLOW_SPOOL_FSYNC_S
     runs in the spool's own thread meanwhile), target >= 200;
     offline_append_mb_per_s is the same ratio for the appends made while the
     client was logging (its sender thread competing with the logging thread for
     the GIL) and offline_log_mb_per_s the spool bytes per second of logging;
   - sync_1gb_s: the sync's wall time (scaled to 1 GiB when --sync-mb differs,
     `sync_mb` says what was synced), target <= 60; the stored count is checked.
3. System metrics: the sampler's own thread CPU time over `--system-metrics-s`
   seconds at one sample per second, as a percentage of one core
   (system_metrics_cpu_pct_of_core, target < 1).
4. Fork: `loadtests/fork_bench.py`'s run_fork_bench (engineer S2's), in process:
   fork_10m_s and fork_history_ratio (`--fork-points`, `--skip-fork`).

Prints one JSON line with --json; the issue's keys are top-level.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests._server import ServerProcess, start_server  # after the path

TARGETS = {"points_lost": 0, "spool_write_mb_per_s": 200.0, "sync_1gb_s": 60.0,
           "system_metrics_cpu_pct_of_core": 1.0,
           "fork_10m_s": 1.0, "fork_history_ratio": 1.2}
KEYS = [f"m{k}" for k in range(10)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM:")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def _memory_tracer(client: Any, path: str) -> Any:
    """A thread writing, every 0.1 s, the worker's RSS next to what the client holds:
    the buffer's counted bytes, the spool frames in flight, batches queued, and glibc's
    heap figures (in use vs kept free), as JSON lines (`--memory-trace DIR`)."""
    import ctypes
    import threading

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        libc = None
    stop = threading.Event()
    sender, acc = client._sender, client._acc
    mb = 1 / (1 << 20)

    def loop() -> None:
        with open(path, "w") as out:
            while not stop.wait(0.1):
                try:
                    inflight = list(sender._inflight.values())
                except RuntimeError:  # changed by the sender thread meanwhile
                    continue
                row = {"t": time.time(), "rss": _status_mb("VmRSS:"),
                       "hwm": _status_mb("VmHWM:"), "acc": acc.used_bytes * mb,
                       "buffered_points": acc.buffered_points,
                       "drain": sum(i.nbytes for i in inflight if i.spool_pos is not None) * mb,
                       "live_inflight": sum(i.nbytes for i in inflight
                                            if i.spool_pos is None) * mb,
                       "queued": len(sender._queued), "spooling": sender.spooling,
                       "failing": sender.failing}
                held = getattr(acc, "held_bytes", None)
                if held is not None:
                    row["held"] = held * mb
                if libc is not None:
                    m = libc.mallinfo2()
                    row.update(heap=m.arena * mb, mmapped=m.hblkhd * mb,
                               in_use=m.uordblks * mb, free=m.fordblks * mb)
                out.write(json.dumps(row) + "\n")

    t = threading.Thread(target=loop, name="memory-trace", daemon=True)
    t.start()
    return stop


# ------------------------------------------------------------------ worker
def worker(uri: str, spool_root: str, buffer_mb: int, stop_file: str, index: int,
           trace: str = "") -> None:
    """One training process: log at full speed until `stop_file` exists, then flush."""
    import metricflow as mf

    c = mf.Client(uri, spool_dir=spool_root, buffer_bytes=buffer_mb << 20,
                  block_timeout_s=900)
    tracer = _memory_tracer(c, trace) if trace else None
    run = c.create_run("0", run_name=f"resilience-w{index}")
    rows = np.random.default_rng(index).random((1000, len(KEYS))).tolist()
    step = logged = 0
    transitions: list[tuple[float, bool]] = []
    spooling = False
    sender = c._sender
    t0 = time.time()
    while not os.path.exists(stop_file):
        for j in range(1000):
            c.log_metrics(run.run_id, dict(zip(KEYS, rows[j])), step=step)
            step += 1
        logged += 1000 * len(KEYS)
        if sender.spooling != spooling:
            spooling = sender.spooling
            transitions.append((time.time(), spooling))
    t_stop = time.time()
    c.flush(900)
    deadline = time.monotonic() + 900
    while sender.spooling and time.monotonic() < deadline:
        time.sleep(0.05)
    if sender.spooling != spooling:
        transitions.append((time.time(), sender.spooling))
    spool = c._spool
    out = {"run_id": run.run_id, "points": logged, "seconds": t_stop - t0,
           "rss_peak_mb": _peak_rss_mb(), "transitions": transitions,
           "spooled_batches": sender.spooled_batches,
           "spooled_bytes": spool.appended_bytes if spool else 0,
           "append_s": spool.append_s if spool else 0.0}
    c.close(120)
    if tracer is not None:
        tracer.set()
    print(json.dumps(out), flush=True)


def _start_workers(n: int, uri: str, spool_root: str, buffer_mb: int,
                   stop_file: str, trace_dir: str = "",
                   phase: str = "") -> list[subprocess.Popen]:
    def trace(i: int) -> list[str]:
        return [os.path.join(trace_dir, f"{phase}-w{i}.jsonl")] if trace_dir else []

    return [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", uri,
                              spool_root, str(buffer_mb), stop_file, str(i), *trace(i)],
                             stdout=subprocess.PIPE, text=True) for i in range(n)]


def _collect(procs: list[subprocess.Popen]) -> list[dict[str, Any]]:
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"a worker exited with {p.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _restart(srv: ServerProcess, port: int) -> ServerProcess:
    return start_server(srv.data_dir, ["--grpc-port", str(port), "--http-port", "-1"])


def outage_phase(args: argparse.Namespace, tmp: str, log: Any) -> dict[str, Any]:
    import metricflow as mf

    port = _free_port()
    srv = start_server(os.path.join(tmp, "data"), ["--grpc-port", str(port),
                                                   "--http-port", "-1"])
    result: dict[str, Any] = {}
    try:
        if args.baseline_s > 0:
            stop = os.path.join(tmp, "stop-baseline")
            procs = _start_workers(args.workers, srv.uri, os.path.join(tmp, "spool-b"),
                                   args.buffer_mb, stop, args.memory_trace, "baseline")
            time.sleep(args.baseline_s)
            open(stop, "w").close()
            base = _collect(procs)
            result["client_rss_peak_mb_no_outage"] = round(max(w["rss_peak_mb"]
                                                               for w in base), 1)
            log(f"baseline: {sum(w['points'] for w in base)} points, rss peak "
                f"{result['client_rss_peak_mb_no_outage']} MiB")
        stop = os.path.join(tmp, "stop")
        spool_root = os.path.join(tmp, "spool")
        procs = _start_workers(args.workers, srv.uri, spool_root, args.buffer_mb, stop,
                               args.memory_trace, "outage")
        time.sleep(args.before_s)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(60)
        t_down = time.time()
        log(f"server killed; down for {args.outage_s}s")
        time.sleep(args.outage_s)
        srv = _restart(srv, port)
        t_up = time.time()
        log(f"server restarted after {t_up - t_down:.1f}s")
        if args.memory_trace:
            with open(os.path.join(args.memory_trace, "outage-events.json"), "w") as f:
                json.dump({"down": t_down, "up": t_up}, f)
        time.sleep(args.after_s)
        open(stop, "w").close()
        workers = _collect(procs)
        reads = mf.Client(srv.uri)
        try:
            stored, _ = reads.count_points([w["run_id"] for w in workers])
        finally:
            reads.close()
        logged = sum(w["points"] for w in workers)
        drained = []
        for w in workers:
            after = [t for t, on in w["transitions"] if t >= t_up and not on]
            drained.append(after[0] if after else t_up)
        outage_bytes = sum(w["spooled_bytes"] for w in workers)
        result.update(
            points_logged=logged, points_stored=stored, points_lost=logged - stored,
            client_rss_peak_mb=round(max(w["rss_peak_mb"] for w in workers), 1),
            catch_up_s=round(max(drained) - t_up, 2),
            spooled_mb=round(outage_bytes / (1 << 20), 1),
            outage_s=round(t_up - t_down, 1), workers=args.workers,
            buffer_mb=args.buffer_mb,
            logging_points_per_s=round(logged / max(w["seconds"] for w in workers)))
        log(f"outage: logged {logged}, stored {stored}, catch-up {result['catch_up_s']}s")
    finally:
        srv.stop()
    return result


# ----------------------------------------------------------------- offline
def offline_phase(args: argparse.Namespace, tmp: str, log: Any) -> dict[str, Any]:
    import metricflow as mf
    from metricflow.client._sync import find_spools, sync

    spool_root = os.path.join(tmp, "offline")
    target = args.sync_mb << 20
    c = mf.Client(offline=True, spool_dir=spool_root)
    run = c.create_run("0", run_name="offline-1gb")
    rows = np.random.default_rng(1).random((1000, len(KEYS))).tolist()
    spool = c._spool
    assert spool is not None
    step = 0
    t0 = time.perf_counter()
    while spool.appended_bytes < target:
        for j in range(1000):
            c.log_metrics(run.run_id, dict(zip(KEYS, rows[j])), step=step)
            step += 1
    c.set_terminated(run.run_id)
    write_s, written = spool.append_s, spool.appended_bytes
    wall = time.perf_counter() - t0
    c.close()
    points = step * len(KEYS)
    log(f"offline: {points} points, {written / (1 << 20):.0f} MiB spooled in {wall:.1f}s "
        f"({write_s:.2f}s in appends)")
    (d,) = find_spools(spool_root)
    copy_mb_per_s = _spool_write_speed(d, os.path.join(tmp, "copy"))
    srv = start_server(os.path.join(tmp, "sync-data"), ["--http-port", "-1"])
    try:
        t1 = time.perf_counter()
        summary = sync(spool_root, srv.uri, show_progress=False)
        sync_s = time.perf_counter() - t1
        reads = mf.Client(srv.uri)
        try:
            stored, _ = reads.count_points([run.run_id])
        finally:
            reads.close()
    finally:
        srv.stop()
    if stored != points:
        raise RuntimeError(f"sync stored {stored} points of {points}")
    mb = written / (1 << 20)
    log(f"sync: {mb:.0f} MiB in {sync_s:.1f}s")
    return {"spool_write_mb_per_s": copy_mb_per_s,
            "offline_append_mb_per_s": round(mb / write_s, 1),
            "offline_log_mb_per_s": round(mb / wall, 1),
            "sync_1gb_s": round(sync_s * 1024 / mb, 2), "sync_mb": round(mb, 1),
            "sync_s": round(sync_s, 2), "sync_points": points,
            "sync_points_per_s": round(points / sync_s), "sync_errors": summary["errors"],
            "spool_dir_removed": not os.path.exists(os.path.join(d, "00000000.seg"))}


def _spool_write_speed(src: str, dst: str) -> float:
    """MiB/s of Spool appends of `src`'s frames (real encoded batches) into a new spool
    with the default durability (fsync every METRICFLOW_SPOOL_FSYNC_S); the time is the
    appends' own (checksum, write, fsync), without the logging thread competing."""
    from metricflow import _env
    from metricflow.client._spool import Spool

    source = Spool(src, create=False)
    target = Spool(dst, budget_bytes=1 << 62, fsync_s=_env.SPOOL_FSYNC_S.get())
    try:
        for f in source.frames():
            target.append(f.kind, f.payload)
        t0 = time.perf_counter()
        target.sync()  # what the background fsync had not yet written is counted too
        spent = target.append_s + time.perf_counter() - t0
        return round(target.appended_bytes / (1 << 20) / spent, 1)
    finally:
        source.close()
        target.close("remove")


def system_metrics_phase(seconds: float, tmp: str) -> dict[str, Any]:
    """CPU time of the system metrics sampler thread over `seconds` at 1 sample/s."""
    import metricflow as mf
    from metricflow.client._sysmetrics import SystemMetricsSampler

    c = mf.Client(offline=True, spool_dir=os.path.join(tmp, "sysmetrics"))
    try:
        run = c.create_run("0", run_name="system-metrics")
        s = SystemMetricsSampler(c, run.run_id, interval_s=1.0).start()
        t0 = time.monotonic()
        time.sleep(seconds)
        s.stop()
        el = time.monotonic() - t0
    finally:
        c.close()
    return {"system_metrics_cpu_pct_of_core": round(100 * s.cpu_seconds / el, 3),
            "system_metrics_samples": s.samples}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        uri, root, buf, stop, idx = sys.argv[2:7]
        worker(uri, root, int(buf), stop, int(idx), *sys.argv[7:8])
        return 0
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--before-s", type=float, default=20.0)
    p.add_argument("--outage-s", type=float, default=60.0)
    p.add_argument("--after-s", type=float, default=20.0)
    p.add_argument("--baseline-s", type=float, default=20.0,
                   help="first run the workers this long without an outage (0: skip)")
    p.add_argument("--buffer-mb", type=int, default=64, help="each client's buffer_bytes")
    p.add_argument("--sync-mb", type=int, default=1024, help="offline spool size to sync")
    p.add_argument("--fork-points", type=int, default=10_000_000)
    p.add_argument("--skip-outage", action="store_true")
    p.add_argument("--skip-sync", action="store_true")
    p.add_argument("--skip-fork", action="store_true")
    p.add_argument("--system-metrics-s", type=float, default=30.0,
                   help="measure the system metrics sampler this long (0: skip)")
    p.add_argument("--memory-trace", default="", metavar="DIR",
                   help="workers write their memory every 0.1 s to DIR/<phase>-w<i>.jsonl")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tmp = tempfile.mkdtemp(prefix="metricflow-resilience-")
    result: dict[str, Any] = {}
    try:
        if not args.skip_outage:
            result.update(outage_phase(args, tmp, log))
        if not args.skip_sync:
            result.update(offline_phase(args, tmp, log))
        if args.system_metrics_s > 0:
            result.update(system_metrics_phase(args.system_metrics_s, tmp))
        if not args.skip_fork:
            from loadtests.fork_bench import run_fork_bench

            fork = run_fork_bench(points=args.fork_points)
            result.update({k: fork[k] for k in ("fork_10m_s", "fork_history_ratio")})
            result["fork_points"] = args.fork_points
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["targets"] = {k: v for k, v in TARGETS.items() if k in result}
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
