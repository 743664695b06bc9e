"""Search-side tables of the data plane, maintained at insert time by materialized views.

Search over millions of runs must filter and sort by a metric, param, tag or
attribute without joining million-row string sets. Each table below is
ordered so that one key is a primary-key range, and runs are named by
`rk UInt128`, the run id's 16 bytes read as a big-endian integer: it is exact
(no hash collisions) and it sorts exactly like the 32-hex-char run id, so the
run-id tiebreak of paging can use it. Sets and joins on a UInt128 are several
times cheaper than on a String.

- search_runs: one row per run state (newest version wins), ordered by rk.
- search_metrics: latest point per (key, run) as max((step, timestamp, value)),
  chained from metric_summary so it costs one row per run and key per insert
  block, not one per point. Idempotent, so replays change nothing.
- search_params / search_tags: one row per (key, run), the same winner rules
  as params (first write) and tags (newest write, `deleted` flag).

Reads use FINAL, so unmerged parts never show a stale or duplicate row.
"""

from __future__ import annotations

RK_EXPR = "reinterpretAsUInt128(reverse(unhex(run_id)))"

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
    ORDER BY rk
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_runs_mv TO {{db}}.search_runs AS
    SELECT {RK_EXPR} AS rk, run_id, experiment_id, run_name, user_id, status, start_time,
           end_time, lifecycle_stage, version
    FROM {{db}}.runs
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_metrics (
        key LowCardinality(String),
        rk UInt128,
        last SimpleAggregateFunction(max, Tuple(Int64, Int64, Float64))
    ) ENGINE = AggregatingMergeTree
    ORDER BY (key, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_metrics_mv TO {{db}}.search_metrics AS
    SELECT key, {RK_EXPR} AS rk,
           max((last_at.1, last_at.2, finalizeAggregation(last))) AS last
    FROM {{db}}.metric_summary
    GROUP BY key, run_id
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_params (
        key LowCardinality(String),
        rk UInt128,
        value String,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (key, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_params_mv TO {{db}}.search_params AS
    SELECT key, {RK_EXPR} AS rk, value, version FROM {{db}}.params
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.search_tags (
        key LowCardinality(String),
        rk UInt128,
        value String,
        deleted UInt8,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (key, rk)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.search_tags_mv TO {{db}}.search_tags AS
    SELECT key, {RK_EXPR} AS rk, value, deleted, version FROM {{db}}.tags
    """,
]
