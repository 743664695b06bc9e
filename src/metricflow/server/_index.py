"""`/` and `/docs` of every HTTP port: what is served where, and the OpenAPI docs page.

A browser asking for `/` on a port that serves the query API gets the web UI's
page (metricflow.ui). Any other client gets a small JSON document: the process's
role, its gRPC port (the tracking URI) and the HTTP APIs this port serves, read
from the app's own routes so the listing cannot drift from what is mounted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

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


DOCS_STATIC = "/docs/static"
"""Where the Swagger UI page's own files are served (from the swagger-ui-bundle package)."""

# The only files the page loads; anything else under DOCS_STATIC is 404.
_DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                "favicon-32x32.png": "image/png"}


def _swagger_dir() -> Path:
    import swagger_ui_bundle  # only when the docs page is used

    return Path(swagger_ui_bundle.swagger_ui_path)


def docs_security_headers(html: bytes) -> dict[str, str]:
    """CSP of the Swagger UI page: its files from here, and its one inline script by hash."""
    import base64
    import hashlib
    import re

    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in re.finditer(rb"<script>(.*?)</script>", html, re.S))
    return {"content-security-policy": (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def index_document(paths: list[str], facts: dict[str, Any]) -> dict[str, Any]:
    """What `/` answers: the process's role, its gRPC port and which HTTP APIs it serves.

    Args:
        paths: the route paths the app serves (the listing follows them).
        facts: role, grpc_port, and for the distributed roles the gRPC services
            they serve (`serves`) and forward (`forwards`).
    """
    http = {name: {"path": prefix, "what": what} for name, prefix, what in HTTP_APIS
            if any(p == prefix or p.startswith(prefix + "/") for p in paths)}
    grpc: dict[str, Any] = {"port": facts.get("grpc_port")}
    if facts.get("serves", True) or facts.get("forwards"):
        # A port that serves or forwards no client service (a writer without
        # --serve-query) is no tracking URI, so it does not offer itself as one.
        grpc["tracking_uri"] = "grpc://HOST:PORT (METRICFLOW_TRACKING_URI)"
    for key in ("serves", "forwards"):
        if key in facts:
            grpc[key] = facts[key]
    return {"service": "metricflow", "role": facts.get("role", "server"), "grpc": grpc,
            "http": http, "ui": _ui(http, paths)}


QUERY_ELSEWHERE = ("the web UI and the query API (/api/v1 search, history, downsample, tail; "
                   "the MLflow REST API; their /docs) are served by the query role's HTTP port "
                   "(`metricflow query`, or `metricflow writer --serve-query`)")
"""Where a port without the query API sends its callers."""

# What only a port with the query API serves: a 404 for these names the query role.
_QUERY_PREFIXES = ("/api/2.0/mlflow", "/api/2.0/mlflow-artifacts", "/api/3.0/mlflow",
                   "/api/v1", "/docs", "/openapi.json")


def _serves_query(paths: list[str]) -> bool:
    return "/api/v1/runs/search" in paths


def _ui(http: dict[str, Any], paths: list[str]) -> str:
    """The `ui` line of `/`: where a person looks at the data, true for this port."""
    here = [p for name, p in (("docs", "/docs"), ("api_v1", "/api/v1")) if name in http]
    if "mlflow_rest" in http:
        here.append("the mlflow client")
    def listed(word: str) -> str:
        return f" {word} ".join([", ".join(here[:-1]), here[-1]] if len(here) > 1 else here)

    if _serves_query(paths):
        return f"web UI: open / in a browser; or use {listed('or')}"
    if not here:
        return f"no web UI on this port; it serves ops endpoints only: {QUERY_ELSEWHERE}"
    api = " (experiments and the model registry)" if "api_v1" in http else ""
    return f"no web UI on this port; it serves {listed('and')}{api}: {QUERY_ELSEWHERE}"


def not_found_message(method: str, path: str, paths: list[str], role: str) -> str:
    """Why `path` has no route here, and which role serves it where that is known."""
    where = "this server" if role == "server" else f"the {role} role's HTTP port"
    if not _serves_query(paths) and any(path == p or path.startswith(p + "/")
                                        for p in _QUERY_PREFIXES):
        return f"{path} is not served by {where}; {QUERY_ELSEWHERE}"
    return f"no endpoint {method} {path} on {where}; `/` lists what this port serves"


def add_not_found(app: Any, facts: dict[str, Any]) -> None:
    """A path with no route answers the project's error shape, not FastAPI's
    `{"detail": "Not Found"}`; other HTTP errors keep FastAPI's answer."""
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        # A matched route sets `endpoint`; its own 404s (a missing object) stay as raised.
        if exc.status_code != 404 or "endpoint" in request.scope:
            return await http_exception_handler(request, exc)
        paths = list(route_paths(request.app.router.routes))
        return JSONResponse(status_code=404, content={
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": not_found_message(request.method, request.url.path, paths,
                                         facts.get("role", "server"))})

    app.add_exception_handler(HTTPException, not_found)


def route_paths(routes: Any, prefix: str = "") -> Iterator[str]:
    """Full path of every route, through included routers (FastAPI keeps them as nodes)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            ctx = getattr(r, "include_context", None)
            yield from route_paths(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        else:
            yield prefix + getattr(r, "path", "")


def _browser_ui(request: Request) -> bool:
    """`/` answers the web UI's page: a browser asks, and this port serves the query API
    (the UI's data); API clients (Accept `*/*` or JSON) keep the JSON listing."""
    from metricflow.ui import prefers_html

    return prefers_html(request) and _serves_query(list(route_paths(request.app.router.routes)))


def add_index_and_docs(app: Any, facts: dict[str, Any], docs: bool = True) -> None:
    """`/` (what is served where), the JSON 404 of unknown paths and, with `docs`,
    `/docs` (Swagger UI on /openapi.json).

    Both are plain routes, so the auth layer guards them like the rest of the app
    (the schema itself is the auth layer's guarded /openapi.json). `facts` may be
    completed after the app is built (ports are known once bound).
    """
    add_not_found(app, facts)

    @app.get("/", include_in_schema=False, response_model=None)
    async def index(request: Request) -> Response | dict[str, Any]:
        if _browser_ui(request):
            from metricflow.ui import index_response

            return index_response()
        return index_document(list(route_paths(request.app.router.routes)), facts)

    # The web UI's page is public (it holds no data; its API calls are guarded); the JSON
    # listing needs a credential like every other route.
    index.mf_public = _browser_ui  # type: ignore[attr-defined]

    if docs:
        @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
        async def docs_page() -> HTMLResponse:
            from fastapi.openapi.docs import get_swagger_ui_html

            # Assets come from this server (the swagger-ui-bundle package), not a CDN:
            # the page works on machines without outbound network.
            page = get_swagger_ui_html(
                openapi_url="/openapi.json", title="metricflow API",
                swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_STATIC}/favicon-32x32.png")
            page.headers.update(docs_security_headers(bytes(page.body)))
            return page

        @app.get(DOCS_STATIC + "/{name}", include_in_schema=False, response_model=None)
        async def docs_asset(name: str) -> Response:
            media = _DOCS_ASSETS.get(name)
            if media is None:
                return JSONResponse(status_code=404, content={
                    "error_code": "ENDPOINT_NOT_FOUND", "message": f"no docs asset {name!r}"})
            return FileResponse(_swagger_dir() / name, media_type=media)


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
