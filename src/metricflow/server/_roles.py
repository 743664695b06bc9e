"""Distributed roles of the `metricflow` CLI: ingest, writer, query, registry.

Each role is one process with a gRPC port (its service plus the standard gRPC
health protocol) and an HTTP port with Prometheus `/metrics`, `/health`
(liveness) and `/ready` (readiness). On start a role prints one JSON line
`{"event": "ready", "role": ..., "grpc_port": ..., "http_port": ...}`.

    metricflow ingest   --kafka HOST:9092 --metadata postgresql+psycopg://...
    metricflow writer   --kafka HOST:9092 --clickhouse http://ch:8123
    metricflow query    --clickhouse http://ch:8123 --metadata postgresql+psycopg://...
    metricflow registry --metadata postgresql+psycopg://...

One tracking URI: every role puts a `ForwardInterceptor` (_forward.py) in front
of its gRPC services. The control-plane services (experiments, model registry)
are served by every role that serves clients, from `--metadata`; query reads and
artifacts are forwarded to `--query-upstream`, ingest writes to
`--ingest-upstream`; a call with nowhere to go names the role that serves it.

Roles that serve clients (ingest, query, registry, and a writer with
`--serve-query`) take the same security flags as `metricflow server`: `--auth
auto|on|off` (auto = on for non-loopback binds), `--tls-cert/--tls-key`,
`--tls-client-ca` (mTLS on gRPC and HTTPS). Tokens and grants live in the
control-plane store (`--metadata`). The standard gRPC health service and the
HTTP probes (/health, /ready) stay open; so do the writer's and the ingest
node's ops endpoints (/metrics carries no client data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from metricflow import _env

log = logging.getLogger(__name__)
Ready = Callable[[], bool]


class NoRunLookup:
    """Run lookups for an ingest node without ClickHouse access: every run is unknown.

    Ingest then runs with strict_runs=False; the writer still rejects params and
    tags of missing or deleted runs when it applies them. Lifecycle calls, parents
    and stored params are read through --query-upstream when given (UpstreamRuns).
    """

    sees_all_runs = False

    def get_run_infos(self, run_ids: Any) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


@dataclass
class RoleParts:
    """What a role's setup hands to `_run_role`."""

    register: Callable[[Any], None]
    """Adds the role's gRPC services to a server."""
    app: Any
    """The HTTP app (already wrapped by the auth layer where it serves clients)."""
    ready: Ready
    shutdown: Callable[[], Awaitable[None]]
    interceptors: list[Any] = field(default_factory=list)
    """gRPC server interceptors (the auth guard)."""
    tls: Any = None
    """TlsConfig of both ports, or None for plaintext."""
    serves: frozenset[str] = frozenset()
    """Kinds of client-facing services mounted here (_forward.SERVICE_KIND values)."""
    guard: Any = None
    """The auth Guard (authenticates calls this role forwards), or None without auth."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What the app's `/` reports; `_run_role` adds the bound ports."""


class MlflowBackend:
    """What the MLflow REST routes need from a query process (see mlflow_compat.Compat)."""

    def __init__(self, **parts: Any) -> None:
        self.store = parts["store"]
        self.metadata = parts["metadata"]
        self.metadata_view = parts["metadata_view"]
        self.artifacts = parts["artifacts"]
        self.tracking = parts["tracking"]
        self.query = parts["query"]
        self.auth = parts["auth"]
        self.config = argparse.Namespace(artifact_root=parts["artifact_root"])


# ------------------------------------------------------------------- plumbing
async def _serve_grpc(host: str, port: int, register: Callable[[Any], None],
                      ready: Ready, interceptors: list[Any] | None = None,
                      tls: Any = None) -> tuple[Any, int, asyncio.Task[None]]:
    """A grpc.aio server with `register`ed services plus health, kept in sync with `ready`."""
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from metricflow.auth._tls import grpc_server_credentials
    from metricflow.server._embedded import grpc_options

    server = grpc.aio.server(options=grpc_options(), interceptors=interceptors or None)
    register(server)
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    addr = f"{host}:{port}"
    bound = (server.add_secure_port(addr, grpc_server_credentials(tls))
             if tls is not None and tls.enabled else server.add_insecure_port(addr))
    await server.start()

    async def track() -> None:
        last = None
        while True:
            ok = ready()
            if ok != last:
                status = (health_pb2.HealthCheckResponse.SERVING if ok
                          else health_pb2.HealthCheckResponse.NOT_SERVING)
                await hs.set("", status)
                last = ok
            await asyncio.sleep(0.5)

    return server, bound, asyncio.ensure_future(track())


