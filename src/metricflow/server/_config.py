"""Typed configuration of server processes, validated at construction."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from metricflow.errors import InvalidArgument
from metricflow.ingest._direct import DirectSinkConfig


@dataclass(frozen=True)
class ServerConfig:
    """Settings of `metricflow server` (embedded all-in-one)."""

    data_dir: str = "./metricflow-data"
    """Where the embedded stores keep their files."""
    host: str = "127.0.0.1"
    """Interface to bind; non-loopback binds should enable auth."""
    grpc_port: int = 50051
    """gRPC port (ingest, query, registry, artifacts); 0 picks a free port."""
    http_port: int = 5000
    """HTTP/JSON port (FastAPI, /metrics, /health); 0 picks a free port, -1 disables HTTP."""
    clickhouse_dsn: str = ""
    """Data plane DSN; default chdb://<data_dir>/clickhouse."""
    database: str = "metricflow"
    """ClickHouse database name."""
    metadata_uri: str = ""
    """Control plane URI; default sqlite:///<data_dir>/metadata.db."""
    artifact_root: str = ""
    """Artifact blob store URI; default file://<data_dir>/artifacts."""
    sink: DirectSinkConfig = field(default_factory=DirectSinkConfig)
    """Group-commit settings of the in-process writer."""
    use_uvloop: bool = True
    """Run the event loop on uvloop."""

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not -1 <= port <= 65535:
                raise InvalidArgument(f"{name} must be in [0, 65535], got {port}", field=name)
        data_dir = os.path.abspath(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        if not self.clickhouse_dsn:
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{data_dir}/clickhouse")
        if not self.metadata_uri:
            object.__setattr__(self, "metadata_uri", f"sqlite:///{data_dir}/metadata.db")
        if not self.artifact_root:
            object.__setattr__(self, "artifact_root", f"file://{data_dir}/artifacts")
