"""ClickHouse schema of the data plane.

Per-run tables (runs, params, tags, metric_summary) use 256-row granules and
4-16 KiB compressed blocks: a dashboard page reads ~100 scattered runs, and
each lookup decompresses the blocks that hold its granule. With the default
8,192-row granules a lookup read 8k rows per table; with the default 64 KiB-1 MiB
blocks it still decompressed ~64 KiB per column (figures: docs/query.md, "Per-run
tables").

The same DDL runs on chDB and on a ClickHouse server. `{db}` is replaced by a
checked identifier. Dedup design (see docs/exactly-once.md):
- metrics: ReplacingMergeTree on the full point identity; queries read FINAL,
  so a point delivered twice is shown once even before merges. Its run_id is
  LowCardinality: parts are sorted by run, so dictionaries stay small, and
  inserts (sorted in numpy, see _arrow.py) are cheaper than with a plain String
  column (docs/ingest.md, "Server"). Tables created before keep String; both work.
- runs/tags: versioned rows, the newest version wins. A run's lineage columns
  (forked_from, fork_step, resume_count) tell reads which points make up its
  history (store/_lineage.py).
- params: immutable, the first write wins (version is inverted time).
- metric_rollup: per (run, key, step block) partial aggregates of each
  insert's points, for downsampling without reading every point; exact under
  replays because the reader only trusts blocks whose rows are provably
  disjoint (store/_rollup.py, docs/query.md "Rollup").
"""

from __future__ import annotations

SCHEMA_VERSION = 3
"""Written to schema_info by every ensure_schema. 3: search_unfiled exists and was
filled once from the search tables (store/_schema_query.py `fill_unfiled`)."""

POINT_READ_BLOCKS = "min_compress_block_size = 4096, max_compress_block_size = 16384"
"""Compressed block sizes of the tables read by scattered per-run lookups (see above);
unlike the granule size, they can be changed on an existing table."""
POINT_READ_SETTINGS = f"index_granularity = 256, {POINT_READ_BLOCKS}"
"""Storage settings of the tables read by scattered per-run lookups (see above)."""
POINT_READ_TABLES = ("runs", "params", "tags", "metric_summary")

ROLLUP_SHIFT = 8
"""A rollup block is 2**ROLLUP_SHIFT consecutive steps (block = step >> ROLLUP_SHIFT).

Changing it needs the metric_rollup table rebuilt (drop it: ensure_schema
backfills it from the points)."""

DDL: list[str] = [
    "CREATE DATABASE IF NOT EXISTS {db}",
    """
    CREATE TABLE IF NOT EXISTS {db}.runs (
        run_id String,
        experiment_id String,
        run_name String,
        user_id String,
        status LowCardinality(String),
        start_time Int64,
        end_time Int64,
        parent_run_id String,
        lifecycle_stage LowCardinality(String),
        artifact_uri String,
        version UInt64,
        forked_from String DEFAULT '',
        fork_step Int64 DEFAULT 0,
        resume_count UInt32 DEFAULT 0
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY run_id
    SETTINGS {point_read}
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.params (
        run_id String,
        key String,
        value String,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (run_id, key)
    SETTINGS {point_read}
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.tags (
        run_id String,
        key String,
        value String,
        deleted UInt8,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (run_id, key)
    SETTINGS {point_read}
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.metrics (
        run_id LowCardinality(String),
        key LowCardinality(String),
        step Int64,
        timestamp Int64,
        value Float64
    ) ENGINE = ReplacingMergeTree
    ORDER BY (run_id, key, step, timestamp, value)
    """,
    # Per-run, per-key summary maintained at insert time. Every aggregate here
    # is idempotent (a replayed point changes nothing), so it stays exact.
    """
    CREATE TABLE IF NOT EXISTS {db}.metric_summary (
        run_id String,
        key LowCardinality(String),
        last AggregateFunction(argMax, Float64, Tuple(Int64, Int64)),
        last_at SimpleAggregateFunction(max, Tuple(Int64, Int64)),
        min_value SimpleAggregateFunction(min, Float64),
        max_value SimpleAggregateFunction(max, Float64)
    ) ENGINE = AggregatingMergeTree
    ORDER BY (run_id, key)
    SETTINGS {point_read}
    """,
    # The writer pre-aggregates each insert with numpy (store/_arrow.py) and
    # inserts one row per (run, key) here; the view folds those few rows into
    # metric_summary. A view over every point cost about half of insert time.
    """
    CREATE TABLE IF NOT EXISTS {db}.metric_summary_in (
        run_id String,
        key LowCardinality(String),
        last_step Int64,
        last_timestamp Int64,
        last_value Float64,
        min_value Float64,
        max_value Float64
    ) ENGINE = Null
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.metric_summary_mv TO {db}.metric_summary AS
    SELECT run_id, key,
           argMaxState(last_value, (last_step, last_timestamp)) AS last,
           max((last_step, last_timestamp)) AS last_at,
           min(min_value) AS min_value,
           max(max_value) AS max_value
    FROM {db}.metric_summary_in
    GROUP BY run_id, key
    """,
    # One row per (run, key, block, segment of one insert): a segment is the
    # points of one ingest record (client batch) in one block, so a replayed
    # record gives the same row again (same sort key, collapsed). Sums are
    # over the segment's distinct points. See store/_rollup.py for why reads
    # stay exact when segments of different inserts overlap.
    # Scalars only: wide buckets are whole blocks (query/_rollup_read.py), so
    # no bucket edge needs a block's points. (Rows used to pack them for
    # edges: a second copy of every point, ~1,000 scattered reads a request.)
    """
    CREATE TABLE IF NOT EXISTS {db}.metric_rollup (
        run_id String,
        key LowCardinality(String),
        block Int64,
        first_step Int64,
        first_ts Int64,
        ident UInt64,
        last_step Int64,
        last_ts Int64,
        count UInt64,
        n_finite UInt64,
        n_nan UInt64,
        sum_finite Float64,
        min_value Float64,
        max_value Float64,
        last_value Float64
    ) ENGINE = ReplacingMergeTree
    PRIMARY KEY (run_id, key, block)
    ORDER BY (run_id, key, block, first_step, first_ts, ident)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.schema_info (
        version UInt32,
        applied_at DateTime DEFAULT now()
    ) ENGINE = ReplacingMergeTree ORDER BY version
    """,
]


def ddl_statements(db: str) -> list[str]:
    """DDL with the database name filled in (db must already be checked)."""
    return [s.strip().replace("{db}", db).replace("{point_read}", POINT_READ_SETTINGS)
            for s in DDL]
