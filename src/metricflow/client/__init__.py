"""The metricflow client SDK: batching gRPC client and the fluent layer."""

from __future__ import annotations

from metricflow.client._accumulator import BufferFull
from metricflow.client._client import Client
from metricflow.client._types import MetricHistory, MetricSummary, Run, RunInfo

__all__ = ["BufferFull", "Client", "MetricHistory", "MetricSummary", "Run", "RunInfo"]
