"""Write deploy/clickhouse/cluster.sql from the single-node schema (store/_schema*.py).

Usage: python scripts/gen_cluster_sql.py [--check]

--check exits 1 when the committed file is stale (tests/unit/store/test_cluster_ddl.py
does the same check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metricflow.store._cluster import cluster_sql, single_node_statements

OUT = Path(__file__).resolve().parent.parent / "deploy" / "clickhouse" / "cluster.sql"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = cluster_sql(single_node_statements("metricflow"))
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run python scripts/gen_cluster_sql.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
