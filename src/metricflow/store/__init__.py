"""Data-plane store (ClickHouse via clickhouse-connect) and its value types."""

from __future__ import annotations

from metricflow.store._metric_store import MetricStore
from metricflow.store._types import MetricSummary, Run, RunInfo

__all__ = ["MetricStore", "MetricSummary", "Run", "RunInfo"]
