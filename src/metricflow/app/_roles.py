"""Roles: each is the set of services it mounts on one gRPC server and one HTTP app.

`metricflow server` mounts every service on the embedded stores. The distributed
roles mount subsets; a gRPC service a role does not mount is forwarded to its
upstream or refused with the name of the role that serves it (server/_forward.py).
A new role is one `Role(...)` line here plus, for a new kind of service, its
component in `_components.py` and its mount in `_mount.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from metricflow.app._settings import ServerConfig
from metricflow.server import ARTIFACTS, INGEST, QUERY, REGISTRY

# Services of the HTTP app (gRPC services are the _forward kinds above).
HTTP_QUERY = "http_query"
"""/api/v1 reads: search, history, downsample, compare, tail (with /docs)."""
HTTP_REGISTRY = "http_registry"
"""/api/v1 experiments and model registry."""
MLFLOW = "mlflow"
"""MLflow REST API and mlflow-artifacts proxy (writes go through the role's sink)."""
WRITER = "writer"
"""The Kafka consumer that applies the log to ClickHouse (with /stats)."""
UI = "ui"
"""The web UI: its page and assets, session routes and /ui-api (needs the query API)."""
ALERTS = "alerts"
"""The alerts role's evaluator on its own Kafka consumer group (the embedded server
evaluates on its sink's commits), with the /api/v1 alerts and webhooks routes."""

GRPC_SERVICES = frozenset({INGEST, QUERY, REGISTRY, ARTIFACTS})
"""The client-facing gRPC services; the rest of a role's set is HTTP-side."""

QUERY_FRONT = frozenset({QUERY, REGISTRY, ARTIFACTS, HTTP_QUERY, HTTP_REGISTRY, MLFLOW, UI})
"""What a process that can read ClickHouse serves to clients (query role)."""
NEEDS_MLFLOW = frozenset({MLFLOW, ARTIFACTS})
"""Dropped by --no-mlflow: the MLflow API and the artifact store it opens."""
NEEDS_METADATA = frozenset({INGEST, QUERY, REGISTRY, MLFLOW, ALERTS})
"""Services that open the control plane (experiments, runs' owners, auth)."""
WRITES = frozenset({INGEST, MLFLOW})
"""Services that write through the process's sink (Kafka when the role has --kafka)."""


@dataclass(frozen=True)
class Role:
    """One kind of process: what it mounts and where it listens by default."""

    name: str
    """The CLI command (`metricflow NAME`) and the `role` of its ready line and `/`."""
    help: str
    """One line for `metricflow --help`."""
    services: frozenset[str]
    """The services it mounts (gRPC kinds and HTTP services above)."""
    grpc_port: int
    """Default --grpc-port."""
    http_port: int
    """Default --http-port."""
    upstreams: tuple[str, ...] = ()
    """Kinds of upstream it can forward to (--query-upstream, --ingest-upstream)."""


ROLES: dict[str, Role] = {r.name: r for r in (
    Role("server", "run everything embedded (chDB, SQLite, local files)",
         QUERY_FRONT | {INGEST}, 50051, 5000),
    Role("ingest", "stateless gRPC ingest node -> Kafka", frozenset({INGEST, REGISTRY}),
         50051, 9100, ("query",)),
    Role("writer", "Kafka consumer group -> ClickHouse", frozenset({WRITER}), 50061, 9101,
         ("ingest",)),
    Role("query", "query service (gRPC + HTTP/JSON + MLflow REST) over ClickHouse",
         QUERY_FRONT, 50071, 5000, ("ingest",)),
    Role("registry", "experiments and model registry (control plane)",
         frozenset({REGISTRY, HTTP_REGISTRY}), 50081, 5001, ("query", "ingest")),
    Role("alerts", "alert rules on the Kafka stream (own consumer group) + webhooks",
         frozenset({ALERTS}), 50091, 9102),
)}
"""Every role, by name."""


def services(settings: ServerConfig) -> frozenset[str]:
    """What a process with `settings` mounts: its role's set, as its flags adjust it."""
    out = ROLES[settings.role].services
    if settings.serve_query:  # writer --serve-query: chDB allows one process per data dir
        out |= QUERY_FRONT
    if not settings.mlflow:
        out -= NEEDS_MLFLOW
    return out


def uses_metadata(settings: ServerConfig) -> bool:
    """The process opens the control plane (`settings.metadata_uri`)."""
    return bool(services(settings) & NEEDS_METADATA)


def uses_kafka(settings: ServerConfig) -> bool:
    """The process produces to or consumes from Kafka (its sink, or the writer)."""
    mounted = services(settings)
    return settings.kafka is not None and bool(mounted & WRITES or WRITER in mounted
                                               or settings.role == "alerts")
