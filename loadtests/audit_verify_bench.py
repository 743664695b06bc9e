"""Audit chain verification on SQLite: how long `metricflow audit verify` takes.

    python loadtests/audit_verify_bench.py --json                       # 1,000,000 entries
    python loadtests/audit_verify_bench.py --entries 100000 --workers 1,2 --json

Writes --entries hash-chained audit entries into a fresh SQLite control plane
(`seed_audit_rows`), then times `verify_chain` once per worker count. Prints one
JSON line: `audit_verify_s` (the fastest of the worker counts, the figure the issue
asks for, target <= 10 s), `entries`, `by_workers` {count: seconds}, `seed_s`, and
the machine's load average when it ran. PostgreSQL is measured by
loadtests/governance_bench.py (G2).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def run(entries: int, workers: list[int]) -> dict[str, object]:
    from metricflow.store.metadata import open_metadata_store, seed_audit_rows, verify_chain

    with tempfile.TemporaryDirectory(prefix="mf-audit-bench-") as tmp:
        store = open_metadata_store(f"sqlite:///{Path(tmp) / 'metadata.db'}")
        try:
            t0 = time.perf_counter()
            seed_audit_rows(store.engine, entries)
            seed_s = time.perf_counter() - t0
            by: dict[str, float] = {}
            total = 0
            for w in workers:
                t0 = time.perf_counter()
                report = verify_chain(store.engine, workers=w)
                by[str(w)] = round(time.perf_counter() - t0, 3)
                if not report.ok:
                    raise SystemExit(f"the seeded chain failed to verify: {report.problem}")
                total = report.entries
        finally:
            store.close()
    return {"audit_verify_s": min(by.values()), "entries": total, "by_workers": by,
            "seed_s": round(seed_s, 3), "load_avg_1m": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    a = p.parse_args()
    workers = [int(w) for w in a.workers.split(",") if w.strip()]
    if a.entries < 1 or not workers or min(workers) < 1:
        raise SystemExit("--entries and every --workers count must be >= 1")
    out = run(a.entries, workers)
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
