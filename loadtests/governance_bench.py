"""Governance benchmark: registry transitions on replicated PostgreSQL, failover, audit, lineage.

    python loadtests/governance_bench.py --json                    # the issue's sizes
    python loadtests/governance_bench.py --duration-s 3 --audit-entries 100000 \\
        --lineage-runs 10000 --lineage-versions 1000 --rtt-ms 0,20 --json   # quick

Prints one JSON line. Top-level keys (issue 21):
- transitions_per_sec: stage transitions and alias moves (half each) acknowledged per
  second by one `metricflow registry` process on PostgreSQL, from --clients (50)
  concurrent HTTP clients spread over --models models, with a synchronous standby
  (synchronous_commit = remote_apply, the standby on loopback). Rounds alternate
  with the next key's configuration on the same servers; the figure is their mean.
- transitions_per_sec_no_standby: the same with synchronous_standby_names cleared
  (the standby still streams, asynchronously; a commit waits for nothing remote).
- failover_lost_acked: operations the registry acknowledged that are missing after
  the primary is SIGKILLed mid-load and the standby promoted (target 0);
  loadtests/_registry_ha.py, the same scenario as the integration test.
- audit_verify_s: `verify_chain(workers=--audit-workers)` (store/metadata/_chain.py)
  over --audit-entries hash-chained audit entries on PostgreSQL (target <= 10 s);
  by default with the processes `metricflow audit verify` would use; details also
  time it with 1 and 2.
- lineage_query_ms: p50 of `lineage(model, version)` over a graph of --lineage-runs
  runs (each with a dataset input) and --lineage-versions model versions (target
  <= 100 ms).
`details` holds latencies, rounds, the failover record, `transitions.store_direct`
(the same load from --store-processes processes calling the store directly, no
HTTP: what PostgreSQL and the store allow without the registry process in the way)
and `cross_region`: per
--rtt-ms round trip to the synchronous standby (a user-space delay relay,
_delay_proxy.py), the p50 latency of one transition from one client and the
throughput with --clients clients.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `loadtests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests._registry_ha import (
    STANDBY,
    Ledger,
    RoleProcess,
    client_loop,
    replicated_postgres,
    run_failover,
    seed_models,
)
from metricflow.devservices import set_sync_standbys, wait_for_sync_standby

THROUGHPUT_KINDS = ("transition", "move")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _load(base: str, names: list[str], versions: int, clients: int, duration_s: float,
          warmup_s: float = 1.0) -> dict[str, float]:
    """--clients threads issuing transitions for warmup + duration; count the window."""
    ledger, stop = Ledger(), threading.Event()
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(base, names, versions, c, ledger, stop),
                                kwargs={"kinds": THROUGHPUT_KINDS})
               for c in range(clients)]
    for t in threads:
        t.start()
    time.sleep(warmup_s)
    t0, n0 = time.monotonic(), ledger.n_acked
    with ledger.lock:
        first = len(ledger.latencies)
    time.sleep(duration_s)
    t1, n1 = time.monotonic(), ledger.n_acked
    with ledger.lock:
        window = ledger.latencies[first:]
        failed = len(ledger.in_doubt)
    stop.set()
    for t in threads:
        t.join(60)
    return {"per_sec": (n1 - n0) / (t1 - t0), "p50_ms": 1000 * _pct(window, 0.5),
            "p99_ms": 1000 * _pct(window, 0.99), "failed": failed}


def _single_client_ms(base: str, names: list[str], versions: int, ops: int) -> float:
    """p50 latency of one transition at a time from one client (no queueing)."""
    ledger, stop = Ledger(), threading.Event()
    t = threading.Thread(target=client_loop, daemon=True,
                         args=(base, names, versions, 0, ledger, stop),
                         kwargs={"kinds": THROUGHPUT_KINDS})
    t.start()
    deadline = time.monotonic() + 120
    while ledger.n_acked < ops + 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(60)
    with ledger.lock:
        return 1000 * _pct(ledger.latencies[3:], 0.5)


def _store_load(uri: str, args: argparse.Namespace, seed: str) -> dict[str, float]:
    """--clients threads in --store-processes processes calling the store directly."""
    procs = max(1, args.store_processes)
    start_at = time.time() + 5.0  # every process has opened its store by then
    cmd = [sys.executable, "-m", "loadtests._store_transitions", uri, str(args.models),
           str(args.versions), str(max(1, args.clients // procs)), str(start_at),
           str(args.duration_s)]
    root = str(Path(__file__).resolve().parents[1])
    running = [subprocess.Popen([*cmd, f"{seed}-{p}"], stdout=subprocess.PIPE, text=True,
                                cwd=root) for p in range(procs)]
    ops = errors = 0
    lat: list[float] = []
    for p in running:
        out, _ = p.communicate(timeout=args.duration_s + 300)
        if p.returncode != 0:
            raise RuntimeError(f"a store worker failed (exit {p.returncode})")
        got = json.loads(out.strip().splitlines()[-1])
        ops, errors = ops + got["ops"], errors + got["errors"]
        lat.extend(got["latencies_ms"])
    return {"per_sec": ops / args.duration_s, "p50_ms": _pct(lat, 0.5),
            "p99_ms": _pct(lat, 0.99), "failed": errors,
            "clients": procs * max(1, args.clients // procs)}


def _set_sync(primary: Any, sync: bool) -> None:
    if sync:
        set_sync_standbys(primary, [STANDBY])
        wait_for_sync_standby(primary, STANDBY)
    else:
        set_sync_standbys(primary, [])


def measure_transitions(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    with replicated_postgres(sync=True) as (primary, _standby):
        role = RoleProcess("registry", ["--metadata", primary.url, "--auth", "off"],
                           work / "registry-throughput.log")
        try:
            names = seed_models(role.http, args.models, args.versions)
            rounds: dict[str, list[dict[str, float]]] = {"sync_standby": [],
                                                         "no_standby": []}
            for _ in range(args.rounds):
                for label in rounds:
                    _set_sync(primary, label == "sync_standby")
                    rounds[label].append(_load(role.http, names, args.versions,
                                               args.clients, args.duration_s))
        finally:
            role.stop()
        direct: dict[str, list[dict[str, float]]] = {"sync_standby": [], "no_standby": []}
        if args.store_processes > 0:
            for r in range(args.rounds):
                for label in direct:
                    _set_sync(primary, label == "sync_standby")
                    direct[label].append(_store_load(primary.url, args, f"{label}{r}"))
    return {"http": rounds, "store_direct": direct}


def measure_cross_region(work: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    for rtt in [float(x) for x in args.rtt_ms.split(",") if x.strip()]:
        with replicated_postgres(sync=True, rtt_ms=rtt) as (primary, _standby):
            role = RoleProcess("registry", ["--metadata", primary.url, "--auth", "off"],
                               work / f"registry-rtt{rtt:g}.log")
            try:
                names = seed_models(role.http, args.models, args.versions)
                one = _single_client_ms(role.http, names, args.versions, 30)
                many = _load(role.http, names, args.versions, args.clients,
                             args.duration_s)
            finally:
                role.stop()
        out.append({"rtt_ms": rtt, "one_client_p50_ms": one,
                    "transitions_per_sec": many["per_sec"], "p50_ms": many["p50_ms"]})
    return out


def measure_audit_verify(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from loadtests._governance_data import audit_verify_seconds

    return audit_verify_seconds(args.audit_entries, workers=args.audit_workers)


def measure_lineage(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from loadtests._governance_data import lineage_query_ms

    return lineage_query_ms(args.lineage_runs, args.lineage_versions, args.lineage_queries)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mf-govbench-"))
    details: dict[str, Any] = {"clients": args.clients, "models": args.models,
                               "duration_s": args.duration_s, "rounds": args.rounds}
    result: dict[str, Any] = {}
    measured = measure_transitions(work, args)
    details["transitions"] = measured
    rounds = measured["http"]
    result["transitions_per_sec"] = statistics.mean(r["per_sec"]
                                                    for r in rounds["sync_standby"])
    result["transitions_per_sec_no_standby"] = statistics.mean(
        r["per_sec"] for r in rounds["no_standby"])
    fo = run_failover(work, clients=10, acks_before_kill=300, acks_after=150)
    result["failover_lost_acked"] = len(fo.lost_acked)
    details["failover"] = {
        "acked_before_kill": fo.acked_before_kill, "acked_total": fo.acked_total,
        "applied_twice": len(fo.applied_twice), "in_doubt": fo.in_doubt,
        "in_doubt_applied": fo.in_doubt_applied, "promote_s": fo.promote_s,
        "writes_back_s": fo.writes_back_s, "registry_survived": fo.registry_survived,
        "bad_version_numbers": len(fo.bad_version_numbers), "audit_chain": fo.audit_chain,
        "new_role_agrees": fo.new_role_agrees}
    for key, fn in (("audit_verify_s", measure_audit_verify),
                    ("lineage_query_ms", measure_lineage)):
        try:
            got = fn(work, args)
        except ImportError as exc:  # the store functions are not in this checkout
            result[key] = None
            details[key] = {"unavailable": str(exc)}
            continue
        result[key] = got.pop("value")
        details[key] = got
    if args.rtt_ms:
        details["cross_region"] = measure_cross_region(work, args)
    result["details"] = details
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--versions", type=int, default=10, help="versions per model")
    ap.add_argument("--duration-s", type=float, default=15.0, help="per round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per configuration")
    ap.add_argument("--store-processes", type=int, default=1,
                    help="details.transitions.store_direct: the --clients threads spread "
                         "over this many processes calling the store without HTTP (0: "
                         "skip; on 2 cores more processes measured slower: CPU-bound)")
    ap.add_argument("--audit-entries", type=int, default=1_000_000)
    ap.add_argument("--audit-workers", type=int, default=0,
                    help="verify_chain processes for audit_verify_s (0: what `metricflow "
                         "audit verify` uses by default; details: 1 and 2 processes too)")
    ap.add_argument("--lineage-runs", type=int, default=100_000)
    ap.add_argument("--lineage-versions", type=int, default=10_000)
    ap.add_argument("--lineage-queries", type=int, default=50)
    ap.add_argument("--rtt-ms", default="0,20,100",
                    help="round trips to the synchronous standby to measure ('' = skip)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one line
        res = run(args)
    if args.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
