"""deploy/clickhouse/cluster.sql is generated from the single-node schema and is valid SQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metricflow.store._cluster import cluster_sql, cluster_statements, single_node_statements

ROOT = Path(__file__).resolve().parents[3]


def test_committed_cluster_sql_is_fresh() -> None:
    committed = (ROOT / "deploy" / "clickhouse" / "cluster.sql").read_text()
    assert committed == cluster_sql(single_node_statements("metricflow")), (
        "deploy/clickhouse/cluster.sql is stale: run python scripts/gen_cluster_sql.py")


def test_placement_rules() -> None:
    stmts = cluster_statements(single_node_statements("db"))
    assert all("ON CLUSTER '{cluster}'" in s for s in stmts)
    text = "\n".join(stmts)
    # Every run-keyed table: replicated local table plus a front sharded by run.
    for t in ("runs", "params", "tags", "metrics", "metric_summary", "metric_summary_in"):
        assert f"CREATE TABLE IF NOT EXISTS db.{t}_local " in text
        assert f"Distributed('{{cluster}}', db, {t}_local, cityHash64(run_id))" in text
    # Views only touch local tables.
    for s in stmts:
        if "MATERIALIZED VIEW" in s:
            for name in re.findall(r"\bdb\.(\w+)", s.split(" AS ", 1)[1]):
                assert name.endswith("_local"), s
            assert re.search(r"TO db\.\w+_local AS", s), s
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/runs', '{replica}', " \
           "version)" in text


def test_unknown_ddl_is_refused_not_left_single_node() -> None:
    with pytest.raises(ValueError, match="no cluster placement"):
        cluster_statements(["CREATE TABLE IF NOT EXISTS db.x (a Int8) ENGINE = Log"])
    with pytest.raises(ValueError, match="no cluster placement"):
        cluster_statements(["ALTER TABLE db.x ADD COLUMN b Int8"])