def role_index(args: argparse.Namespace) -> dict[str, Any]:
    """The facts a role's `/` starts from (ports are added once bound)."""
    return {"role": getattr(args, "command", None) or "role"}


def _ops_app(ready: Ready, stats: Callable[[bool], dict[str, Any]] | None = None,
             facts: dict[str, Any] | None = None, api: bool = False) -> Any:
    """FastAPI app with /, /health, /ready, /metrics (and /stats when given).

    `api`: the app will also serve an API (the registry's), so it gets `/docs`;
    otherwise `/api/...` answers 404 with where the HTTP APIs are served.
    """
    from fastapi import FastAPI  # server extra
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from metricflow.server._index import add_apis_elsewhere, add_index_and_docs

    app = FastAPI(title="metricflow", docs_url=None, redoc_url=None)
    add_index_and_docs(app, facts if facts is not None else {}, docs=api)

    @app.get("/health")
    async def health_() -> dict[str, str]:
        return {"status": "ok"}

    # response_model=None: the Response annotation is a local import, which the OpenAPI
    # schema (served when the auth layer wraps this app) could not resolve.
    @app.get("/ready", response_model=None)
    async def ready_() -> Response:
        ok = bool(ready())
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/metrics", response_model=None)
    async def metrics_() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _add_stats(app, stats)
    if not api:
        add_apis_elsewhere(app, facts or {})
    return app


def _add_stats(app: Any, stats: Callable[[bool], dict[str, Any]] | None) -> None:
    if stats is not None:
        @app.get("/stats")
        async def stats_(reset: bool = False) -> dict[str, Any]:
            return stats(reset)


async def _serve_http(app: Any, host: str, port: int,
                      tls: Any = None) -> tuple[Any, int, asyncio.Task[None]]:
    import uvicorn

    from metricflow.auth._tls import uvicorn_ssl_options

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    ssl = uvicorn_ssl_options(tls) if tls is not None else {}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **ssl))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, sock.getsockname()[1], task


