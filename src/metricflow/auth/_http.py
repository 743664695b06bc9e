"""The FastAPI side: one dependency on every route, and the app wrapper that adds it.

`secure_app(app, guard)` rebuilds the app's routes under a new FastAPI app with
`Depends(guard_dependency)` attached to every one of them, so routes added by
any router (query, registry, MLflow compat, admin) are covered without their
authors doing anything. OpenAPI and docs are served behind the same check.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Route

from metricflow.auth._context import CURRENT
from metricflow.auth._guard import Guard
from metricflow.auth._policy import FAIL_CLOSED, HTTP_RULES
from metricflow.errors import MetricflowError, ResourceExhausted

_MAX_BODY_PEEK = 8 * 1024 * 1024
_FASTAPI_DOCS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def error_response(e: MetricflowError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(e, ResourceExhausted):
        headers["Retry-After"] = str(max(1, math.ceil(e.retry_after_s)))
    if e.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="metricflow"'
    return JSONResponse({"error_code": e.code.value, "message": e.message},
                        status_code=e.http_status, headers=headers)


class GuardError(Exception):
    """Carries a MetricflowError out of the dependency to the app's handler."""

    def __init__(self, err: MetricflowError) -> None:
        super().__init__(err.message)
        self.err = err


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for k in request.query_params:
        vals = request.query_params.getlist(k)
        params[k] = vals if len(vals) > 1 else vals[0]
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        length = int(request.headers.get("content-length") or 0)
        if 0 < length <= _MAX_BODY_PEEK:
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                body = None  # the route's own validation answers 422
            if isinstance(body, dict):
                params.update(body)
    params.update(request.path_params)
    return params


def make_dependency(guard: Guard) -> Any:
    """The FastAPI dependency that admits (or refuses) one HTTP request."""

    async def guard_dependency(request: Request) -> None:
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        if path in guard.config.public_routes:
            return
        rule = HTTP_RULES.get((request.method, path), FAIL_CLOSED)
        try:
            params = await _params(request)
            peer = request.client.host if request.client else ""
            p = await guard.admit(request.headers.get("authorization"), peer=peer,
                                  cert_user=None, where=f"{request.method} {path}",
                                  rule=rule, request=params)
        except MetricflowError as e:
            raise GuardError(e) from None
        request.state.principal = p
        CURRENT.set((p, guard.authz))  # type: ignore[arg-type]

    return guard_dependency


def secure_app(app: FastAPI, guard: Guard, extra_routers: list[Any] | None = None) -> FastAPI:
    """A new app serving `app`'s routes (plus `extra_routers`), each behind the guard."""
    dep = Depends(make_dependency(guard))
    out = FastAPI(title=app.title, version=app.version, docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[dep])
    out.exception_handlers.update(app.exception_handlers)

    @out.exception_handler(GuardError)
    async def _guard_error(request: Request, exc: GuardError) -> JSONResponse:
        return error_response(exc.err)

    kept = []
    for r in app.router.routes:
        if isinstance(r, Route) and not isinstance(r, APIRoute):
            if r.path in _FASTAPI_DOCS:
                continue  # the inner app's unguarded docs; `out` serves a guarded schema
            # A raw Starlette route would skip the dependency: refuse to serve it.
            raise ValueError(f"route {r.path!r} is not an APIRoute; it cannot be guarded")
        kept.append(r)
    app.router.routes = kept
    out.include_router(app.router)
    for router in extra_routers or []:
        out.include_router(router)

    @out.get("/openapi.json", dependencies=[dep], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(out.openapi())

    return out


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation in `app`'s OpenAPI schema."""
    return sorted((m.upper(), path) for path, ops in app.openapi().get("paths", {}).items()
                  for m in ops)
