"""Distributed roles of the `metricflow` CLI: ingest, writer, query, registry.

Each role is one process with a gRPC port (its service plus the standard gRPC
health protocol) and an HTTP port with Prometheus `/metrics`, `/health`
(liveness) and `/ready` (readiness). On start a role prints one JSON line
`{"event": "ready", "role": ..., "grpc_port": ..., "http_port": ...}`.

    metricflow ingest   --kafka HOST:9092 --metadata postgresql+psycopg://...
    metricflow writer   --kafka HOST:9092 --clickhouse http://ch:8123
    metricflow query    --clickhouse http://ch:8123 --metadata postgresql+psycopg://...
    metricflow registry --metadata postgresql+psycopg://...
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
from typing import Any

from metricflow import _env

log = logging.getLogger(__name__)
Ready = Callable[[], bool]


class NoRunLookup:
    """Run lookups for an ingest node without ClickHouse access: every run is unknown.

    Ingest then runs with strict_runs=False; the writer still rejects params and
    tags of missing or deleted runs when it applies them.
    """

    def get_run_infos(self, run_ids: Any) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


# ------------------------------------------------------------------- plumbing
async def _serve_grpc(host: str, port: int, register: Callable[[Any], None],
                      ready: Ready) -> tuple[Any, int, asyncio.Task[None]]:
    """A grpc.aio server with `register`ed services plus health, kept in sync with `ready`."""
    import grpc  # noqa: PLC0415
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: PLC0415

    from metricflow.server._embedded import grpc_options  # noqa: PLC0415

    server = grpc.aio.server(options=grpc_options())
    register(server)
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    bound = server.add_insecure_port(f"{host}:{port}")
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


def _ops_app(ready: Ready, stats: Callable[[bool], dict[str, Any]] | None = None) -> Any:
    """FastAPI app with /health, /ready, /metrics (and /stats when given)."""
    from fastapi import FastAPI  # noqa: PLC0415 - server extra
    from fastapi.responses import JSONResponse, Response  # noqa: PLC0415
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

    app = FastAPI(title="metricflow")

    @app.get("/health")
    async def health_() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready_() -> Response:
        ok = bool(ready())
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/metrics")
    async def metrics_() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _add_stats(app, stats)
    return app


def _add_stats(app: Any, stats: Callable[[bool], dict[str, Any]] | None) -> None:
    if stats is not None:
        @app.get("/stats")
        async def stats_(reset: bool = False) -> dict[str, Any]:
            return stats(reset)


async def _serve_http(app: Any, host: str, port: int) -> tuple[Any, int, asyncio.Task[None]]:
    import uvicorn  # noqa: PLC0415

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, sock.getsockname()[1], task


async def _run_role(role: str, args: argparse.Namespace,
                    setup: Callable[[], Awaitable[tuple[Callable[[Any], None], Any, Ready,
                                                        Callable[[], Awaitable[None]]]]]) -> None:
    """Start a role: setup() -> (register gRPC services, HTTP app, ready, shutdown)."""
    register, app, ready, shutdown = await setup()
    grpc_server, grpc_port, health_task = await _serve_grpc(args.host, args.grpc_port,
                                                            register, ready)
    http, http_port, http_task = await _serve_http(app, args.host, args.http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "ready", "role": role, "grpc_port": grpc_port,
                      "http_port": http_port, "pid": os.getpid()}), flush=True)
    await stop.wait()
    log.info("%s stopping", role)
    health_task.cancel()
    await grpc_server.stop(5.0)
    await shutdown()
    http.should_exit = True
    await http_task


def _open_metadata(uri: str) -> Any:
    from metricflow.store.metadata import open_metadata_store  # noqa: PLC0415

    return open_metadata_store(uri)


# ----------------------------------------------------------------------- roles
def _topic(args: argparse.Namespace) -> Any:
    from metricflow.ingest._kafka_config import TopicConfig  # noqa: PLC0415

    return TopicConfig(bootstrap=args.kafka, topic=args.topic, partitions=args.partitions,
                       replication=args.replication)


def _ingest(args: argparse.Namespace) -> int:
    async def setup() -> Any:
        from metricflow.ingest import _service as ingest_service  # noqa: PLC0415
        from metricflow.ingest._kafka import KafkaSink  # noqa: PLC0415
        from metricflow.ingest._kafka_config import KafkaSinkConfig  # noqa: PLC0415
        from metricflow.store._metric_store import MetricStore  # noqa: PLC0415

        sink = KafkaSink(KafkaSinkConfig(topic=_topic(args), compression=args.compression,
                                         max_inflight_bytes=args.inflight_mb * 2**20,
                                         request_timeout_ms=args.produce_timeout_ms))
        await sink.start()
        store: Any = MetricStore(args.clickhouse, args.database) if args.clickhouse \
            else NoRunLookup()
        metadata = await asyncio.to_thread(_open_metadata, args.metadata)
        servicer = ingest_service.IngestServicer(sink, store, metadata, strict_runs=False)

        async def shutdown() -> None:
            await sink.close()
            metadata.close()
            store.close()

        return (lambda s: ingest_service.add_to_server(s, servicer), _ops_app(lambda: sink.ready),
                lambda: sink.ready, shutdown)

    _loop(_run_role("ingest", args, setup), args)
    return 0


def _writer(args: argparse.Namespace) -> int:
    async def setup() -> Any:
        from metricflow.ingest._kafka_config import WriterConfig  # noqa: PLC0415
        from metricflow.ingest._writer import KafkaWriter  # noqa: PLC0415
        from metricflow.store._metric_store import MetricStore  # noqa: PLC0415

        store = MetricStore(args.clickhouse, args.database)
        await asyncio.to_thread(store.ensure_schema)
        writer = KafkaWriter(store, WriterConfig(
            topic=_topic(args), group_id=args.group, max_rows=args.max_rows,
            max_bytes=args.max_mb * 2**20, linger_ms=args.linger_ms))
        await writer.start()

        def stats(reset: bool) -> dict[str, Any]:
            out = {"points_written": writer.points_written,
                   "messages_written": writer.messages_written,
                   "consumer_lag": writer.consumer_lag, "in_backoff": not writer.ready,
                   "peak_pending_bytes": writer.peak_pending_bytes,
                   "e2e_lag_s": writer.lags.quantiles()}
            if reset:
                writer.lags.reset()
            return out

        register: Callable[[Any], None] = lambda s: None  # noqa: E731
        app = _ops_app(lambda: writer.ready, stats)
        metadata = None
        if args.serve_query:
            # chDB allows one process per data dir: serve reads from the writer's process.
            from metricflow.query import _service as query_service  # noqa: PLC0415
            from metricflow.server._http import create_app  # noqa: PLC0415

            metadata = await asyncio.to_thread(_open_metadata, args.metadata)
            core = query_service.QueryCore(store, metadata)
            register = lambda s: query_service.add_to_server(s, core)  # noqa: E731
            app = create_app(core, ready=lambda: writer.ready)
            _add_stats(app, stats)

        async def shutdown() -> None:
            await writer.stop()
            if metadata is not None:
                metadata.close()
            store.close()

        return register, app, lambda: writer.ready, shutdown

    _loop(_run_role("writer", args, setup), args)
    return 0


def _query(args: argparse.Namespace) -> int:
    async def setup() -> Any:
        from metricflow.query import _service as query_service  # noqa: PLC0415
        from metricflow.server._http import create_app  # noqa: PLC0415
        from metricflow.store._metric_store import MetricStore  # noqa: PLC0415

        store = MetricStore(args.clickhouse, args.database)
        await asyncio.to_thread(store.ensure_schema)
        metadata = await asyncio.to_thread(_open_metadata, args.metadata)
        core = await asyncio.to_thread(query_service.QueryCore, store, metadata)

        async def shutdown() -> None:
            metadata.close()
            store.close()

        return (lambda s: query_service.add_to_server(s, core), create_app(core),
                lambda: True, shutdown)

    _loop(_run_role("query", args, setup), args)
    return 0


def _registry(args: argparse.Namespace) -> int:
    async def setup() -> Any:
        from metricflow.registry import add_to_server, registry_router  # noqa: PLC0415

        metadata = await asyncio.to_thread(_open_metadata, args.metadata)
        app = _ops_app(lambda: True)
        app.include_router(registry_router(metadata))

        async def shutdown() -> None:
            metadata.close()

        return lambda s: add_to_server(s, metadata), app, lambda: True, shutdown

    _loop(_run_role("registry", args, setup), args)
    return 0


def _loop(coro: Awaitable[None], args: argparse.Namespace) -> None:
    if not args.no_uvloop:
        try:
            import uvloop  # noqa: PLC0415

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
    from metricflow.ingest import _kafka_config as kc  # noqa: PLC0415

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


def add_parsers(sub: argparse._SubParsersAction) -> None:  # noqa: SLF001 - argparse API
    """Register the role subcommands on the CLI's subparsers."""
    from metricflow.ingest import _kafka_config as kc  # noqa: PLC0415

    p = sub.add_parser("ingest", help="stateless gRPC ingest node -> Kafka")
    _common(p, 50051, 9100)
    _kafka_args(p)
    _store_args(p, required=False)
    _metadata_arg(p)
    p.add_argument("--compression", default=kc.KAFKA_COMPRESSION.get(),
                   help=kc.KAFKA_COMPRESSION.doc)
    p.add_argument("--inflight-mb", type=int, default=kc.KAFKA_INFLIGHT_MB.get(),
                   help=kc.KAFKA_INFLIGHT_MB.doc)
    p.add_argument("--produce-timeout-ms", type=int, default=15_000,
                   help="a produce not acked by then fails back to the client, which retries")
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
                   help="also serve the query API from this process (chDB: one process "
                        "per data dir)")
    p.set_defaults(func=_writer)

    p = sub.add_parser("query", help="query service (gRPC + HTTP/JSON) over ClickHouse")
    _common(p, 50071, 5000)
    _store_args(p, required=True)
    _metadata_arg(p)
    p.set_defaults(func=_query)

    p = sub.add_parser("registry", help="experiments and model registry (control plane)")
    _common(p, 50081, 5001)
    _metadata_arg(p)
    p.set_defaults(func=_registry)
