"""Search-side tables of the data plane, maintained at insert time by materialized views.

Search over millions of runs must filter and sort by a metric, param, tag or
attribute without joining million-row string sets. Each table below is
ordered so that one key is a primary-key range, and runs are named by
`rk UInt128`, the run id's 16 bytes read as a big-endian integer: it is exact
(no hash collisions) and it sorts exactly like the 32-hex-char run id, so the
run-id tiebreak of paging can use it. Sets and joins on a UInt128 are several
times cheaper than on a String.

- search_runs: one row per run state (newest version wins), ordered by
  (experiment_id, rk): a run never changes experiment, so rk still identifies
  the row, and one experiment's runs are one primary-key range.
- search_run_exp: rk -> experiment_id as an in-memory Join table (filled from
  runs by a view), so the views below can file each row under its run's
  experiment at insert time (`joinGet`).
- search_metrics: latest point per (key, run) as max((step, timestamp, value)),
  chained from metric_summary so it costs one row per run and key per insert
  block, not one per point. Idempotent, so replays change nothing.
- search_params / search_tags: one row per (key, run), the same winner rules
  as params (first write) and tags (newest write, `deleted` flag).
- search_metrics/params/tags are ordered by (key, experiment_id, rk): a search
  scoped to a few experiments reads those experiments' range of one key
  (10k rows of an experiment instead of the key's 1M rows). A row whose run
  was not known when it was inserted (points before the run record; the write
  path orders run records first) is filed under experiment '' and every scoped
  read includes '' (query/_sql.py), so it is never lost.
- search_unfiled: the (kind, key, run) of every row filed under '', written by
  one view per search table. A search reads which keys need folding from this
  (normally empty) table in one small query instead of scanning the
  experiment_id column of all three search tables (figures: docs/query.md).
  Rows filed under '' stay there, so the table only grows; a key listed here
  whose rows are gone costs a fold, never a wrong answer.

Reads use FINAL, so unmerged parts never show a stale or duplicate row.

MetricStore.ensure_schema creates them (every role that opens the store), and
backfills them once, from the base tables, when a data dir predates them.
"""

from __future__ import annotations

from typing import Any

from metricflow.store._schema import ROLLUP_SHIFT


def rk_of(run_id_sql: str) -> str:
    """SQL of the run key (`rk`) of a run id given as SQL text (a column or a bound value)."""
    return f"reinterpretAsUInt128(reverse(unhex({run_id_sql})))"


RK_EXPR = rk_of("run_id")
EXP_EXPR = "joinGet('{db}.search_run_exp', 'experiment_id', rk)"
SEARCH_TABLES = ("search_runs", "search_run_exp", "search_metrics", "search_params",
                 "search_tags", "search_unfiled")
UNFILED_KINDS = ("metrics", "params", "tags")
UNFILED_SCHEMA_VERSION = 3
"""schema_info records this version once search_unfiled was filled (`fill_unfiled`)."""

