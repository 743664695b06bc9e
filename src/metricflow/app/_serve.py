"""Run one server process: components, one gRPC server, one HTTP app, health, ready line.

`App` is the same for `metricflow server` and every distributed role; what
differs is the set of services the role mounts (`_roles.py`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from metricflow.app._components import Components, build_components
from metricflow.app._mount import Facts, build_app, grpc_kinds, mount_grpc
from metricflow.app._roles import GRPC_SERVICES
from metricflow.app._settings import ServerConfig
from metricflow.server import (
    ForwardInterceptor,
    bind_grpc,
    build_forwarder,
    grpc_options,
    serve_http,
    stop_uvicorn,
)

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from metricflow.artifacts import ArtifactStore
    from metricflow.auth import ServerAuth
    from metricflow.query import QueryCore
    from metricflow.store import MetricStore
    from metricflow.store.metadata import MetadataStore

log = logging.getLogger(__name__)

HEALTH_POLL_S = 0.5
"""How often gRPC health follows readiness (a writer in backoff, a Kafka sink down)."""


class App:
    """One server process: builds its Components, mounts its services, binds both ports."""

    def __init__(self, settings: ServerConfig) -> None:
        self.settings = settings
        self.components: Components | None = None
        """Set once by start(); None before."""
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._forward: ForwardInterceptor | None = None
        self._http: tuple[uvicorn.Server, asyncio.Task[None]] | None = None
        self.http_app: FastAPI | None = None
        """The HTTP app served (as wrapped by the auth guard); None with HTTP off."""
        self._health = health.aio.HealthServicer()
        self._track: asyncio.Task[None] | None = None

    # What tests, tools and the MLflow conformance suite read of a running server.
    @property
    def config(self) -> ServerConfig:
        return self.settings

    @property
    def store(self) -> MetricStore | None:
        return self.components.store if self.components else None

    @property
    def metadata(self) -> MetadataStore | None:
        return self.components.metadata if self.components else None

    @property
    def artifacts(self) -> ArtifactStore | None:
        return self.components.artifacts if self.components else None

    @property
    def query(self) -> QueryCore | None:
        return self.components.query if self.components else None

    @property
    def auth(self) -> ServerAuth | None:
        return self.components.auth if self.components else None

    async def start(self) -> None:
        """Open the components, serve both ports, then start what must come last."""
        s = self.settings
        c = self.components = await build_components(s)
        interceptors: list[grpc.aio.ServerInterceptor] = []
        serves = grpc_kinds(c)
        if serves != GRPC_SERVICES:  # forward (or refuse, naming the role) what is not here
            self._forward = build_forwarder(
                s.role, serves, s.upstreams.query, s.upstreams.ingest, s.upstreams.ca,
                c.auth.guard if c.auth is not None else None)
            interceptors.append(self._forward)
        if c.auth is not None:
            interceptors.extend(c.auth.interceptors())
        server = self._grpc = grpc.aio.server(options=grpc_options(),
                                              interceptors=interceptors or None)
        mount_grpc(server, c)
        # The standard gRPC health protocol (open with auth on): NOT_SERVING until both
        # ports are bound and the process is ready, and again while stopping.
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self.grpc_port = bind_grpc(server, s.host, s.grpc_port, s.security.tls)
        await server.start()
        if s.http_port >= 0:
            app = self.http_app = build_app(c, self.facts())
            http, self.http_port, task = await serve_http(app, s.host, s.http_port,
                                                          s.security.tls)
            self._http = (http, task)
        await c.start_last()
        await self._follow_readiness()
        if s.role == "server":
            self._write_ready_file()

    def facts(self) -> Facts:
        """What `/` reports: the role, its gRPC port and (roles) what it serves or forwards."""
        out: Facts = {"role": self.settings.role, "grpc_port": self.grpc_port}
        if self._forward is not None:
            out["serves"] = sorted(self._forward.local)
            out["forwards"] = {k: u.uri for k, u in sorted(self._forward.upstreams.items())}
        return out

    def ready_line(self) -> dict[str, object]:
        """The one JSON line a process prints once it serves."""
        s = self.settings
        info: dict[str, object] = {"event": "ready", "role": s.role,
                                   "grpc_port": self.grpc_port, "http_port": self.http_port,
                                   "pid": os.getpid()}
        if s.role == "server":
            info["data_dir"] = s.data_dir
        info.update({k: v for k, v in self.facts().items() if k in ("serves", "forwards")})
        if self.auth is not None:
            info.update(s.security.ready_fields())
        if s.role == "server":
            info["loop"] = type(asyncio.get_running_loop()).__module__
        return info

    async def _follow_readiness(self) -> None:
        c = self.components
        assert c is not None

        async def set_status(ok: bool) -> None:
            await self._health.set("", health_pb2.HealthCheckResponse.SERVING if ok
                                   else health_pb2.HealthCheckResponse.NOT_SERVING)

        last = c.ready
        await set_status(last)

        async def follow() -> None:
            nonlocal last
            while True:
                await asyncio.sleep(HEALTH_POLL_S)
                if (ok := c.ready) != last:
                    await set_status(ok)
                    last = ok

        self._track = asyncio.ensure_future(follow())

    def _write_ready_file(self) -> None:
        s = self.settings
        info = {"grpc_port": self.grpc_port, "http_port": self.http_port, "host": s.host,
                "pid": os.getpid(), "auth": bool(self.auth and self.auth.enabled),
                "tls": s.security.tls.enabled}
        path = os.path.join(s.data_dir, "server.json")
        with open(path + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(path + ".tmp", path)

    async def wait(self) -> None:
        assert self._grpc is not None
        await self._grpc.wait_for_termination()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop serving (health first), then close the components, last opened first."""
        await self._health.enter_graceful_shutdown()
        if self._track is not None:
            self._track.cancel()
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._forward is not None:
            await self._forward.close()
        if self._http is not None:
            await stop_uvicorn(*self._http, min(grace, 5.0))
            self._http = None
        if self.components is not None:
            await self.components.close()


def run(settings: ServerConfig) -> None:
    """Serve `settings` until SIGINT or SIGTERM (the CLI's entry for every role)."""
    async def main() -> None:
        app = App(settings)
        try:
            await app.start()
        except BaseException:
            await app.stop(0)  # close what start() opened; the error is reported
            raise
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(json.dumps(app.ready_line()), flush=True)
        await stop.wait()
        log.info("%s stopping", settings.role)
        await app.stop()

    if settings.use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main())
            return
    asyncio.run(main())


class ServerThread:
    """Runs an App on its own event loop in a background thread (tests, tools)."""

    def __init__(self, config: ServerConfig) -> None:
        self.server = App(config)
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
        # A chDB handle that only the garbage collector would release (one held by a
        # cycle) binds this process to the old data path: the next server here (tests,
        # tools) would be refused. Every closed one is released now.
        gc.collect()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
