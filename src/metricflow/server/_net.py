"""Binding the two ports of a server process: gRPC options, the HTTP socket, uvicorn."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import TYPE_CHECKING

import grpc

from metricflow._validation import DEFAULT_LIMITS
from metricflow.auth import TlsConfig, grpc_server_credentials, uvicorn_ssl_options
from metricflow.server._preflight import port_error

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI


def grpc_options() -> list[tuple[str, int]]:
    """Channel and server options: message size limits; no SO_REUSEPORT (a taken port fails)."""
    n = DEFAULT_LIMITS.max_message_bytes
    return [("grpc.max_receive_message_length", n), ("grpc.max_send_message_length", n),
            ("grpc.so_reuseport", 0)]


def bind_grpc(server: grpc.aio.Server, host: str, port: int, tls: TlsConfig) -> int:
    """Add the server's port (TLS when configured); a taken port is a one-line StartupError."""
    addr = f"{host}:{port}"
    try:
        return (server.add_secure_port(addr, grpc_server_credentials(tls)) if tls.enabled
                else server.add_insecure_port(addr))
    except RuntimeError as e:  # grpc: "Failed to bind to address ...; set GRPC_VERBOSITY"
        if "Failed to bind" not in str(e) or port <= 0:
            raise
        raise port_error("gRPC", host, port, "--grpc-port") from e


async def serve_http(app: FastAPI, host: str, port: int, tls: TlsConfig
                     ) -> tuple[uvicorn.Server, int, asyncio.Task[None]]:
    """Serve `app` on host:port until stopped; returns (server, bound port, its task)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno != errno.EADDRINUSE:
            raise
        raise port_error("HTTP", host, port, "--http-port") from e
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **uvicorn_ssl_options(tls))
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, sock.getsockname()[1], task


async def stop_uvicorn(server: uvicorn.Server, task: asyncio.Task[None],
                       grace_s: float = 5.0) -> None:
    """Stop a uvicorn.Server: graceful for `grace_s`, then forced.

    An idle keep-alive HTTPS client that never answers the TLS close_notify would
    otherwise hold the shutdown for asyncio's 30 s SSL shutdown timeout.
    """
    server.should_exit = True
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        server.force_exit = True
    await task