async def _run_role(role: str, args: argparse.Namespace,
                    setup: Callable[[], Awaitable[RoleParts]]) -> None:
    """Start a role from the parts its setup() builds; stop on SIGINT/SIGTERM."""
    parts = await setup()
    from metricflow.server._forward import forwarder_from_args

    forward = forwarder_from_args(role, args, parts.serves, parts.guard)
    grpc_server, grpc_port, health_task = await _serve_grpc(
        args.host, args.grpc_port, parts.register, parts.ready,
        [forward, *parts.interceptors], parts.tls)
    http, http_port, http_task = await _serve_http(parts.app, args.host, args.http_port,
                                                   parts.tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    info: dict[str, Any] = {"event": "ready", "role": role, "grpc_port": grpc_port,
                            "http_port": http_port, "pid": os.getpid(),
                            "serves": sorted(forward.local),
                            "forwards": {k: u.uri for k, u in sorted(forward.upstreams.items())}}
    parts.facts.update({k: info[k] for k in ("role", "grpc_port", "serves", "forwards")})
    sec = getattr(args, "security", None)
    if sec is not None:
        from metricflow.server._config import auth_banner

        info.update(auth=auth_banner(sec.auth, args.host), tls=sec.tls.enabled,
                    mtls=bool(sec.tls_client_ca))
    print(json.dumps(info), flush=True)
    await stop.wait()
    log.info("%s stopping", role)
    health_task.cancel()
    await grpc_server.stop(5.0)
    await forward.close()
    await parts.shutdown()
    from metricflow.server._embedded import stop_uvicorn

    await stop_uvicorn(http, http_task)


def _control_plane(auth: Any, metadata: Any) -> tuple[Callable[[Any], None], Any]:
    """Experiments and model registry over `metadata`: (gRPC register, HTTP router)."""
    from metricflow.registry import add_to_server, registry_router

    view = auth.metadata_view(metadata)
    hooks = auth.actor_hooks()
    router = registry_router(view, **({"actor_of": hooks["http"]} if hooks else {}))
    return (lambda s: add_to_server(s, view, **({"actor_of": hooks["grpc"]} if hooks else {})),
            router)


def _open_metadata(uri: str) -> Any:
    from metricflow.store.metadata import open_metadata_store

    return open_metadata_store(uri)


# ----------------------------------------------------------------------- roles
def _topic(args: argparse.Namespace) -> Any:
    from metricflow.ingest._kafka_config import TopicConfig

    return TopicConfig(bootstrap=args.kafka, topic=args.topic, partitions=args.partitions,
                       replication=args.replication)


def _security(args: argparse.Namespace) -> Any:
    """SecurityConfig from the role's flags (validated: bad modes and files fail at start)."""
    from metricflow.auth._types import AuthConfig
    from metricflow.server._config import SecurityConfig

    sec = SecurityConfig(
        host=args.host, auth_mode=args.auth, tls_cert=args.tls_cert or "",
        tls_key=args.tls_key or "", tls_client_ca=args.tls_client_ca or "",
        run_wait_s=args.auth_run_wait_s,
        auth=AuthConfig(default_permission=args.default_permission,
                        rate_limit_per_s=args.rate_limit,
                        cert_admin_users=frozenset(args.cert_admin_user or ())))
    args.security = sec
    return sec


def _ingest(args: argparse.Namespace) -> int:
    sec = _security(args)

    async def setup() -> RoleParts:
        from metricflow.auth._server import build_server_auth
        from metricflow.ingest import _service as ingest_service
        from metricflow.ingest._kafka import KafkaSink
        from metricflow.ingest._kafka_config import KafkaSinkConfig
        from metricflow.store._metric_store import MetricStore

        metadata = await asyncio.to_thread(_open_metadata, args.metadata)
        data_plane = MetricStore(args.clickhouse, args.database) if args.clickhouse else None
        # Authorization needs run -> experiment. With --clickhouse it is looked up there
        # (waiting up to --auth-run-wait-s for runs the writer has not applied yet);
        # without it only runs created through this node are known (a bounded cache).
        auth = build_server_auth(sec.auth, metadata, data_plane,
                                 run_wait_s=sec.run_wait_s if data_plane is not None else 0.0)
        if auth.enabled and data_plane is None:
            log.warning("ingest: auth is on without --clickhouse; only runs created through "
                        "this node can be authorized for writes")
        sink = KafkaSink(KafkaSinkConfig(topic=_topic(args), compression=args.compression,
                                         lz4_level=args.lz4_level,
                                         max_inflight_bytes=args.inflight_mb * 2**20,
                                         request_timeout_ms=args.produce_timeout_ms))
        await sink.start()
        store: Any = data_plane if data_plane is not None else NoRunLookup()
        upstream = None
        if data_plane is None and args.query_upstream:
            from metricflow.ingest._upstream_runs import UpstreamRuns
            from metricflow.server._forward import Upstream

            upstream = UpstreamRuns.from_upstream(
                Upstream.parse(args.query_upstream, args.upstream_ca))
        servicer = ingest_service.IngestServicer(sink, store, metadata, strict_runs=False,
                                                 upstream=upstream,
                                                 run_wait_s=sec.run_wait_s)
        control, _router = _control_plane(auth, metadata)

        def register(s: Any) -> None:
            ingest_service.add_to_server(s, servicer)
            control(s)

        async def shutdown() -> None:
            await sink.close()
            metadata.close()
            store.close()
            if upstream is not None:
                upstream.close()

        from metricflow.server._forward import INGEST, REGISTRY

        facts = role_index(args)
        return RoleParts(register, _ops_app(lambda: sink.ready, facts=facts),
                         lambda: sink.ready, shutdown, auth.interceptors(), sec.tls,
                         frozenset({INGEST, REGISTRY}), auth.guard, facts)

    _loop(_run_role("ingest", args, setup), args)
    return 0


async def _query_front(args: argparse.Namespace, store: Any, metadata: Any,
                       ready: Ready | None = None,
                       stats: Callable[[bool], dict[str, Any]] | None = None) -> RoleParts:
    """The query API of a process that can read ClickHouse (query role, writer --serve-query).

    One QueryCore (caller-scoped when auth is on) serves gRPC, /api/v1 and the MLflow
    REST API; MLflow writes go through a TrackingCore over a KafkaSink, so the writers
    apply them like any other client's. Experiments and the model registry are served
    from `metadata` (gRPC and /api/v1), artifacts (gRPC) from the MLflow API's store.
    Returns the parts of the role except `ready`.
    """
    from metricflow.auth._server import build_server_auth
    from metricflow.query import _service as query_service
    from metricflow.server import _forward as fw
    from metricflow.server._http import create_app

    sec = args.security
    auth = build_server_auth(sec.auth, metadata, store, run_wait_s=sec.run_wait_s)
    core = await asyncio.to_thread(auth.query_core, store, metadata)
    view = auth.metadata_view(metadata)
    control, registry_routes = _control_plane(auth, metadata)
    closers: list[Callable[[], Awaitable[None]]] = []
    routers: list[Any] = [registry_routes]
    artifacts: Any = None
    if not args.no_mlflow:
        mlflow, artifacts, close = await _mlflow_routers(args, store, metadata, view, core,
                                                         auth)
        routers += mlflow
        closers.append(close)
    facts = role_index(args)
    app = create_app(core, extra_routers=routers, ready=ready, index=facts)
    _add_stats(app, stats)
    app = auth.secure_http(app)

    def register(s: Any) -> None:
        query_service.add_to_server(s, core)
        control(s)
        if artifacts is not None:
            from metricflow.artifacts import add_to_server

            add_to_server(s, artifacts)

    async def close_all() -> None:
        for c in closers:
            await c()

    serves = {fw.QUERY, fw.REGISTRY} | ({fw.ARTIFACTS} if artifacts is not None else set())
    return RoleParts(register, app, ready or (lambda: True), close_all, auth.interceptors(),
                     sec.tls, frozenset(serves), auth.guard, facts)


async def _mlflow_routers(args: argparse.Namespace, store: Any, metadata: Any, view: Any,
                          core: Any, auth: Any
                          ) -> tuple[list[Any], Any, Callable[[], Awaitable[None]]]:
    """MLflow REST + mlflow-artifacts routers; writes go to Kafka through a TrackingCore.

    Returns (routers, the ArtifactStore, close).
    """
    from metricflow.artifacts import ArtifactStore, open_blob_store
    from metricflow.ingest._core import TrackingCore
    from metricflow.ingest._kafka import KafkaSink
    from metricflow.ingest._kafka_config import KafkaSinkConfig
    from metricflow.mlflow_compat import routers

    root = args.artifacts or getattr(getattr(metadata, "_config", None),
                                     "default_artifact_root", "")
    if not root:
        raise SystemExit("the MLflow API needs --artifacts (artifact store URI)")
    artifacts = ArtifactStore(open_blob_store(root))
    sink = KafkaSink(KafkaSinkConfig(topic=_topic(args)))
    await sink.start()
    # Kafka mode: a run created a moment ago may not be in ClickHouse yet (strict_runs off);
    # the writer still rejects params and tags of missing or deleted runs.
    tracking = TrackingCore(sink, store, metadata, strict_runs=False,
                            run_wait_s=args.security.run_wait_s)
    backend = MlflowBackend(store=store, metadata=metadata, metadata_view=view,
                            artifacts=artifacts, tracking=tracking, query=core, auth=auth,
                            artifact_root=root)

    async def close() -> None:
        await sink.close()
        artifacts.close()

    return list(routers(backend)), artifacts, close


_SECURITY_FLAGS = (("auth", "--auth", "auto"), ("default_permission", "--default-permission",
                   "READ"), ("rate_limit", "--rate-limit", 0.0), ("tls_cert", "--tls-cert", None),
                   ("tls_key", "--tls-key", None), ("tls_client_ca", "--tls-client-ca", None),
                   ("auth_run_wait_s", "--auth-run-wait-s", 5.0),
                   ("cert_admin_user", "--cert-admin-user", None),
                   ("ingest_upstream", "--ingest-upstream", None),
                   ("upstream_ca", "--upstream-ca", None))


def writer_flag_errors(args: argparse.Namespace) -> str:
    """Why the writer's security flags cannot apply ("" if they can).

    Without --serve-query the writer serves no client API; a security flag would
    be silently ignored and its ops port (/metrics, /stats) left plaintext and open.
    """
    if args.serve_query:
        return ""
    given = [flag for attr, flag, default in _SECURITY_FLAGS
             if getattr(args, attr, default) != default]
    if not given:
        return ""
    verb = "applies" if len(given) == 1 else "apply"
    return (f"metricflow writer: {', '.join(given)} only {verb} with --serve-query; without "
            "it the writer serves no client API and its ops port (/health, /ready, /metrics, "
            "/stats) has no auth or TLS: bind it to a private network instead")


def _writer(args: argparse.Namespace) -> int:
    if (err := writer_flag_errors(args)):
        raise SystemExit(err)
    if args.serve_query:
        _security(args)

    async def setup() -> RoleParts:
        from metricflow.ingest._kafka_config import WriterConfig
        from metricflow.ingest._writer import KafkaWriter
        from metricflow.store._metric_store import MetricStore

        store = MetricStore(args.clickhouse, args.database)
        await asyncio.to_thread(store.ensure_schema)
        writer = KafkaWriter(store, WriterConfig(
            topic=_topic(args), group_id=args.group, max_rows=args.max_rows,
            max_bytes=args.max_mb * 2**20, linger_ms=args.linger_ms))

        def stats(reset: bool) -> dict[str, Any]:
            out = {"points_written": writer.points_written,
                   "messages_written": writer.messages_written,
                   "consumer_lag": writer.consumer_lag, "in_backoff": not writer.ready,
                   "peak_pending_bytes": writer.peak_pending_bytes,
                   "e2e_lag_s": writer.lags.quantiles()}
            if reset:
                writer.lags.reset()
            return out

        facts = role_index(args)
        parts = RoleParts(lambda s: None, _ops_app(lambda: writer.ready, stats, facts=facts),
                          lambda: writer.ready, writer.stop, facts=facts)
        metadata = None
        close_front: Callable[[], Awaitable[None]] | None = None
        if args.serve_query:
            # chDB allows one process per data dir: serve reads from the writer's process,
            # with the query role's auth, TLS and MLflow API.
            metadata = await asyncio.to_thread(_open_metadata, args.metadata)
            parts = await _query_front(args, store, metadata, ready=lambda: writer.ready,
                                       stats=stats)
            close_front = parts.shutdown
        # Join the consumer group last: a writer whose config fails above never takes
        # partitions from the healthy writers (two rebalances for nothing).
        await writer.start()

        async def shutdown() -> None:
            await writer.stop()
            if close_front is not None:
                await close_front()
            if metadata is not None:
                metadata.close()
            store.close()

        parts.shutdown = shutdown
        return parts

    _loop(_run_role("writer", args, setup), args)
    return 0


def _query(args: argparse.Namespace) -> int:
    _security(args)

    async def setup() -> RoleParts:
        from metricflow.store._metric_store import MetricStore

        store = MetricStore(args.clickhouse, args.database)
        await asyncio.to_thread(store.ensure_schema)
        metadata = await asyncio.to_thread(_open_metadata, args.metadata)
        parts = await _query_front(args, store, metadata)
        close_front = parts.shutdown

        async def shutdown() -> None:
            await close_front()
            metadata.close()
            store.close()

        parts.shutdown = shutdown
        return parts

    _loop(_run_role("query", args, setup), args)
    return 0


def _registry(args: argparse.Namespace) -> int:
    sec = _security(args)

    async def setup() -> RoleParts:
        from metricflow.auth._server import build_server_auth
        from metricflow.server._forward import REGISTRY
        from metricflow.store._metric_store import MetricStore

        metadata = await asyncio.to_thread(_open_metadata, args.metadata)
        # Run lookups only for registering a version from a run (READ on the run).
        data_plane = MetricStore(args.clickhouse, args.database) if args.clickhouse else None
        auth = build_server_auth(sec.auth, metadata, data_plane, run_wait_s=sec.run_wait_s)
        control, router = _control_plane(auth, metadata)
        facts = role_index(args)
        app = _ops_app(lambda: True, facts=facts, api=True)
        app.include_router(router)
        app = auth.secure_http(app)

        async def shutdown() -> None:
            metadata.close()
            if data_plane is not None:
                data_plane.close()

        return RoleParts(control, app, lambda: True, shutdown, auth.interceptors(), sec.tls,
                         frozenset({REGISTRY}), auth.guard, facts)

    _loop(_run_role("registry", args, setup), args)
    return 0


def _loop(coro: Awaitable[None], args: argparse.Namespace) -> None:
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.run(coro)  # type: ignore[arg-type]
            return
        except ImportError:
            pass
    asyncio.run(coro)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- parsers
def _common(p: argparse.ArgumentParser, grpc_port: int, http_port: int) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 in pods)")
    p.add_argument("--grpc-port", type=int, default=grpc_port, help="0 picks a free port")
    p.add_argument("--http-port", type=int, default=http_port,
                   help="/metrics, /health, /ready; 0 picks a free port")
    p.add_argument("--no-uvloop", action="store_true")


