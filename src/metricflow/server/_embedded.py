"""`metricflow server`: every role in one process on the embedded stores."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import threading
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from metricflow._validation import DEFAULT_LIMITS
from metricflow.ingest import _service as ingest_service
from metricflow.ingest._core import TrackingCore
from metricflow.ingest._direct import DirectSink
from metricflow.query import _service as query_service
from metricflow.query._service import QueryCore
from metricflow.server._config import ServerConfig
from metricflow.server._preflight import port_error
from metricflow.store._metric_store import MetricStore

log = logging.getLogger(__name__)


def grpc_options() -> list[tuple[str, Any]]:
    n = DEFAULT_LIMITS.max_message_bytes
    return [("grpc.max_receive_message_length", n), ("grpc.max_send_message_length", n),
            ("grpc.so_reuseport", 0)]


async def stop_uvicorn(server: Any, task: asyncio.Task[None], grace_s: float = 5.0) -> None:
    """Stop a uvicorn.Server: graceful for `grace_s`, then forced.

    An idle keep-alive HTTPS client that never answers the TLS close_notify would
    otherwise hold the shutdown for asyncio's 30 s SSL shutdown timeout.
    """
    server.should_exit = True
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        server.force_exit = True
    await task


class EmbeddedServer:
    """Owns the stores, the in-process writer and the gRPC/HTTP front ends."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.grpc_port = 0
        self.http_port = 0
        self._server: grpc.aio.Server | None = None
        self._http: Any = None
        self._http_task: asyncio.Task[None] | None = None
        self.store: MetricStore | None = None
        self.metadata: Any = None
        self.sink: DirectSink | None = None
        self.artifacts: Any = None
        self.tracking: TrackingCore | None = None
        self._collector: Any = None
        self.auth: Any = None
        self.tls: Any = None
        self.query: QueryCore | None = None
        """The process's one QueryCore (also used by the MLflow routes)."""
        self.metadata_view: Any = None
        """The metadata store as request handlers see it (scoped when auth is on)."""
        self._health = health.aio.HealthServicer()

    async def start(self) -> None:
        from metricflow.artifacts import ArtifactStore, open_blob_store
        from metricflow.store.metadata import open_metadata_store

        cfg = self.config
        os.makedirs(cfg.data_dir, exist_ok=True)
        self.store = MetricStore(cfg.clickhouse_dsn, cfg.database)
        await asyncio.to_thread(self.store.ensure_schema)
        self.artifacts = ArtifactStore(open_blob_store(cfg.artifact_root))
        self._register_collectors()
        self.metadata = await asyncio.to_thread(
            open_metadata_store, cfg.metadata_uri, default_artifact_root=cfg.artifact_root,
            source_exists=self._artifact_exists)
        self.sink = DirectSink(self.store, cfg.sink)
        await self.sink.start()
        self.tracking = TrackingCore(self.sink, self.store, self.metadata)
        from metricflow.auth._server import build_server_auth
        from metricflow.auth._tls import TlsConfig, grpc_server_credentials

        self.auth = build_server_auth(cfg.auth, self.metadata, self.store)
        # One QueryCore per process: gRPC, /api/v1 and the MLflow routes share it (and its
        # caches); with auth on it is the caller-scoped one.
        core: QueryCore = self.auth.query_core(self.store, self.metadata)
        self.query = core
        self.metadata_view = self.auth.metadata_view(self.metadata)
        server = grpc.aio.server(options=grpc_options(), interceptors=self.auth.interceptors())
        self._server = server  # stop() releases it even when a bind below fails
        self._add_services(server, core)
        await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self.tls = TlsConfig(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca)
        addr = f"{cfg.host}:{cfg.grpc_port}"
        try:
            self.grpc_port = (server.add_secure_port(addr, grpc_server_credentials(self.tls))
                              if self.tls.enabled else server.add_insecure_port(addr))
        except RuntimeError as e:  # grpc: "Failed to bind to address ...; set GRPC_VERBOSITY"
            if "Failed to bind" not in str(e) or cfg.grpc_port <= 0:
                raise
            raise port_error("gRPC", cfg.host, cfg.grpc_port, "--grpc-port") from e
        await server.start()
        if cfg.http_port >= 0:
            await self._start_http(core)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._write_ready_file()

    def _register_collectors(self) -> None:
        """Artifact dedup figures (logical vs stored bytes) on /metrics."""
        from prometheus_client import REGISTRY

        from metricflow.artifacts import DedupCollector

        self._collector = DedupCollector(self.artifacts)
        try:
            REGISTRY.register(self._collector)
        except ValueError:  # another server in this process already exports them
            self._collector = None

    def _artifact_exists(self, run_id: str, path: str) -> bool:
        """Model-version sources (runs:/<run>/<path>) must name a logged artifact or dir."""
        assert self.artifacts is not None
        if self.artifacts.versions(run_id, path):
            return True
        return bool(self.artifacts.list_artifacts(run_id, path))

    def _add_services(self, server: grpc.aio.Server, core: QueryCore) -> None:
        from metricflow import artifacts, registry

        assert self.sink is not None and self.store is not None and self.tracking is not None
        servicer = ingest_service.IngestServicer(self.sink, self.store, self.metadata)
        servicer.core = self.tracking  # one core (and run cache) for every front end
        ingest_service.add_to_server(server, servicer)
        query_service.add_to_server(server, core)
        hooks = self.auth.actor_hooks()
        registry.add_to_server(server, self.metadata_view,
                               **({"actor_of": hooks["grpc"]} if hooks else {}))
        artifacts.add_to_server(server, self.artifacts)
        # The standard gRPC health protocol, as every role serves it (open with auth on):
        # NOT_SERVING until start() has bound both ports, and again while stopping.
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)

    async def _start_http(self, core: QueryCore) -> None:
        import socket

        import uvicorn

        from metricflow.registry import registry_router
        from metricflow.server._http import create_app

        hooks = self.auth.actor_hooks()
        routers = [registry_router(self.metadata_view,
                                   **({"actor_of": hooks["http"]} if hooks else {})),
                   *self._extra_routers()]
        app = self.auth.secure_http(create_app(
            core, extra_routers=routers, index={"role": "server", "grpc_port": self.grpc_port}))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host, self.config.http_port))
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                raise
            raise port_error("HTTP", self.config.host, self.config.http_port,
                             "--http-port") from e
        self.http_port = sock.getsockname()[1]
        from metricflow.auth._tls import uvicorn_ssl_options

        config = uvicorn.Config(app, log_level="warning", lifespan="off",
                                **uvicorn_ssl_options(self.tls))
        self._http = uvicorn.Server(config)
        self._http_task = asyncio.ensure_future(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
            await asyncio.sleep(0.01)

    def _extra_routers(self) -> list[Any]:
        """HTTP routers of optional front ends (the MLflow REST API), when installed."""
        try:
            from metricflow.mlflow_compat import routers
        except ModuleNotFoundError as e:
            if e.name != "metricflow.mlflow_compat":
                raise
            return []
        except ImportError:
            log.warning("metricflow.mlflow_compat is incomplete; MLflow REST API disabled")
            return []
        return list(routers(self))

    def _write_ready_file(self) -> None:
        info = {"grpc_port": self.grpc_port, "http_port": self.http_port,
                "host": self.config.host, "pid": os.getpid(),
                "auth": bool(self.auth and self.auth.enabled),
                "tls": bool(self.tls and self.tls.enabled)}
        path = os.path.join(self.config.data_dir, "server.json")
        with open(path + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(path + ".tmp", path)

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()

    async def stop(self, grace: float = 5.0) -> None:
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        if self._http is not None and self._http_task is not None:
            await stop_uvicorn(self._http, self._http_task, min(grace, 5.0))
        if self.sink is not None:
            await self.sink.close()
        if self.metadata is not None:
            self.metadata.close()
        if self.store is not None:
            self.store.close()
        if self._collector is not None:
            from prometheus_client import REGISTRY

            REGISTRY.unregister(self._collector)
            self._collector = None
        if self.artifacts is not None:
            self.artifacts.close()


class ServerThread:
    """Runs an EmbeddedServer on its own event loop in a background thread (tests, tools)."""

    def __init__(self, config: ServerConfig) -> None:
        self.server = EmbeddedServer(config)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="metricflow-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as e:  # reported to start()
            self._error = e
            # Release what start() opened: chDB allows one data path per process.
            try:
                self._loop.run_until_complete(self.server.stop(0))
            except Exception:  # the start error is the one to report
                log.exception("cleanup after a failed start")
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(1.0), self._loop)
        fut.result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
