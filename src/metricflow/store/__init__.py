"""Data-plane store (ClickHouse via clickhouse-connect): typed rows and Arrow tables in,
typed values and numpy columns out. It knows nothing of the wire format.

The control-plane (SQL) store is `metricflow.store.metadata`.
"""

from __future__ import annotations

from metricflow.entities import MetricSummary, Run, RunInfo
from metricflow.store._arrow import InsertTables, build_insert
from metricflow.store._lineage import FORK_ROLLUP_IDENT, MAX_FORK_DEPTH, Segment, points_sql
from metricflow.store._metric_store import MetricStore
from metricflow.store._schema import ROLLUP_SHIFT
from metricflow.store._schema_query import rk_of

__all__ = ["FORK_ROLLUP_IDENT", "MAX_FORK_DEPTH", "ROLLUP_SHIFT", "InsertTables", "MetricStore",
           "MetricSummary", "Run", "RunInfo", "Segment", "build_insert", "points_sql", "rk_of"]
