"""The metricflow client SDK: batching gRPC client and the fluent layer."""

from __future__ import annotations

from metricflow.client._accumulator import BufferFull
from metricflow.client._client import Client, open_channel
from metricflow.client._fluent import get_client, get_tracking_uri, set_tracking_uri
from metricflow.client._sync import add_parsers as add_sync_parsers
from metricflow.client._types import (
    DownsampledSeries,
    MetricHistory,
    MetricPoint,
    MetricSummary,
    Run,
    RunInfo,
    series_columns,
)

__all__ = ["BufferFull", "Client", "DownsampledSeries", "MetricHistory", "MetricPoint",
           "MetricSummary", "Run", "RunInfo", "add_sync_parsers", "get_client",
           "get_tracking_uri", "open_channel", "series_columns", "set_tracking_uri"]