def _kafka_args(p: argparse.ArgumentParser) -> None:
    from metricflow.ingest import _kafka_config as kc

    p.add_argument("--kafka", default=kc.KAFKA_BOOTSTRAP.get(), help=kc.KAFKA_BOOTSTRAP.doc)
    p.add_argument("--topic", default=kc.KAFKA_TOPIC.get(), help=kc.KAFKA_TOPIC.doc)
    p.add_argument("--partitions", type=int, default=kc.KAFKA_PARTITIONS.get(),
                   help=kc.KAFKA_PARTITIONS.doc)
    p.add_argument("--replication", type=int, default=kc.KAFKA_REPLICATION.get(),
                   help=kc.KAFKA_REPLICATION.doc)


def _store_args(p: argparse.ArgumentParser, required: bool) -> None:
    default = os.environ.get("METRICFLOW_CLICKHOUSE_DSN", "")
    p.add_argument("--clickhouse", default=default or None, required=required and not default,
                   help="data plane DSN: http://host:8123 or chdb:///abs/path "
                        "(env METRICFLOW_CLICKHOUSE_DSN)")
    p.add_argument("--database", default="metricflow")


def _metadata_arg(p: argparse.ArgumentParser) -> None:
    default = os.environ.get("METRICFLOW_METADATA_URI") or \
        f"sqlite:///{os.path.abspath(_env.DATA_DIR.get())}/metadata.db"
    p.add_argument("--metadata", default=default,
                   help="control plane URI (env METRICFLOW_METADATA_URI)")


