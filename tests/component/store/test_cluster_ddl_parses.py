"""Every statement of the generated cluster DDL parses in ClickHouse's own parser (chDB)."""

from __future__ import annotations

import json
import subprocess
import sys

from metricflow.store._cluster import cluster_statements, single_node_statements


def test_every_statement_parses_in_clickhouse() -> None:
    stmts = cluster_statements(single_node_statements("metricflow"))
    # ClickHouse's own parser (chDB), in a child: chDB allows one data path per process.
    code = ("import chdb, json, sys\n"
            "c = chdb.connect(':memory:')\n"
            "bad = []\n"
            "for s in json.load(sys.stdin):\n"
            "    try:\n"
            "        c.query('SELECT formatQuery({q:String})', 'TSVRaw', params={'q': s})\n"
            "    except Exception as e:\n"
            "        bad.append((s[:120], str(e)[:300]))\n"
            "print(json.dumps(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(stmts), text=True,
                         capture_output=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []
