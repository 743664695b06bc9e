"""Write path: the tracking core, the sinks that carry writes to the store, and the writer.

- `TrackingCore(sink, store, metadata, ...)`: runs, params, tags and metric batches,
  validated once, for every front end (gRPC `IngestServicer`, MLflow REST).
- Sinks: `DirectSink` (in-process group commit) and `KafkaSink` (to the ingest log);
  `KafkaWriter` consumes the log into the store. `LogApplier` applies log records
  (protobuf) to the store (typed rows and Arrow) for both.
- `add_to_server(server, IngestServicer(core))` mounts the gRPC service.

Modules load on first attribute access, so `import metricflow.ingest` needs no
Kafka or ClickHouse client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrackingCore": "_core", "RunCache": "_core",
    "IngestSink": "_sink",
    "DirectSink": "_direct", "DirectSinkConfig": "_direct",
    "KafkaSink": "_kafka", "KIND_RECORD": "_kafka", "message_kind": "_kafka",
    "KafkaSinkConfig": "_kafka_config", "TopicConfig": "_kafka_config",
    "WriterConfig": "_kafka_config",
    "KafkaWriter": "_writer",
    "LogApplier": "_applier", "merge_update": "_applier",
    "UpstreamRuns": "_upstream_runs",
    "IngestServicer": "_service", "add_to_server": "_service",
    "random_run_name": "_names",
    "limit_client_errors": "_startup_log",
}

__all__ = [
    "KIND_RECORD", "DirectSink", "DirectSinkConfig", "IngestServicer", "IngestSink", "KafkaSink",
    "KafkaSinkConfig", "KafkaWriter", "LogApplier", "RunCache", "TopicConfig", "TrackingCore",
    "UpstreamRuns", "WriterConfig", "add_to_server", "limit_client_errors", "merge_update",
    "message_kind", "random_run_name",
]

if TYPE_CHECKING:
    from metricflow.ingest._applier import LogApplier, merge_update
    from metricflow.ingest._core import RunCache, TrackingCore
    from metricflow.ingest._direct import DirectSink, DirectSinkConfig
    from metricflow.ingest._kafka import KIND_RECORD, KafkaSink, message_kind
    from metricflow.ingest._kafka_config import KafkaSinkConfig, TopicConfig, WriterConfig
    from metricflow.ingest._names import random_run_name
    from metricflow.ingest._service import IngestServicer, add_to_server
    from metricflow.ingest._sink import IngestSink
    from metricflow.ingest._startup_log import limit_client_errors
    from metricflow.ingest._upstream_runs import UpstreamRuns
    from metricflow.ingest._writer import KafkaWriter


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
