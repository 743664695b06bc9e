"""Chaos benchmark: the Kafka-mode ingest load on a 3-node cluster, one fault of each kind.

    python loadtests/chaos_bench.py --json                     # 300 s
    python loadtests/chaos_bench.py --duration-s 180 --seed 7 --json

Runs what `ingest_bench.py --mode kafka` runs (worker processes calling
`log_metrics` with --keys keys per step through `metricflow ingest` nodes ->
Kafka -> `metricflow writer` -> chDB), paced at --steps-per-s per run instead of
flat out, because this measures loss, recovery and lag, not throughput. The
cluster is a `KafkaCluster` (3 KRaft nodes, replication 3, min.insync.replicas
2). Half of the workers write through ingest node A, which runs in a network
namespace made here (`NetnsLink`: needs root); the rest through ingest node B.

In a random order, each after a random pause, it injects:
- leader_sigkill: SIGKILL of the node leading partition 0 (restarted --node-down-s later);
- rolling_restart: SIGTERM and restart of every node, one at a time, each back in
  sync before the next;
- ingest_writer_sigkill: SIGKILL of ingest node B and the writer, both restarted on
  the same ports (and chDB dir) 2 s later;
- store_outage: every ClickHouse call of the writer fails for --outage-s (chDB runs
  in the writer's process, so this is the fault-injecting launcher's outage; see
  tests/integration/ingest/_writer_launcher.py);
- partition: ingest node A's link to the brokers is cut for --outage-s.

Definitions (also in docs/reliability.md):
- fault end: the kill (leader_sigkill), the last node back in sync
  (rolling_restart), both processes ready again (ingest_writer_sigkill), the store
  back (store_outage), the link back (partition);
- recovery_s: from the fault end until the exact stored count (FINAL) reaches the
  number of points the workers had logged at the fault end: everything logged
  before the fault ended is queryable. Sampled every --poll-s;
- lag_p99_s: the writer's per-message end-to-end lag (record timestamp set by the
  ingest node's producer -> end of the insert that made it queryable, as in
  ingest_bench), p99 within each clean window: from 2 s after a recovery until the
  next fault starts (and from the warm-up until the first). The figure is the
  largest window p99;
- lost / duplicated: per run, max(0, logged - stored) and max(0, stored - logged),
  summed; the stored counts are exact (FINAL), so a duplicate that showed in a
  query would count here.

Prints one JSON line; exits 1 when a point was lost or duplicated or the sum of
values differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "tests" / "integration" / "kafka"))  # the role launcher

from kafka_roles import RoleProc  # noqa: E402 - after the path

from loadtests.ingest_bench import _proc_stats  # noqa: E402

FAULTS = ("leader_sigkill", "rolling_restart", "ingest_writer_sigkill", "store_outage",
          "partition")
_NS_GRPC, _NS_HTTP = 50051, 5000  # the netns ingest node's ports inside its namespace


def _worker(uri: str, idx: int, runs: int, keys: int, steps_per_s: float, go: Any,
            stop: Any, logged: Any, out: Any) -> None:
    import numpy as np

    import metricflow as mf

    client = mf.Client(uri, linger_ms=50, block_timeout_s=600.0)
    run_ids = [client.create_run("0", run_name=f"chaos-{idx}-{r}").run_id for r in range(runs)]
    names = [f"metric_{k:03d}" for k in range(keys)]
    tables = [np.random.default_rng(idx * 100 + r).random((1000, keys)) for r in range(runs)]
    rows = [t.tolist() for t in tables]
    out.put(("ready", idx, run_ids))
    go.wait()
    tick = 0.05
    per_tick = max(1, round(steps_per_s * tick))
    step, next_at = 0, time.monotonic()
    while not stop.is_set():
        for _ in range(per_tick):
            for r in range(runs):
                client.log_metrics(run_ids[r], dict(zip(names, rows[r][step % 1000])),
                                   step=step)
            step += 1
        logged.value = step * keys * runs
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))
    client.flush(timeout=600)
    full, rest = divmod(step, 1000)
    per_run = {rid: (step * keys, float(tables[r].sum()) * full + float(tables[r][:rest].sum()))
               for r, rid in enumerate(run_ids)}
    out.put(("done", idx, {"runs": per_run, "dropped": client.dropped_points,
                           "acked": client._sender.acked_points}))
    client.close()


class Monitor:
    """Polls the exact stored count of the load's runs (a thread)."""

    def __init__(self, reads: Any, run_ids: list[str], interval: float) -> None:
        self.reads, self.run_ids, self.interval = reads, run_ids, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                count = self.reads.count_points(self.run_ids)[0]
                self.samples.append((time.monotonic(), count))  # taken after the read
            except Exception:  # store or writer down: no sample
                pass
            self._stop.wait(self.interval)

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait_reached(self, target: int, after: float, timeout: float) -> float | None:
        """Seconds from `after` until a sample reached `target`; None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, v in list(self.samples):
                if at >= after and v >= target:
                    return at - after
            time.sleep(self.interval / 2)
        return None


class Chaos:
    """The cluster, the roles and the workers of one chaos run."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        from metricflow.devservices import GATEWAY_ADDRESS, KafkaCluster, NetnsLink
        from metricflow.devservices._common import free_port

        self.args, self.stack = args, stack
        self.tmp = Path(tempfile.mkdtemp(prefix="metricflow-chaos-"))
        stack.callback(shutil.rmtree, self.tmp, True)
        self.control = self.tmp / "control"
        self.control.mkdir()
        self.env = {**os.environ, "METRICFLOW_METADATA_URI": f"sqlite:///{self.tmp}/metadata.db"}
        self.env.pop("METRICFLOW_CLICKHOUSE_DSN", None)
        self.topic = f"chaos-{uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        self.cluster = stack.enter_context(KafkaCluster(gateway_host=GATEWAY_ADDRESS))
        self.cluster_start_s = time.monotonic() - t0
        self.link = stack.enter_context(NetnsLink(self.cluster.gateway_ports,
                                                  expose_ports=(_NS_GRPC, _NS_HTTP)))
        self.writer_ports = (free_port(), free_port())
        self.ingest_b_port = free_port()
        self.procs: list[RoleProc] = []
        stack.callback(self._stop_procs)
        self.writer = self._writer()
        self.ingest_a = self._ingest_a()
        self.ingest_b = self._ingest_b()

    def _kafka(self, bootstrap: str) -> list[str]:
        a = self.args
        return ["--kafka", bootstrap, "--topic", self.topic, "--partitions", str(a.partitions),
                "--replication", "3"]

    def _role(self, role: str, args: list[str], log: str, prefix: tuple[str, ...] = ()
              ) -> RoleProc:
        p = RoleProc(role, args, self.control, self.env, self.tmp / log, prefix=prefix)
        self.procs.append(p)
        return p

    def _writer(self) -> RoleProc:
        a, (grpc_port, http_port) = self.args, self.writer_ports
        return self._role("writer", [*self._kafka(self.cluster.bootstrap), "--clickhouse",
                                     f"chdb://{self.tmp}/ch", "--serve-query", "--linger-ms",
                                     str(a.writer_linger_ms), "--max-rows",
                                     str(a.writer_max_rows), "--grpc-port", str(grpc_port),
                                     "--http-port", str(http_port)], "writer.log")

    def _ingest_a(self) -> RoleProc:
        p = self._role("ingest", [*self._kafka(self.cluster.gateway_bootstrap()),
                                  "--compression", self.args.compression,
                                  "--grpc-port", str(_NS_GRPC), "--http-port", str(_NS_HTTP)],
                       "ingest-a.log", prefix=tuple(self.link.exec_prefix()))
        p.grpc_port, p.http_port = self.link.local_port(_NS_GRPC), self.link.local_port(_NS_HTTP)
        return p

    def _ingest_b(self) -> RoleProc:
        return self._role("ingest", [*self._kafka(self.cluster.bootstrap), "--compression",
                                     self.args.compression, "--grpc-port",
                                     str(self.ingest_b_port)], "ingest-b.log")

    def _stop_procs(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                p.stop()

    # ------------------------------------------------------------------ faults
    def leader_sigkill(self) -> tuple[float, float, dict[str, Any]]:
        """(fault start, fault end, facts); the node is restarted later by `after`."""
        c = self.cluster
        leader = c.leader_of(self.topic, 0)
        view = c.describe()
        led = [p.partition for p in view.topic(self.topic) if p.leader == leader] if view else []
        start = time.monotonic()
        c.stop_node(c.index_of(leader), signal.SIGKILL)
        self._restart_node = (c.index_of(leader), start + self.args.node_down_s)
        return start, start, {"node": leader, "partitions_led": led}

    def rolling_restart(self) -> tuple[float, float, dict[str, Any]]:
        start = time.monotonic()
        for i in range(self.cluster.size):
            self.cluster.stop_node(i, signal.SIGTERM)
            self.cluster.start_node(i)
        return start, time.monotonic(), {}

    def ingest_writer_sigkill(self) -> tuple[float, float, dict[str, Any]]:
        start = time.monotonic()
        self.ingest_b.kill()
        self.writer.kill()
        self.procs.remove(self.ingest_b)
        self.procs.remove(self.writer)
        time.sleep(2.0)
        self.ingest_b = self._ingest_b()
        self.writer = self._writer()
        return start, time.monotonic(), {}

    def store_outage(self) -> tuple[float, float, dict[str, Any]]:
        flag = self.control / "outage"
        flag.touch()
        start = time.monotonic()
        time.sleep(self.args.outage_s)
        flag.unlink()
        return start, time.monotonic(), {}

    def partition(self) -> tuple[float, float, dict[str, Any]]:
        self.link.cut()
        start = time.monotonic()
        time.sleep(self.args.outage_s)
        self.link.heal()
        return start, time.monotonic(), {}

    def after(self, kind: str) -> None:
        """Repairs that are not part of the fault itself (the killed leader comes back)."""
        if kind == "leader_sigkill":
            index, at = self._restart_node
            time.sleep(max(0.0, at - time.monotonic()))
            self.cluster.start_node(index)

    def writer_stats(self, reset: bool = False) -> dict[str, Any]:
        return json.loads(self.writer.get("/stats" + ("?reset=true" if reset else "")))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import metricflow as mf

    rng = random.Random(args.seed)
    order = list(FAULTS)
    rng.shuffle(order)
    with contextlib.ExitStack() as stack:
        chaos = Chaos(args, stack)
        reads = mf.Client(chaos.writer.uri)
        stack.callback(reads.close)
        ctx = mp.get_context("spawn")
        go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        counters = [ctx.Value("q", 0) for _ in range(args.workers)]
        uris = [chaos.ingest_a.uri if i % 2 == 0 else chaos.ingest_b.uri
                for i in range(args.workers)]
        procs = [ctx.Process(target=_worker, args=(uris[i], i, args.runs_per_worker, args.keys,
                                                   args.steps_per_s, go, stop, counters[i],
                                                   out)) for i in range(args.workers)]
        for p in procs:
            p.start()
        stack.callback(lambda: [p.kill() for p in procs if p.is_alive()])
        run_ids: list[str] = []
        for _ in procs:
            msg = out.get(timeout=300)
            assert msg[0] == "ready"
            run_ids += msg[2]

        def logged() -> int:
            return sum(c.value for c in counters)

        monitor = Monitor(reads, run_ids, args.poll_s).start()
        stack.callback(monitor.stop)
        t0 = time.monotonic()
        go.set()
        time.sleep(args.warmup_s)
        windows: list[dict[str, Any]] = []
        clean_from = time.monotonic()
        chaos.writer_stats(reset=True)
        faults: list[dict[str, Any]] = []
        # Rough time each fault takes with its recovery on a 2-core machine: the slack
        # left by them is spread over random pauses before each fault.
        est = {"leader_sigkill": args.node_down_s + 20, "rolling_restart": 75.0,
               "ingest_writer_sigkill": 25.0, "store_outage": args.outage_s + 15,
               "partition": args.outage_s + 15}
        for n, kind in enumerate(order):
            left = len(order) - n
            slack = args.duration_s - (time.monotonic() - t0) - sum(est[k] for k in order[n:])
            time.sleep(rng.uniform(2.0, max(2.0, 2 * slack / (left + 1))))
            st = chaos.writer_stats()
            windows.append({"from_s": round(clean_from - t0, 1),
                            "to_s": round(time.monotonic() - t0, 1),
                            "lag_p99_s": round(st["e2e_lag_s"]["p99"], 3),
                            "samples": int(st["e2e_lag_s"]["samples"])})
            start, end, facts = getattr(chaos, kind)()
            target = logged()  # the writer comes back on the same ports: reads reconnect
            recovery = monitor.wait_reached(target, end, args.recovery_timeout_s)
            chaos.after(kind)
            faults.append({"kind": kind, "start_s": round(start - t0, 1),
                           "end_s": round(end - t0, 1),
                           "recovery_s": None if recovery is None else round(recovery, 2),
                           **facts})
            time.sleep(2.0)
            clean_from = time.monotonic()
            chaos.writer_stats(reset=True)
        time.sleep(max(0.0, args.duration_s - (time.monotonic() - t0)))
        st = chaos.writer_stats()
        windows.append({"from_s": round(clean_from - t0, 1),
                        "to_s": round(time.monotonic() - t0, 1),
                        "lag_p99_s": round(st["e2e_lag_s"]["p99"], 3),
                        "samples": int(st["e2e_lag_s"]["samples"])})
        stop.set()
        results = [out.get(timeout=900)[2] for _ in procs]
        for p in procs:
            p.join(60)
        expected: dict[str, tuple[int, float]] = {}
        for r in results:
            expected.update(r["runs"])
        sent = sum(c for c, _ in expected.values())
        deadline = time.monotonic() + args.recovery_timeout_s
        while reads.count_points(list(expected))[0] < sent and time.monotonic() < deadline:
            time.sleep(1.0)
        lost = duplicated = 0
        checksum_ok = True
        stored = 0
        for run_id, (count, total) in expected.items():
            got, got_sum = reads.count_points([run_id])
            stored += got
            lost += max(0, count - got)
            duplicated += max(0, got - count)
            checksum_ok &= abs(got_sum - total) <= 1e-9 * max(1.0, abs(total))
        elapsed = time.monotonic() - t0
        clean = [w for w in windows if w["samples"] > 0]
        max_recovery = {f["kind"]: f["recovery_s"] for f in faults}
        return {
            "points_sent": sent, "points_stored": stored, "lost": lost,
            "duplicated": duplicated, "checksum_ok": checksum_ok,
            "max_recovery_s": max_recovery,
            "lag_p99_s": max((w["lag_p99_s"] for w in clean), default=None),
            "faults": faults, "clean_windows": windows,
            "dropped_points": sum(r["dropped"] for r in results),
            "duration_s": round(elapsed, 1), "cluster_start_s": round(chaos.cluster_start_s, 1),
            "workers": args.workers, "runs_per_worker": args.runs_per_worker, "keys": args.keys,
            "steps_per_s": args.steps_per_s, "partitions": args.partitions,
            "points_per_s_offered": args.workers * args.runs_per_worker * args.keys
            * args.steps_per_s, "seed": args.seed, "outage_s": args.outage_s,
            "writer_peak_rss_mb": round(_proc_stats(chaos.writer.proc.pid)[1], 1),
            "loadavg_end": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration-s", type=float, default=300.0,
                    help="load duration; faults are spread over it (a run that needs "
                         "longer for its faults takes longer)")
    ap.add_argument("--seed", type=int, default=None, help="fault order and times (random)")
    ap.add_argument("--workers", type=int, default=4, help="worker processes; even ones "
                    "write through the partitioned ingest node A")
    ap.add_argument("--runs-per-worker", type=int, default=2)
    ap.add_argument("--keys", type=int, default=10, help="keys per step")
    ap.add_argument("--steps-per-s", type=float, default=100.0, help="per run")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--outage-s", type=float, default=30.0,
                    help="length of the store outage and of the partition")
    ap.add_argument("--node-down-s", type=float, default=15.0,
                    help="how long the SIGKILLed leader stays down")
    ap.add_argument("--warmup-s", type=float, default=10.0)
    ap.add_argument("--poll-s", type=float, default=0.5, help="stored-count sampling period")
    ap.add_argument("--recovery-timeout-s", type=float, default=300.0)
    ap.add_argument("--writer-linger-ms", type=int, default=200)
    ap.add_argument("--writer-max-rows", type=int, default=200_000)
    ap.add_argument("--compression", default="lz4")
    ap.add_argument("--json", action="store_true", help="print one JSON line (default)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    res = run(args)
    print(json.dumps(res))
    ok = res["lost"] == 0 and res["duplicated"] == 0 and res["checksum_ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
