"""What a server process mounts and binds (built by `metricflow.app`, the composition root).

- `create_app(core, ...)`: the query API's FastAPI app (/api/v1, /docs);
  `ops_app(ready, facts)`: the ops-only app of roles without it; `add_writer_stats`.
- One tracking URI: `build_forwarder(...)` forwards, or refuses naming the role that
  serves it, each client-facing gRPC service a role does not mount; the service kinds
  are `INGEST`, `QUERY`, `REGISTRY`, `ARTIFACTS` (`SERVICE_KIND` maps gRPC names).
- Both ports: `grpc_options`, `bind_grpc`, `serve_http`, `stop_uvicorn`.
- Start-up checks with one-line errors: `check_command`, `StartupError`, `port_error`.
- The `metricflow` command is `metricflow.server.cli:main`.

Modules load on first attribute access, so `import metricflow.server` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ARTIFACTS": "_kinds", "INGEST": "_kinds", "QUERY": "_kinds", "REGISTRY": "_kinds",
    "SERVICE_KIND": "_forward", "ForwardInterceptor": "_forward", "Upstream": "_forward",
    "build_forwarder": "_forward",
    "bind_grpc": "_net", "grpc_options": "_net", "serve_http": "_net",
    "stop_uvicorn": "_net",
    "create_app": "_http", "ops_app": "_ops", "add_writer_stats": "_ops",
    "StartupError": "_preflight", "check_command": "_preflight", "port_error": "_preflight",
}

__all__ = [
    "ARTIFACTS", "INGEST", "QUERY", "REGISTRY", "SERVICE_KIND", "ForwardInterceptor",
    "StartupError", "Upstream", "add_writer_stats", "bind_grpc", "build_forwarder",
    "check_command", "create_app", "grpc_options", "ops_app", "port_error", "serve_http",
    "stop_uvicorn",
]

if TYPE_CHECKING:
    from metricflow.server._forward import (
        SERVICE_KIND,
        ForwardInterceptor,
        Upstream,
        build_forwarder,
    )
    from metricflow.server._http import create_app
    from metricflow.server._kinds import ARTIFACTS, INGEST, QUERY, REGISTRY
    from metricflow.server._net import bind_grpc, grpc_options, serve_http, stop_uvicorn
    from metricflow.server._ops import add_writer_stats, ops_app
    from metricflow.server._preflight import StartupError, check_command, port_error


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