QUERY_DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.search_runs (
        rk UInt128,
        run_id String,
        experiment_id LowCardinality(String),
        run_name String,
        user_id LowCardinality(String),
        status LowCardinality(String),
        start_time Int64,
        end_time Int64,
        lifecycle_stage LowCardinality(String),
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (experiment_id, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_runs_mv TO {{db}}.search_runs AS
    SELECT {RK_EXPR} AS rk, run_id, experiment_id, run_name, user_id, status, start_time,
           end_time, lifecycle_stage, version
    FROM {{db}}.runs
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_run_exp (
        rk UInt128,
        experiment_id String
    ) ENGINE = Join(ANY, LEFT, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_run_exp_mv TO {{db}}.search_run_exp AS
    SELECT {RK_EXPR} AS rk, experiment_id FROM {{db}}.runs
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_metrics (
        key LowCardinality(String),
        experiment_id LowCardinality(String),
        rk UInt128,
        last SimpleAggregateFunction(max, Tuple(Int64, Int64, Float64))
    ) ENGINE = AggregatingMergeTree
    ORDER BY (key, experiment_id, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_metrics_mv TO {{db}}.search_metrics AS
    SELECT key, {EXP_EXPR} AS experiment_id, rk, last FROM (
        SELECT key, {RK_EXPR} AS rk,
               max((last_at.1, last_at.2, finalizeAggregation(last))) AS last
        FROM {{db}}.metric_summary
        GROUP BY key, run_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_params (
        key LowCardinality(String),
        experiment_id LowCardinality(String),
        rk UInt128,
        value String,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (key, experiment_id, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_params_mv TO {{db}}.search_params AS
    SELECT key, {EXP_EXPR} AS experiment_id, rk, value, version
    FROM (SELECT key, {RK_EXPR} AS rk, value, version FROM {{db}}.params)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_tags (
        key LowCardinality(String),
        experiment_id LowCardinality(String),
        rk UInt128,
        value String,
        deleted UInt8,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (key, experiment_id, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_tags_mv TO {{db}}.search_tags AS
    SELECT key, {EXP_EXPR} AS experiment_id, rk, value, deleted, version
    FROM (SELECT key, {RK_EXPR} AS rk, value, deleted, version FROM {{db}}.tags)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_unfiled (
        kind LowCardinality(String),
        key String,
        rk UInt128
    ) ENGINE = ReplacingMergeTree
    ORDER BY (kind, key, rk)
    """,
    *(f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_unfiled_{kind}_mv
    TO {{db}}.search_unfiled AS
    SELECT '{kind}' AS kind, key, rk FROM {{db}}.search_{kind} WHERE experiment_id = ''
    """ for kind in UNFILED_KINDS),
]


def _exists(client: Any, db: str, table: str) -> bool:
    return bool(client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": db, "t": table}).result_rows[0][0])


def backfill_search(client: Any, db: str) -> None:
    """Fill the search tables from the base tables (data written before they existed)."""
    rk, exp = RK_EXPR, EXP_EXPR.replace("{db}", db)
    client.command(
        f"INSERT INTO {db}.search_runs SELECT {rk}, run_id, experiment_id, run_name, user_id, "
        f"status, start_time, end_time, lifecycle_stage, version FROM {db}.runs")
    client.command(f"INSERT INTO {db}.search_run_exp SELECT {rk}, experiment_id FROM {db}.runs")
    client.command(
        f"INSERT INTO {db}.search_metrics SELECT key, {exp}, rk, last FROM (SELECT key, "
        f"{rk} AS rk, max((last_at.1, last_at.2, finalizeAggregation(last))) AS last "
        f"FROM {db}.metric_summary GROUP BY key, run_id)")
    client.command(f"INSERT INTO {db}.search_params SELECT key, {exp}, rk, value, version "
                   f"FROM (SELECT key, {rk} AS rk, value, version FROM {db}.params)")
    client.command(f"INSERT INTO {db}.search_tags SELECT key, {exp}, rk, value, deleted, "
                   f"version FROM (SELECT key, {rk} AS rk, value, deleted, version "
                   f"FROM {db}.tags)")


def backfill_rollup(client: Any, db: str) -> None:
    """One rollup row per (run, key, block) from the deduplicated points.

    ident 0 marks a backfilled row. Points inserted while this runs may land
    both here and in their own rows; their intervals then intersect, so the
    reader falls back to the points for those blocks (exact either way).
    """
    client.command(f"""
        INSERT INTO {db}.metric_rollup (run_id, key, block, first_step, first_ts, ident,
            last_step, last_ts, count, n_finite, n_nan, sum_finite, min_value, max_value,
            last_value)
        SELECT run_id, key, block, p[1].1, p[1].2, 0, p[-1].1, p[-1].2, length(p), nf, nn,
               sf, mn, mx, p[-1].3
        FROM (
            SELECT run_id, key, bitShiftRight(step, {int(ROLLUP_SHIFT)}) AS block,
                   arraySort(x -> (x.1, x.2, isNaN(x.3), x.3),
                             groupArray((step, timestamp, value))) AS p,
                   toUInt64(countIf(isFinite(value))) AS nf,
                   toUInt64(countIf(isNaN(value))) AS nn,
                   sumIf(value, isFinite(value)) AS sf, min(value) AS mn, max(value) AS mx
            FROM {db}.metrics FINAL
            GROUP BY run_id, key, block)
        SETTINGS optimize_aggregation_in_order = 1""")


def missing_tables(client: Any, db: str) -> set[str]:
    """Which of the backfilled tables do not exist yet (call before creating them).

    Search tables of an older layout (no experiment_id in search_metrics) are
    dropped here, so they are created anew and backfilled.
    """
    if _exists(client, db, "search_metrics") and not client.query(
            "SELECT count() FROM system.columns WHERE database = {db:String} "
            "AND table = 'search_metrics' AND name = 'experiment_id'",
            parameters={"db": db}).result_rows[0][0]:
        for t in SEARCH_TABLES:
            client.command(f"DROP VIEW IF EXISTS {db}.{t}_mv")
        for kind in UNFILED_KINDS:
            client.command(f"DROP VIEW IF EXISTS {db}.search_unfiled_{kind}_mv")
        for t in SEARCH_TABLES:
            client.command(f"DROP TABLE IF EXISTS {db}.{t}")
    return {t for t in ("search_runs", "metric_rollup") if not _exists(client, db, t)}


def backfill(client: Any, db: str, missing: set[str]) -> None:
    """Backfill the tables that `missing_tables` reported, once they are created."""
    if "search_runs" in missing:
        backfill_search(client, db)  # its search rows pass the search_unfiled views
    if "metric_rollup" in missing:
        backfill_rollup(client, db)


def fill_unfiled(client: Any, db: str) -> None:
    """List the rows filed under '' before search_unfiled existed (once per data dir).

    The caller runs it until schema_info records UNFILED_SCHEMA_VERSION, so a crash before the
    end, or a table created empty by the cluster DDL, is filled on the next start.
    Rows already listed collapse (ReplacingMergeTree; reads use DISTINCT). On a
    cluster, search_unfiled is a Distributed table without a sharding key, read
    as the union of its shards: any one shard may hold a row.
    """
    for kind in UNFILED_KINDS:
        client.command(f"INSERT INTO {db}.search_unfiled SELECT '{kind}', key, rk "
                       f"FROM {db}.search_{kind} WHERE experiment_id = '' "
                       "SETTINGS insert_distributed_one_random_shard = 1")
