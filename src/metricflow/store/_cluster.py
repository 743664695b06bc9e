"""The ON CLUSTER variant of the data-plane schema, derived from the single-node DDL.

One schema is written (store/_schema.py, store/_schema_query.py); the cluster
layout is a mechanical transform of it, so the two cannot drift apart:

- A MergeTree-family table `T` becomes `T_local`, a Replicated* table on every
  replica of every shard (ZooKeeper/Keeper path per shard), plus `T`, a
  Distributed table with the name the application uses.
- Tables with a `run_id` column are sharded by `cityHash64(run_id)`: every row of
  a run, and every duplicate of a point, lands on one shard, so FINAL
  deduplicates exactly per shard and the union over shards is exact too.
- Tables derived by materialized views and keyed by `rk` (the search tables)
  get no sharding key: the views fill them on the shard that holds the run, and
  the application only reads them through the Distributed table.
- Null tables (insert-only inputs of a view) become `T_local` with a sharded
  Distributed front, so the view runs on the run's shard.
- Tables without a run column (schema_info) stay one replicated table per shard.
- Join tables (search_run_exp, read by `joinGet` in the search views) become a
  plain per-server `T_local` with no Distributed front: each server's views
  fill and read their own. A replica only
  sees the runs inserted through it, so rows of a run inserted through another
  replica are filed under experiment '' (the search folds those, see
  query/_sql.py `unfiled_keys`, which reads search_unfiled through its Distributed
  front, so a key filed under '' on any shard is folded everywhere).
- Materialized views write to and read from the `_local` tables.

Readers must set `distributed_product_mode = 'local'` (deploy/clickhouse/users.xml):
search joins and IN-subqueries combine tables of one run, which share a shard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<db>\w+)\.(?P<name>\w+) \((?P<cols>.*)\)\s*"
    r"ENGINE = (?P<engine>\w+)(?P<args>\([^)]*\))?(?P<tail>.*)$", re.S)
_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<db>\w+)\.(?P<name>\w+) "
    r"TO (?P<tdb>\w+)\.(?P<target>\w+) AS(?P<select>.*)$", re.S)
_DATABASE = re.compile(r"^CREATE DATABASE IF NOT EXISTS (?P<db>\w+)$")


def _has_column(cols: str, name: str) -> bool:
    return re.search(rf"(^|,)\s*{name}\s", cols) is not None


def cluster_statements(statements: Sequence[str], cluster: str = "{cluster}") -> list[str]:
    """The ON CLUSTER DDL for single-node `statements` (as ddl_statements returns them).

    Raises ValueError on a statement it does not know how to place, so a new kind
    of DDL cannot silently stay single-node.
    """
    on = f"ON CLUSTER '{cluster}'"
    local: set[str] = set()  # tables renamed to <name>_local
    out: list[str] = []
    for stmt in (" ".join(s.split()) for s in statements):
        if m := _DATABASE.match(stmt):
            out.append(f"CREATE DATABASE IF NOT EXISTS {m['db']} {on}")
        elif m := _TABLE.match(stmt):
            out.extend(_table(m, on, cluster, local))
        elif m := _VIEW.match(stmt):
            select = m["select"]
            for name in sorted(local, key=len, reverse=True):
                select = re.sub(rf"\b{m['db']}\.{name}\b", f"{m['db']}.{name}_local", select)
            target = f"{m['target']}_local" if m["target"] in local else m["target"]
            out.append(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {m['db']}.{m['name']} {on} "
                       f"TO {m['tdb']}.{target} AS{select}")
        else:
            raise ValueError(f"no cluster placement for DDL: {stmt[:80]!r}")
    return out


def _table(m: re.Match[str], on: str, cluster: str, local: set[str]) -> list[str]:
    db, name, cols, engine = m["db"], m["name"], m["cols"], m["engine"]
    args, tail = (m["args"] or "").strip("()"), m["tail"]
    if engine == "Join":
        local.add(name)
        return [f"CREATE TABLE IF NOT EXISTS {db}.{name}_local {on} ({cols}) "
                f"ENGINE = Join({args}){tail}"]
    if engine == "Null":
        replicated = f"Null{tail}"
    elif engine.endswith("MergeTree"):
        zk = f"'/clickhouse/tables/{{shard}}/{db}/{name}', '{{replica}}'"
        replicated = f"Replicated{engine}({zk}{', ' + args if args else ''}){tail}"
    else:
        raise ValueError(f"no cluster placement for engine {engine} of table {name}")
    if _has_column(cols, "run_id"):
        key = ", cityHash64(run_id)"
    elif _has_column(cols, "rk"):
        key = ""
    else:  # bookkeeping (schema_info): one replicated table per shard
        return [f"CREATE TABLE IF NOT EXISTS {db}.{name} {on} ({cols}) ENGINE = {replicated}"]
    local.add(name)
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.{name}_local {on} ({cols}) ENGINE = {replicated}",
        f"CREATE TABLE IF NOT EXISTS {db}.{name} {on} AS {db}.{name}_local "
        f"ENGINE = Distributed('{cluster}', {db}, {name}_local{key})",
    ]


def check_cluster_layout(client: Any, db: str, statements: Sequence[str]) -> None:
    """Refuse to add single-node tables or views to a database with the cluster layout.

    Roles run the single-node DDL at start (`CREATE ... IF NOT EXISTS`). On a cluster
    every object exists already, so that changes nothing; an object a newer build
    adds would be created single-node on one server only, and its views would read
    the Distributed fronts, which never receive inserts. So it must come from
    deploy/clickhouse/cluster.sql first.
    """
    rows = client.query("SELECT name FROM system.tables WHERE database = {db:String}",
                        parameters={"db": db}).result_rows
    have = {r[0] for r in rows}
    if "runs_local" not in have:
        return  # single node
    want = [m["name"] for s in statements
            if (m := _TABLE.match(" ".join(s.split())) or _VIEW.match(" ".join(s.split())))]
    absent = [n for n in want if n not in have and f"{n}_local" not in have]
    if absent:
        raise RuntimeError(
            f"database {db} has the cluster layout but lacks {', '.join(absent)}: apply "
            "deploy/clickhouse/cluster.sql (ON CLUSTER; it creates only what is missing) "
            "before starting this version")


def single_node_statements(db: str) -> list[str]:
    """Every DDL statement MetricStore.ensure_schema runs, in order."""
    from metricflow.store._schema import ddl_statements
    from metricflow.store._schema_query import QUERY_DDL

    return ddl_statements(db) + [s.strip().replace("{db}", db) for s in QUERY_DDL]


def cluster_sql(statements: Sequence[str]) -> str:
    """deploy/clickhouse/cluster.sql: the statements, one per paragraph."""
    header = (
        "-- GENERATED by scripts/gen_cluster_sql.py from store/_schema*.py; do not edit.\n"
        "-- The data-plane schema on a ClickHouse cluster: Replicated `<table>_local` tables\n"
        "-- on every replica of every shard, Distributed `<table>` fronts sharded by run\n"
        "-- (see src/metricflow/store/_cluster.py for the placement rules).\n"
        "-- `{cluster}`, `{shard}` and `{replica}` are server macros (macros.example.xml).\n"
        "-- Apply once, before any data:  clickhouse-client --multiquery < cluster.sql\n"
        "-- Users need the metricflow profile of users.xml (foreground distributed inserts,\n"
        "-- distributed_product_mode = 'local').\n"
    )
    return header + "".join(f"\n{s};\n" for s in cluster_statements(statements))
