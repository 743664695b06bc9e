"""The settings tree of a server process: typed, frozen, validated at construction.

One `ServerConfig` describes any process: its role, where it listens, the URIs
of its backends (`_backends.py` picks the implementations), its security and
the settings of the pieces it builds. `settings_from_args` (`_flags.py`) is the
one place that fills it from flags and `METRICFLOW_*` variables; the dataclass
defaults below are the CLI's defaults.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metricflow.auth import AuthConfig, TlsConfig
from metricflow.errors import InvalidArgument
from metricflow.ingest import KafkaSinkConfig, TopicConfig, WriterConfig

if TYPE_CHECKING:
    from metricflow.ingest import DirectSinkConfig
    from metricflow.query import TailLimits

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


@dataclass(frozen=True)
class SecurityConfig:
    """Auth and TLS of one process (`metricflow server` and every role serving clients)."""

    host: str = "127.0.0.1"
    """Bind address of both ports; decides auth in `auto` mode."""
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
        self.tls  # noqa: B018 - validates the files now, not at bind time

    @property
    def tls(self) -> TlsConfig:
        """The certificate files of both ports."""
        return TlsConfig(self.tls_cert, self.tls_key, self.tls_client_ca)

    def ready_fields(self) -> dict[str, str | bool]:
        """The security fields of a ready line: auth (as auth_banner says), tls, mtls."""
        return {"auth": auth_banner(self.auth, self.host), "tls": self.tls.enabled,
                "mtls": bool(self.tls_client_ca)}


@dataclass(frozen=True)
class Upstreams:
    """Where a role forwards the client-facing gRPC services it does not serve."""

    query: str = ""
    """grpc(s)://HOST:PORT of query reads and artifacts (--query-upstream); empty: none."""
    ingest: str = ""
    """grpc(s)://HOST:PORT of ingest writes (--ingest-upstream); empty: none."""
    ca: str = ""
    """PEM CA of the upstreams' TLS certificates (--upstream-ca); empty: the system roots."""


@dataclass(frozen=True)
class KafkaSettings:
    """The Kafka log of the distributed deployment: producer and consumer side."""

    producer: KafkaSinkConfig = field(default_factory=KafkaSinkConfig)
    """How ingest writes (and the MLflow API's writes) are produced; holds the topic."""
    writer: WriterConfig = field(default_factory=WriterConfig)
    """The writer role's consumer group and insert sizes (same topic)."""

    @property
    def topic(self) -> TopicConfig:
        return self.producer.topic


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process: `metricflow server` or a distributed role."""

    role: str = "server"
    """Which services the process mounts (`metricflow.app.ROLES`)."""
    data_dir: str = "./metricflow-data"
    """Where the embedded stores keep their files (and the default control plane)."""
    grpc_port: int = 50051
    """gRPC port (the tracking URI); 0 picks a free port."""
    http_port: int = 5000
    """HTTP port (APIs, /metrics, /health, /ready); 0 picks a free port, -1 disables HTTP."""
    clickhouse_dsn: str = ""
    """Data plane DSN; `metricflow server`: default chdb://<data_dir>/clickhouse; a role:
    empty = no data plane (ingest and registry may run without one)."""
    database: str = "metricflow"
    """ClickHouse database name."""
    metadata_uri: str = ""
    """Control plane URI; default sqlite:///<data_dir>/metadata.db."""
    metadata_read_uri: str = ""
    """Query role: a replica of the control plane for read-only transactions (--metadata-read);
    "" = read the primary."""
    artifact_root: str = ""
    """Artifact blob store URI; `metricflow server`: default file://<data_dir>/artifacts; a
    role: empty = the control plane's default artifact root."""
    sink: DirectSinkConfig = field(default_factory=lambda: _direct_sink_config())
    """Group-commit settings of the in-process writer (`metricflow server`)."""
    kafka: KafkaSettings | None = None
    """The Kafka log; None = writes go to the in-process writer (`metricflow server`)."""
    security: SecurityConfig = field(default_factory=SecurityConfig)
    """Bind address, auth and TLS of both ports."""
    upstreams: Upstreams = field(default_factory=Upstreams)
    """Where services this role does not mount are forwarded."""
    tail: TailLimits = field(default_factory=lambda: _tail_limits())
    """Bounds of the live tails this process serves (METRICFLOW_TAIL_*)."""
    param_memory_s: float = 300.0
    """Kafka path: how long an accepted param is remembered while ClickHouse does not show
    it yet (METRICFLOW_PARAM_MEMORY_S)."""
    mlflow: bool = True
    """Serve the MLflow REST API and artifact proxy where the query API is served."""
    serve_query: bool = False
    """Writer role: also serve the query API from this process (chDB: one process per dir)."""
    use_uvloop: bool = True
    """Run the event loop on uvloop."""

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not -1 <= port <= 65535:
                raise InvalidArgument(f"{name} must be in [0, 65535], got {port}", field=name)
        data_dir = os.path.abspath(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        if not self.metadata_uri:
            object.__setattr__(self, "metadata_uri", f"sqlite:///{data_dir}/metadata.db")
        if self.embedded:  # every store defaults into the data dir
            if not self.clickhouse_dsn:
                object.__setattr__(self, "clickhouse_dsn", f"chdb://{data_dir}/clickhouse")
            if not self.artifact_root:
                object.__setattr__(self, "artifact_root", f"file://{data_dir}/artifacts")

    @property
    def host(self) -> str:
        """The bind address of both ports."""
        return self.security.host

    @property
    def embedded(self) -> bool:
        """`metricflow server`: every role in one process on the embedded stores."""
        return self.role == "server"

    @property
    def sink_uri(self) -> str:
        """Where this process's writes go: `kafka://BOOTSTRAP/TOPIC` or `inproc:`."""
        if self.kafka is None:
            return "inproc:"
        return f"kafka://{self.kafka.topic.bootstrap}/{self.kafka.topic.topic}"


# The in-process writer and the live tails load numpy and pyarrow: only processes that
# build settings pay for them, not `metricflow --help` or `metricflow admin`.
def _direct_sink_config() -> DirectSinkConfig:
    from metricflow.ingest import DirectSinkConfig

    return DirectSinkConfig()


def _tail_limits() -> TailLimits:
    from metricflow.query import TailLimits

    return TailLimits()
