"""Every METRICFLOW_* environment variable, declared once with its type and default.

Clients read theirs (TRACKING_URI, TOKEN, TLS_CA, CLIENT_*, EXPERIMENT_NAME) when
they are built. Server processes read theirs in one place only:
`metricflow.app.settings_from_args`, which turns flags and these variables into
the frozen settings tree a process is built from (test fixtures, tests/, read
the `METRICFLOW_TEST_*` ones; see CONTRIBUTING.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class EnvVar(Generic[T]):
    name: str
    type: type
    default: T
    doc: str
    choices: tuple[str, ...] = ()
    """The values a str variable takes (empty: any); others fail naming the variable."""

    @property
    def help(self) -> str:
        """The CLI help of a flag that defaults to this variable."""
        return f"{self.doc} (env {self.name})"

    def get(self) -> T:
        raw = os.environ.get(self.name)
        if raw is None or raw == "":
            return self.default
        if self.type is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")  # type: ignore[return-value]
        if self.choices and raw not in self.choices:
            from metricflow.errors import InvalidArgument

            allowed = ", ".join(repr(c) for c in self.choices)
            raise InvalidArgument(f"{self.name}={raw[:100]!r} is not allowed; use one of "
                                  f"{allowed} ({self.doc})", field=self.name,
                                  received=raw[:200])
        return self.type(raw)  # type: ignore[no-any-return]


TRACKING_URI = EnvVar("METRICFLOW_TRACKING_URI", str, "grpc://127.0.0.1:50051",
                      "Where clients send data: grpc://host:port (grpcs:// for TLS).")
EXPERIMENT_NAME = EnvVar("METRICFLOW_EXPERIMENT_NAME", str, "",
                         "Experiment used by start_run() when set_experiment() was not called.")
DATA_DIR = EnvVar("METRICFLOW_DATA_DIR", str, "./metricflow-data",
                  "Data directory of the embedded server.")
CLIENT_BUFFER_BYTES = EnvVar("METRICFLOW_CLIENT_BUFFER_BYTES", int, 64 * 1024 * 1024,
                             "Bound of a client's unsent metric buffer.")
CLIENT_LINGER_MS = EnvVar("METRICFLOW_CLIENT_LINGER_MS", int, 50,
                          "How long the client waits to fill a batch before sending it.")
CLIENT_BLOCK_TIMEOUT_S = EnvVar("METRICFLOW_CLIENT_BLOCK_TIMEOUT_S", float, 120.0,
                                "How long log_metric waits for buffer space before raising.")
CLIENT_DROP_POLICY = EnvVar("METRICFLOW_CLIENT_DROP_POLICY", str, "block",
                            "when the client's buffer is full: 'block' (default, never lose "
                            "data) or 'drop' (new points are dropped and counted in "
                            "Client.dropped_points)", choices=("block", "drop"))
MODE = EnvVar("METRICFLOW_MODE", str, "online",
              "'offline': clients log only to their spool (METRICFLOW_SPOOL_DIR), for "
              "machines with no server; upload later with `metricflow sync DIR`",
              choices=("online", "offline"))
SPOOL_DIR = EnvVar("METRICFLOW_SPOOL_DIR", str, "",
                   "Directory of the clients' durable spool (docs/resilience.md); empty: "
                   "no spool online, ./metricflow-spool offline.")
SPOOL_MAX_BYTES = EnvVar("METRICFLOW_SPOOL_MAX_BYTES", int, 8 << 30,
                         "Disk budget of one client's spool; past it log calls block, "
                         "then raise (or drop with the drop policy).")
SPOOL_FSYNC_S = EnvVar("METRICFLOW_SPOOL_FSYNC_S", float, 1.0,
                       "fsync interval of the spool in seconds (0: every append; negative: "
                       "never, left to the OS); flush() and close() always fsync.")
SPOOL_THRESHOLD = EnvVar("METRICFLOW_SPOOL_THRESHOLD", float, 0.5,
                         "Spool (instead of waiting in memory) once this share of the client "
                         "buffer is in use.")
SYSTEM_METRICS = EnvVar("METRICFLOW_SYSTEM_METRICS", bool, False,
                        "start_run() samples system metrics (CPU, memory, disk, network, "
                        "GPUs) as system/... metrics.")
SYSTEM_METRICS_INTERVAL_S = EnvVar("METRICFLOW_SYSTEM_METRICS_INTERVAL_S", float, 1.0,
                                   "Sampling interval of system metrics.")
NODE_ID = EnvVar("METRICFLOW_NODE_ID", str, "",
                 "Node id in system metric keys (system/<node>/...); default: the host name.")
API_TOKEN = EnvVar("METRICFLOW_TOKEN", str, "", "Bearer token sent by clients.")
TLS_CA = EnvVar("METRICFLOW_TLS_CA", str, "",
                "PEM file of the CA clients trust for grpcs:// tracking URIs (a private CA); "
                "default: the system roots.")
ARTIFACT_ROOT = EnvVar("METRICFLOW_ARTIFACT_ROOT", str, "",
                       "Artifact store of the query role (file:// or s3://); empty: the "
                       "control plane's default artifact root.")
TAIL_MAX_STREAMS = EnvVar("METRICFLOW_TAIL_MAX_STREAMS", int, 64,
                          "Live tails (gRPC and HTTP) one server process serves at once.")
TAIL_MAX_STREAMS_PER_USER = EnvVar("METRICFLOW_TAIL_MAX_STREAMS_PER_USER", int, 8,
                                   "Live tails one authenticated user may have open at once.")
TAIL_BUFFER_BYTES = EnvVar("METRICFLOW_TAIL_BUFFER_BYTES", int, 4 << 20,
                           "Bytes of points one live tail may hold for its reader.")
TAIL_STALL_S = EnvVar("METRICFLOW_TAIL_STALL_S", float, 30.0,
                      "A live tail whose reader leaves its buffer over half full this long "
                      "is cut off.")
TAIL_MIN_POLL_MS = EnvVar("METRICFLOW_TAIL_MIN_POLL_MS", int, 100,
                          "Smallest poll interval a live tail is served at.")
TAIL_POLL_SHARE = EnvVar("METRICFLOW_TAIL_POLL_SHARE", float, 0.25,
                         "Fraction of one core all live-tail polls together may use.")
QUERY_TIMEOUT_S = EnvVar("METRICFLOW_QUERY_TIMEOUT_S", float, 60.0,
                         "Longest a read of the query API may run in ClickHouse/chDB, in "
                         "seconds (0: no limit); beyond it the request fails with "
                         "DEADLINE_EXCEEDED (HTTP 504) and the query is stopped.")

# ------------------------------------------------------------- server processes
CLICKHOUSE_DSN = EnvVar("METRICFLOW_CLICKHOUSE_DSN", str, "",
                        "Data plane DSN: http://host:8123 or chdb:///abs/path.")
METADATA_URI = EnvVar("METRICFLOW_METADATA_URI", str, "",
                      "Control plane URI (sqlite:///abs/path.db or postgresql+psycopg://...); "
                      "default: sqlite:///<data dir>/metadata.db. Every role must use the "
                      "same one.")
METADATA_READ_URI = EnvVar("METRICFLOW_METADATA_READ_URI", str, "",
                           "Query role: a read replica of the control plane (a PostgreSQL "
                           "standby) for its read-only transactions; writes stay on "
                           "--metadata. Empty: read the primary.")
PARAM_MEMORY_S = EnvVar("METRICFLOW_PARAM_MEMORY_S", float, 300.0,
                        "How long a process serving writes in distributed mode remembers a "
                        "param it accepted while the store does not show it yet.")
KAFKA_BOOTSTRAP = EnvVar("METRICFLOW_KAFKA_BOOTSTRAP", str, "127.0.0.1:9092",
                         "Kafka bootstrap servers (host:port[,host:port]).")
KAFKA_TOPIC = EnvVar("METRICFLOW_KAFKA_TOPIC", str, "metricflow.ingest.v1",
                     "Topic of the ingest log.")
KAFKA_PARTITIONS = EnvVar("METRICFLOW_KAFKA_PARTITIONS", int, 12,
                          "Partitions when the topic is created (upper bound of writers).")
KAFKA_REPLICATION = EnvVar("METRICFLOW_KAFKA_REPLICATION", int, 1,
                           "Replication factor when the topic is created (3 in production).")
KAFKA_COMPRESSION = EnvVar("METRICFLOW_KAFKA_COMPRESSION", str, "lz4",
                           "Producer compression: lz4, zstd, gzip, snappy or none.")
KAFKA_LZ4_LEVEL = EnvVar("METRICFLOW_KAFKA_LZ4_LEVEL", int, 1,
                         "Producer lz4 level, 1 (fast) to 16 (aiokafka's own: 9).")
KAFKA_INFLIGHT_MB = EnvVar("METRICFLOW_KAFKA_INFLIGHT_MB", int, 256,
                           "Bound of produced-but-unacked bytes per ingest node.")
ALERTS_NICE = EnvVar("METRICFLOW_ALERTS_NICE", int, 19,
                     "Alerts role: the nice value of its threads (0-19). It reads every "
                     "point the writers read; at 19 it yields the CPU to the processes "
                     "of its scheduling group (same cgroup and session) on a shared "
                     "machine. 0 where its alerts' latency matters more.")
WRITER_GROUP = EnvVar("METRICFLOW_WRITER_GROUP", str, "metricflow-writer",
                      "Consumer group of the writer role.")
WRITER_MAX_ROWS = EnvVar("METRICFLOW_WRITER_MAX_ROWS", int, 1_000_000,
                         "Insert as soon as this many points are pending.")
WRITER_MAX_MB = EnvVar("METRICFLOW_WRITER_MAX_MB", int, 64,
                       "Insert as soon as this many value MiB are pending (memory bound).")
WRITER_LINGER_MS = EnvVar("METRICFLOW_WRITER_LINGER_MS", int, 200,
                          "Longest wait to fill an insert once its first message arrived.")

# ------------------------------------------------ MLflow's own server variables
# Read under MLflow's names, so a deployment moved from MLflow keeps its limits.
GRAPHQL_MAX_ROOT_FIELDS = EnvVar("MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", int, 10,
                                 "Most root fields in one MLflow GraphQL query (at least 1).")
GRAPHQL_MAX_ALIASES = EnvVar("MLFLOW_SERVER_GRAPHQL_MAX_ALIASES", int, 10,
                             "Most aliases in one MLflow GraphQL query (at least 1).")

# Webhook delivery (metricflow.alerts; docs/alerts.md).
WEBHOOK_MAX_ATTEMPTS = EnvVar("METRICFLOW_WEBHOOK_MAX_ATTEMPTS", int, 6,
                              "Attempts of one webhook delivery before it is a dead letter.")
WEBHOOK_BACKOFF_S = EnvVar("METRICFLOW_WEBHOOK_BACKOFF_S", float, 0.5,
                           "First retry delay of a failed webhook delivery; doubles per "
                           "attempt up to 60 s.")
WEBHOOK_TIMEOUT_S = EnvVar("METRICFLOW_WEBHOOK_TIMEOUT_S", float, 5.0,
                           "Longest wait for a webhook receiver's answer.")
