"""`/` and `/docs` of every HTTP port: what is served where, and the OpenAPI docs page.

Until the web UI exists, `/` answers a small JSON document: the process's role,
its gRPC port (the tracking URI) and the HTTP APIs this port serves, read from
the app's own routes so the listing cannot drift from what is mounted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse

# What `/` lists, when the app serves it: (name, path prefix, what it is).
HTTP_APIS = (
    ("mlflow_rest", "/api/2.0/mlflow", "MLflow REST API: MLFLOW_TRACKING_URI=http://HOST:PORT"),
    ("mlflow_artifacts", "/api/2.0/mlflow-artifacts", "MLflow artifact proxy"),
    ("api_v1", "/api/v1", "native HTTP/JSON API (search, history, downsample, tail, "
                          "experiments, registry)"),
    ("docs", "/docs", "OpenAPI docs of the HTTP APIs (Swagger UI)"),
    ("openapi", "/openapi.json", "OpenAPI schema"),
    ("metrics", "/metrics", "Prometheus metrics"),
    ("health", "/health", "liveness"),
    ("ready", "/ready", "readiness"),
)


def index_document(paths: list[str], facts: dict[str, Any]) -> dict[str, Any]:
    """What `/` answers: the process's role, its gRPC port and which HTTP APIs it serves.

    Args:
        paths: the route paths the app serves (the listing follows them).
        facts: role, grpc_port, and for the distributed roles the gRPC services
            they serve (`serves`) and forward (`forwards`).
    """
    http = {name: {"path": prefix, "what": what} for name, prefix, what in HTTP_APIS
            if any(p == prefix or p.startswith(prefix + "/") for p in paths)}
    grpc: dict[str, Any] = {"port": facts.get("grpc_port"),
                            "tracking_uri": "grpc://HOST:PORT (METRICFLOW_TRACKING_URI)"}
    for key in ("serves", "forwards"):
        if key in facts:
            grpc[key] = facts[key]
    return {"service": "metricflow", "role": facts.get("role", "server"), "grpc": grpc,
            "http": http, "ui": "no web UI yet: use /docs, /api/v1 or the mlflow client"}


def route_paths(routes: Any, prefix: str = "") -> Iterator[str]:
    """Full path of every route, through included routers (FastAPI keeps them as nodes)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            ctx = getattr(r, "include_context", None)
            yield from route_paths(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        else:
            yield prefix + getattr(r, "path", "")


def add_index_and_docs(app: Any, facts: dict[str, Any], docs: bool = True) -> None:
    """`/` (what is served where) and, with `docs`, `/docs` (Swagger UI on /openapi.json).

    Both are plain routes, so the auth layer guards them like the rest of the app
    (the schema itself is the auth layer's guarded /openapi.json). `facts` may be
    completed after the app is built (ports are known once bound).
    """
    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> dict[str, Any]:
        return index_document(list(route_paths(request.app.router.routes)), facts)

    if docs:
        @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
        async def docs_page() -> HTMLResponse:
            from fastapi.openapi.docs import get_swagger_ui_html  # noqa: PLC0415

            return get_swagger_ui_html(openapi_url="/openapi.json", title="metricflow API")


def add_apis_elsewhere(app: Any, facts: dict[str, Any]) -> None:
    """`/api/...` on an ops-only port: 404 naming the role whose HTTP port serves the APIs."""
    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False, response_model=None)
    async def elsewhere(path: str) -> JSONResponse:
        role = facts.get("role", "this")
        return JSONResponse(status_code=404, content={
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"/api/{path} is not served by the {role} role's HTTP port (ops only); "
                       "the MLflow REST API and /api/v1 are served by the query role "
                       "(`metricflow query`, or `metricflow writer --serve-query`)"})
