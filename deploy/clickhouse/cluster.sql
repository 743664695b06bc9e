-- metricflow data plane on a ClickHouse cluster (ON CLUSTER variant).
--
-- Layout: `<table>_local` are Replicated* tables on every replica of every shard;
-- `<table>` are Distributed tables with the names the application uses, sharded by
-- cityHash64(run_id). All rows of a run (and every duplicate of a point) land on one
-- shard, so `SELECT ... FINAL` deduplicates exactly per shard, and the union over
-- shards is exact too. Replace `{cluster}` / `metricflow` as needed; `{shard}` and
-- `{replica}` are server macros (see macros.xml).
--
-- Apply once:  clickhouse-client --multiquery < cluster.sql
-- Writers must insert with distributed_foreground_insert=1 (profile in users.xml) so
-- an insert returns only when the shards have the rows: offsets are committed after it.

CREATE DATABASE IF NOT EXISTS metricflow ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS metricflow.runs_local ON CLUSTER '{cluster}' (
    run_id String, experiment_id String, run_name String, user_id String,
    status LowCardinality(String), start_time Int64, end_time Int64, parent_run_id String,
    lifecycle_stage LowCardinality(String), artifact_uri String, version UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metricflow/runs', '{replica}', version)
ORDER BY run_id;

CREATE TABLE IF NOT EXISTS metricflow.params_local ON CLUSTER '{cluster}' (
    run_id String, key String, value String, version UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metricflow/params', '{replica}', version)
ORDER BY (run_id, key);

CREATE TABLE IF NOT EXISTS metricflow.tags_local ON CLUSTER '{cluster}' (
    run_id String, key String, value String, deleted UInt8, version UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metricflow/tags', '{replica}', version)
ORDER BY (run_id, key);

-- The full point identity is the sort key: a replayed point is the same row.
CREATE TABLE IF NOT EXISTS metricflow.metrics_local ON CLUSTER '{cluster}' (
    run_id LowCardinality(String), key LowCardinality(String), step Int64, timestamp Int64, value Float64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metricflow/metrics', '{replica}')
ORDER BY (run_id, key, step, timestamp, value)
SETTINGS replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS metricflow.metric_summary_local ON CLUSTER '{cluster}' (
    run_id String, key LowCardinality(String),
    last AggregateFunction(argMax, Float64, Tuple(Int64, Int64)),
    last_at SimpleAggregateFunction(max, Tuple(Int64, Int64)),
    min_value SimpleAggregateFunction(min, Float64),
    max_value SimpleAggregateFunction(max, Float64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/metricflow/metric_summary', '{replica}')
ORDER BY (run_id, key);

CREATE TABLE IF NOT EXISTS metricflow.metric_summary_in_local ON CLUSTER '{cluster}' (
    run_id String, key LowCardinality(String), last_step Int64, last_timestamp Int64,
    last_value Float64, min_value Float64, max_value Float64
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS metricflow.metric_summary_mv ON CLUSTER '{cluster}'
TO metricflow.metric_summary_local AS
SELECT run_id, key,
       argMaxState(last_value, (last_step, last_timestamp)) AS last,
       max((last_step, last_timestamp)) AS last_at,
       min(min_value) AS min_value,
       max(max_value) AS max_value
FROM metricflow.metric_summary_in_local
GROUP BY run_id, key;

CREATE TABLE IF NOT EXISTS metricflow.schema_info ON CLUSTER '{cluster}' (
    version UInt32, applied_at DateTime DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metricflow/schema_info', '{replica}')
ORDER BY version;

-- Distributed front tables with the names MetricStore uses.
CREATE TABLE IF NOT EXISTS metricflow.runs ON CLUSTER '{cluster}' AS metricflow.runs_local
ENGINE = Distributed('{cluster}', metricflow, runs_local, cityHash64(run_id));
CREATE TABLE IF NOT EXISTS metricflow.params ON CLUSTER '{cluster}' AS metricflow.params_local
ENGINE = Distributed('{cluster}', metricflow, params_local, cityHash64(run_id));
CREATE TABLE IF NOT EXISTS metricflow.tags ON CLUSTER '{cluster}' AS metricflow.tags_local
ENGINE = Distributed('{cluster}', metricflow, tags_local, cityHash64(run_id));
CREATE TABLE IF NOT EXISTS metricflow.metrics ON CLUSTER '{cluster}' AS metricflow.metrics_local
ENGINE = Distributed('{cluster}', metricflow, metrics_local, cityHash64(run_id));
CREATE TABLE IF NOT EXISTS metricflow.metric_summary ON CLUSTER '{cluster}' AS metricflow.metric_summary_local
ENGINE = Distributed('{cluster}', metricflow, metric_summary_local, cityHash64(run_id));
CREATE TABLE IF NOT EXISTS metricflow.metric_summary_in ON CLUSTER '{cluster}' AS metricflow.metric_summary_in_local
ENGINE = Distributed('{cluster}', metricflow, metric_summary_in_local, cityHash64(run_id));
