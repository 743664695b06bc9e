"""Typed configuration of server processes, validated at construction."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument
from metricflow.ingest._direct import DirectSinkConfig

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def resolve_auth(auth_mode: str, host: str, auth: AuthConfig) -> AuthConfig:
    """`auth` with `enabled` derived from the mode and the bind address.

    A non-loopback bind gets auth unless the user opted out explicitly (auth_mode=off).
    """
    if auth_mode not in ("auto", "on", "off"):
        raise InvalidArgument(f"auth_mode must be auto, on or off, got {auth_mode!r}",
                              field="auth_mode", received=str(auth_mode)[:20])
    enabled = auth_mode == "on" or (auth_mode == "auto" and host not in LOOPBACK_HOSTS)
    return auth if enabled == auth.enabled else dataclasses.replace(auth, enabled=enabled)


def auth_banner(auth: AuthConfig, host: str) -> str:
    """How the ready line reports auth: on, off on loopback, or explicitly OFF."""
    if auth.enabled:
        return "on"
    if host in LOOPBACK_HOSTS:
        return "off (loopback only)"
    return "OFF (explicitly disabled on a non-loopback bind)"


def security_fields(auth: AuthConfig, host: str, tls_client_ca: str, *,
                    tls: bool) -> dict[str, Any]:
    """The security fields of a ready line: auth (as auth_banner says), tls, mtls."""
    return {"auth": auth_banner(auth, host), "tls": tls, "mtls": bool(tls_client_ca)}


@dataclass(frozen=True)
class SecurityConfig:
    """Auth and TLS of one distributed role (the same settings as `metricflow server`)."""

    host: str = "127.0.0.1"
    """Bind address; decides auth in `auto` mode."""
    auth_mode: str = "auto"
    """auto (on for non-loopback binds, off on loopback), on, or off (explicit opt-out)."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    """Auth settings; `enabled` is derived from auth_mode and host."""
    tls_cert: str = ""
    """PEM certificate for gRPC and HTTP TLS; empty = plaintext."""
    tls_key: str = ""
    """PEM private key of tls_cert."""
    tls_client_ca: str = ""
    """PEM CA; when set, gRPC and HTTPS clients must present a certificate it signed."""
    run_wait_s: float = 5.0
    """How long an authorization waits for a run the data plane does not show yet (Kafka lag)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth", resolve_auth(self.auth_mode, self.host, self.auth))
        if not 0 <= self.run_wait_s <= 120:
            raise InvalidArgument(f"run_wait_s must be in [0, 120], got {self.run_wait_s}",
                                  field="run_wait_s", limit=120, received=self.run_wait_s)
        from metricflow.auth._tls import TlsConfig  # validates the files
        TlsConfig(self.tls_cert, self.tls_key, self.tls_client_ca)

    @property
    def tls(self) -> Any:
        from metricflow.auth._tls import TlsConfig

        return TlsConfig(self.tls_cert, self.tls_key, self.tls_client_ca)


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
    """PEM CA; when set, gRPC and HTTPS clients must present a certificate it signed."""

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not -1 <= port <= 65535:
                raise InvalidArgument(f"{name} must be in [0, 65535], got {port}", field=name)
        object.__setattr__(self, "auth", resolve_auth(self.auth_mode, self.host, self.auth))
        from metricflow.auth._tls import TlsConfig  # validates the files
        TlsConfig(self.tls_cert, self.tls_key, self.tls_client_ca)
        data_dir = os.path.abspath(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        if not self.clickhouse_dsn:
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{data_dir}/clickhouse")
        if not self.metadata_uri:
            object.__setattr__(self, "metadata_uri", f"sqlite:///{data_dir}/metadata.db")
        if not self.artifact_root:
            object.__setattr__(self, "artifact_root", f"file://{data_dir}/artifacts")
