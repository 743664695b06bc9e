"""Fork benchmark: fork a run with 10M points, read its history; forked vs unforked reads.

    python loadtests/fork_bench.py --json                       (in-process, 10M points)
    python loadtests/fork_bench.py --server --json              (a server and its client)
    python loadtests/fork_bench.py --points 1000000 --json      (quick)

Two modes, same steps and keys:
- default, in process (as loadtests/query_bench.py): the points go straight into a
  chDB MetricStore in ~1M-point Arrow inserts (the writer's insert path); the fork is
  created by applying its CreateRun record with the LogApplier (the writer's apply:
  run row, summary rows seeded from the parent), and reads are QueryCore calls: the
  query service's work without gRPC.
- --server: a `metricflow server` subprocess (chDB, record log); the points are
  logged with the client's log_metrics, the fork is `Client.create_run(fork_from=...)`
  and reads are gRPC calls (GetMetricHistory, DownsampleHistory), end to end.

Steps:
1. (untimed) a parent run: `--keys` keys x (points / keys) steps, `--points` points
   in all (default one key x 10M steps).
2. fork_10m_s: create a fork of the parent at step S (the middle of its history, not
   on a 256-step rollup block edge), then read the first page of the fork's history
   of one key (`--page` points, default 100,000). Median of `--forks` forks.
3. (untimed) the first fork logs steps S+1 .. the parent's last step, so it and its
   parent have histories of the same length.
4. fork_history_ratio: the fork's downsampled history (1,000 buckets, one key) time /
   the parent's (an unforked run of the same length): medians of `--repeat` calls
   each, interleaved (parent, fork, parent, ...) so load changes hit both alike.

Prints one JSON line with --json; the issue's keys are top-level: fork_10m_s (target
<= 1 s) and fork_history_ratio (target <= 1.2). `run_fork_bench()` is the same,
importable (loadtests/resilience_bench.py calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests._server import start_server  # after the path

TARGETS = {"fork_10m_s": 1.0, "fork_history_ratio": 1.2}


def _log_steps(client: Any, run_id: str, keys: list[str], first: int, last: int) -> None:
    rng = np.random.default_rng(first)
    vals = rng.normal(size=(min(last - first + 1, 100_000), len(keys)))
    for step in range(first, last + 1):
        row = vals[(step - first) % len(vals)]
        client.log_metrics(run_id, dict(zip(keys, row.tolist())), step=step)
    client.flush()


def _first_page(stub: Any, run_id: str, key: str, page: int) -> int:
    from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb

    resp = stub(qpb.GetMetricHistoryRequest(run_id=run_id, key=key, max_results=page))
    return len(resp.steps) // 8


def run_fork_bench(points: int = 10_000_000, keys: int = 1, page: int = 100_000,
                   forks: int = 3, repeat: int = 15, buckets: int = 1000,
                   server: bool = False, log: Any = None) -> dict[str, Any]:
    """Run the benchmark; the result dict (the issue's keys on top).

    Args:
        points: points of the parent run (keys x steps).
        forks: forks created and timed (median); each reads its first page once.
        repeat: downsample calls per run for the ratio (median, after one warm-up).
        server: through a `metricflow server` subprocess and the client (else in
            process, on a temporary chDB directory).
    """
    if server:
        return _server_bench(points, keys, page, forks, repeat, buckets, log)
    return _inprocess_bench(points, keys, page, forks, repeat, buckets, log)


def _result(fork_s: list[float], parent_t: list[float], fork_t: list[float],
            extra: dict[str, Any]) -> dict[str, Any]:
    unforked = statistics.median(parent_t[1:])
    forked = statistics.median(fork_t[1:])
    out = {"fork_10m_s": round(statistics.median(fork_s), 3),
           "fork_history_ratio": round(forked / unforked, 3),
           "fork_s_all": [round(x, 3) for x in fork_s],
           "downsample_unforked_ms": round(unforked * 1000, 2),
           "downsample_forked_ms": round(forked * 1000, 2), **extra,
           "cpus": os.cpu_count()}
    out["met"] = {k: out[k] <= v for k, v in TARGETS.items()}
    return out


def _inprocess_bench(points: int, keys: int, page: int, forks: int, repeat: int,
                     buckets: int, log: Any) -> dict[str, Any]:
    import shutil
    import tempfile
    import uuid

    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
    from metricflow._wire import DecodedMetrics
    from metricflow.entities import RunInfo
    from metricflow.entities.pb import run_info_to_pb
    from metricflow.ingest._applier import LogApplier
    from metricflow.query._core import QueryCore
    from metricflow.store import build_insert
    from metricflow.store._metric_store import MetricStore

    say = log or (lambda m: None)
    steps = points // keys
    names = tuple(f"m{k}" for k in range(keys))
    fork_step = steps // 2 - 37
    tmp = tempfile.mkdtemp(prefix="mf-forkbench-")
    store = MetricStore(f"chdb://{tmp}", "forkbench")
    store.ensure_schema()
    core = QueryCore(store, None)
    applier = LogApplier(store)
    rng = np.random.default_rng(7)

    def create(fork_from: str | None = None) -> str:
        rid = uuid.uuid4().hex
        rec = pb.LogRecord(logged_at_ns=time.time_ns())
        run_info_to_pb(RunInfo(rid, "0", forked_from=fork_from,
                               fork_step=fork_step if fork_from else None), rec.run_create)
        errors = applier.apply([], [rec])
        assert errors == [None], errors
        return rid

    def insert(rid: str, first: int, last: int) -> None:
        per = max(1, 1_000_000 // keys)
        for s0 in range(first, last + 1, per):
            st = np.arange(s0, min(last + 1, s0 + per), dtype=np.int64)
            n = len(st)
            store.insert_metrics(build_insert([DecodedMetrics(
                rid, names, np.repeat(np.arange(keys, dtype=np.int32), n), np.tile(st, keys),
                np.tile(st * 10, keys), rng.normal(size=n * keys))]))

    try:
        t0 = time.perf_counter()
        parent = create()
        insert(parent, 0, steps - 1)
        say(f"parent: {keys * steps:,} points inserted in {time.perf_counter() - t0:.1f}s")
        fork_s, fork_ids, rows = [], [], 0
        for _ in range(forks):
            t = time.perf_counter()
            fork = create(parent)
            rows = len(core.history_page(fork, names[0], page, "")[0])
            fork_s.append(time.perf_counter() - t)
            fork_ids.append(fork)
            say(f"fork + first page ({rows:,} points): {fork_s[-1] * 1000:.0f} ms")
        fork = fork_ids[0]
        insert(fork, fork_step + 1, steps - 1)
        for t_ in ("metrics", "metric_rollup", "metric_summary", "runs"):
            store.client.command(f"OPTIMIZE TABLE {store.db}.{t_} FINAL")  # at rest
        lens = [int(core.downsample([r], names[0], buckets)[0].count.sum())
                for r in (parent, fork)]
        timings: dict[str, list[float]] = {parent: [], fork: []}
        for _ in range(repeat + 1):
            for r in (parent, fork):
                t = time.perf_counter()
                core.downsample([r], names[0], buckets)
                timings[r].append(time.perf_counter() - t)
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return _result(fork_s, timings[parent], timings[fork], {
        "mode": "in process: chDB MetricStore, LogApplier create, QueryCore reads, no RPC",
        "parent_points": keys * steps, "keys": keys, "fork_step": fork_step,
        "first_page_points": rows, "forks_timed": forks, "downsample_buckets": buckets,
        "downsample_points_counted": lens})


def _server_bench(points: int, keys: int, page: int, forks: int, repeat: int,
                  buckets: int, log: Any) -> dict[str, Any]:
    import grpc

    import metricflow as mf
    from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb

    say = log or (lambda m: None)
    steps = points // keys
    names = [f"m{k}" for k in range(keys)]
    fork_step = steps // 2 - 37  # mid-history, inside a 256-step rollup block
    srv = start_server()
    client = mf.Client(srv.uri)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    history = channel.unary_unary(
        "/metricflow.query.v1.QueryService/GetMetricHistory",
        request_serializer=qpb.GetMetricHistoryRequest.SerializeToString,
        response_deserializer=qpb.MetricHistory.FromString)
    try:
        t0 = time.perf_counter()
        parent = client.create_run(run_name="fork-bench-parent").info.run_id
        _log_steps(client, parent, names, 0, steps - 1)
        say(f"parent: {keys * steps:,} points logged in {time.perf_counter() - t0:.1f}s")
        fork_s, page_rows = [], 0
        fork_ids = []
        for _ in range(forks):
            t = time.perf_counter()
            fork = client.create_run(run_name="fork-bench-fork", fork_from=parent,
                                     fork_step=fork_step).info.run_id
            page_rows = _first_page(history, fork, names[0], page)
            fork_s.append(time.perf_counter() - t)
            fork_ids.append(fork)
            say(f"fork + first page ({page_rows:,} points): {fork_s[-1] * 1000:.0f} ms")
        fork = fork_ids[0]
        t0 = time.perf_counter()
        _log_steps(client, fork, names, fork_step + 1, steps - 1)
        say(f"fork's own {keys * (steps - fork_step - 1):,} points logged in "
            f"{time.perf_counter() - t0:.1f}s")
        # both series must be the same length, or the ratio compares different work
        lens = [int(client.downsample_history([r], names[0], buckets)[0].count.sum())
                for r in (parent, fork)]
        timings: dict[str, list[float]] = {parent: [], fork: []}
        for _ in range(repeat + 1):
            for r in (parent, fork):
                t = time.perf_counter()
                client.downsample_history([r], names[0], buckets)
                timings[r].append(time.perf_counter() - t)
        server_rss = srv.rss_mb()[1]
    finally:
        channel.close()
        client.close()
        srv.stop()
    return _result(fork_s, timings[parent], timings[fork], {
        "mode": "metricflow server subprocess (chDB, record log), gRPC client",
        "parent_points": keys * steps, "keys": keys, "fork_step": fork_step,
        "first_page_points": page_rows, "forks_timed": forks, "downsample_buckets": buckets,
        "downsample_points_counted": lens, "server_peak_rss_mb": round(server_rss, 1)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--keys", type=int, default=1)
    ap.add_argument("--page", type=int, default=100_000)
    ap.add_argument("--forks", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--server", action="store_true",
                    help="through a metricflow server subprocess and the client")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args(argv)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    out = run_fork_bench(args.points, args.keys, args.page, args.forks, args.repeat,
                         server=args.server, log=log)
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
