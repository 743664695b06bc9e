"""Typed configuration of server processes, validated at construction."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument
from metricflow.ingest._direct import DirectSinkConfig

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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
    auth_mode: str = "auto"
    """auto (on for non-loopback binds, off on loopback), on, or off (explicit opt-out)."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    """Auth settings; `enabled` is derived from auth_mode and host."""
    tls_cert: str = ""
    """PEM certificate for gRPC and HTTP TLS; empty = plaintext."""
    tls_key: str = ""
    """PEM private key of tls_cert."""
    tls_client_ca: str = ""
    """PEM CA; when set, gRPC clients must present a certificate it signed (mTLS)."""

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not -1 <= port <= 65535:
                raise InvalidArgument(f"{name} must be in [0, 65535], got {port}", field=name)
        if self.auth_mode not in ("auto", "on", "off"):
            raise InvalidArgument(f"auth_mode must be auto, on or off, got {self.auth_mode!r}",
                                  field="auth_mode")
        # A non-loopback bind gets auth unless the user opted out explicitly (auth_mode=off).
        enabled = self.auth_mode == "on" or (self.auth_mode == "auto"
                                             and self.host not in LOOPBACK_HOSTS)
        if enabled != self.auth.enabled:
            object.__setattr__(self, "auth", dataclasses.replace(self.auth, enabled=enabled))
        from metricflow.auth._tls import TlsConfig  # noqa: PLC0415 - validates the files
        TlsConfig(self.tls_cert, self.tls_key, self.tls_client_ca)
        data_dir = os.path.abspath(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        if not self.clickhouse_dsn:
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{data_dir}/clickhouse")
        if not self.metadata_uri:
            object.__setattr__(self, "metadata_uri", f"sqlite:///{data_dir}/metadata.db")
        if not self.artifact_root:
            object.__setattr__(self, "artifact_root", f"file://{data_dir}/artifacts")