def add_security_args(p: argparse.ArgumentParser, run_wait: bool = True) -> None:
    """The security flags of `metricflow server` and of every role that serves clients
    (`run_wait`: the Kafka-path flag for runs the writer has not applied yet)."""
    p.add_argument("--auth", choices=("auto", "on", "off"), default="auto",
                   help="auto: required on non-loopback binds; off must be explicit")
    p.add_argument("--default-permission", default="READ",
                   help="permission without an explicit grant: NO_PERMISSIONS/READ/EDIT/MANAGE")
    p.add_argument("--rate-limit", type=float, default=0.0, help="requests/s per token; 0 = off")
    p.add_argument("--tls-cert", help="PEM certificate (enables TLS on gRPC and HTTP)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca",
                   help="PEM CA: gRPC and HTTPS clients must present a certificate it signed")
    if run_wait:
        p.add_argument("--auth-run-wait-s", type=float, default=5.0,
                       help="how long authorization, run lifecycle calls and a child's "
                            "parent wait for a run not yet in ClickHouse")
    p.add_argument("--cert-admin-user", action="append", default=None, metavar="USER",
                   help="with --tls-client-ca: a client certificate naming USER carries the "
                        "admin scope (repeatable; otherwise certificates never do)")


def _mlflow_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", default=_env.ARTIFACT_ROOT.get() or None,
                   help="artifact store URI for the MLflow artifact proxy (default: the "
                        "control plane's default artifact root; env METRICFLOW_ARTIFACT_ROOT)")
    p.add_argument("--no-mlflow", action="store_true",
                   help="do not serve the MLflow REST API (it needs Kafka for its writes)")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # argparse API
    """Register the role subcommands on the CLI's subparsers."""
    from metricflow.ingest import _kafka_config as kc
    from metricflow.server._forward import add_upstream_args

    p = sub.add_parser("ingest", help="stateless gRPC ingest node -> Kafka")
    _common(p, 50051, 9100)
    _kafka_args(p)
    _store_args(p, required=False)
    _metadata_arg(p)
    add_security_args(p)
    p.add_argument("--compression", default=kc.KAFKA_COMPRESSION.get(),
                   help=kc.KAFKA_COMPRESSION.doc)
    p.add_argument("--lz4-level", type=int, default=kc.KAFKA_LZ4_LEVEL.get(),
                   help=kc.KAFKA_LZ4_LEVEL.doc)
    p.add_argument("--inflight-mb", type=int, default=kc.KAFKA_INFLIGHT_MB.get(),
                   help=kc.KAFKA_INFLIGHT_MB.doc)
    p.add_argument("--produce-timeout-ms", type=int, default=15_000,
                   help="a produce not acked by then fails back to the client, which retries")
    add_upstream_args(p, "query")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("writer", help="Kafka consumer group -> ClickHouse")
    _common(p, 50061, 9101)
    _kafka_args(p)
    _store_args(p, required=True)
    _metadata_arg(p)
    p.add_argument("--group", default=kc.WRITER_GROUP.get(), help=kc.WRITER_GROUP.doc)
    p.add_argument("--max-rows", type=int, default=kc.WRITER_MAX_ROWS.get(),
                   help=kc.WRITER_MAX_ROWS.doc)
    p.add_argument("--max-mb", type=int, default=kc.WRITER_MAX_MB.get(),
                   help=kc.WRITER_MAX_MB.doc)
    p.add_argument("--linger-ms", type=int, default=kc.WRITER_LINGER_MS.get(),
                   help=kc.WRITER_LINGER_MS.doc)
    p.add_argument("--serve-query", action="store_true",
                   help="also serve the query API (and the MLflow REST API) from this "
                        "process (chDB: one process per data dir); the security flags "
                        "apply to it")
    add_security_args(p)
    _mlflow_args(p)
    add_upstream_args(p, "ingest")
    p.set_defaults(func=_writer)

    p = sub.add_parser("query", help="query service (gRPC + HTTP/JSON + MLflow REST) "
                                     "over ClickHouse")
    _common(p, 50071, 5000)
    _store_args(p, required=True)
    _metadata_arg(p)
    _kafka_args(p)
    add_security_args(p)
    _mlflow_args(p)
    add_upstream_args(p, "ingest")
    p.set_defaults(func=_query)

    p = sub.add_parser("registry", help="experiments and model registry (control plane)")
    _common(p, 50081, 5001)
    _metadata_arg(p)
    _store_args(p, required=False)
    add_security_args(p)
    add_upstream_args(p, "query", "ingest")
    p.set_defaults(func=_registry)
