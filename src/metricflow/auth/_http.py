"""The FastAPI side: one dependency on every route, and the app wrapper that adds it.

`secure_app(app, guard)` rebuilds the app's routes under a new FastAPI app with
`Depends(guard_dependency)` attached to every one of them, so routes added by
any router (query, registry, MLflow compat, admin) are covered without their
authors doing anything. OpenAPI and docs are served behind the same check.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from metricflow.auth._context import CURRENT
from metricflow.auth._cookie import cookie_authorization
from metricflow.auth._guard import Guard
from metricflow.auth._http_input import (
    MAX_JSON_DEPTH,
    install_handlers,
    lone_surrogate,
    lone_surrogate_message,
    nested_deeper_than,
    too_deep_message,
)
from metricflow.auth._params import ARGS_STATE, RouteSpec, fastapi_view, route_spec
from metricflow.auth.policy import FAIL_CLOSED, HTTP_RULES, Rule
from metricflow.errors import ErrorCode, MetricflowError, PermissionDenied, ResourceExhausted

log = logging.getLogger(__name__)
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


class BodyLimit:
    """ASGI middleware: reads the whole body of every route whose handler parses it.

    Any length and any framing (Content-Length or chunked): the body is buffered
    up to `limit` bytes and replayed to the app, so the guard and the handler
    see the same bytes; a larger body is answered 413 before any of it is parsed.
    Routes that stream their body as raw content (artifact uploads) and never read
    parameters from it (`raw`: (path regex, methods)) are passed through untouched.
    """

    def __init__(self, app: Any, limit: int, table: list[tuple[Any, set[str], bool]]) -> None:
        self.app, self.limit, self.table = app, limit, table

    def _is_raw(self, scope: dict[str, Any]) -> bool:
        # The first route matching path and method serves the request (as in the router):
        # a catch-all raw route after a parsing one must not exempt the parsing one.
        path, method = scope.get("path", ""), scope.get("method", "")
        for rx, methods, raw in self.table:
            if method in methods and rx.match(path):
                return raw
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._is_raw(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        counted = not declared.isdigit()  # chunked (or no length): count what arrives
        size = 0 if counted else int(declared)
        chunks: list[bytes] = []
        complete = False
        while size <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            data = message.get("body", b"")
            if counted:
                size += len(data)
            chunks.append(data)
            if not message.get("more_body", False):
                complete = True
                break
        if size > self.limit:
            # Let the client finish sending (discarded, never parsed, bounded) before the
            # 413: a server that answers and closes mid-upload makes the client's TCP
            # stack reset the connection, and the client never sees the answer.
            if not complete:
                await _drain(receive, 4 * self.limit)
            await _too_large(send, size, self.limit)
            return
        body, sent = b"".join(chunks), False
        if nested_deeper_than(body, MAX_JSON_DEPTH):
            # Before any parser: Python's recurses and raises RecursionError near 1,000.
            await _refuse(send, 400, ErrorCode.INVALID_PARAMETER_VALUE,
                          too_deep_message(MAX_JSON_DEPTH))
            return
        where = lone_surrogate(body)
        if where is not None:  # nothing could store or encode such a string
            await _refuse(send, 400, ErrorCode.INVALID_PARAMETER_VALUE,
                          lone_surrogate_message(where))
            return

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _leaves(routes: Any, prefix: str = "") -> Any:
    """(full path prefix, route) of every route, through FastAPI's included routers."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:  # FastAPI >= 0.16x keeps included routers as nodes
            ctx = getattr(r, "include_context", None)
            yield from _leaves(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        else:
            yield prefix, r


def _body_table(routes: Any) -> list[tuple[Any, set[str], bool]]:
    """(path regex, methods, raw) of every route in routing order; raw = the handler
    reads its body as content (or not at all), never parameters from it."""
    out = []
    for prefix, r in _leaves(routes):
        if isinstance(r, APIRoute):
            raw = not hasattr(r.endpoint, "mf_parse") and _spec(r).body is None
            out.append((compile_path(prefix + r.path)[0], set(r.methods or ()), raw))
    return out


async def _drain(receive: Any, cap: int) -> None:
    """Read and discard the rest of a request body, up to `cap` bytes."""
    seen = 0
    while seen <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _too_large(send: Any, size: int, limit: int) -> None:
    await _refuse(send, 413, ErrorCode.RESOURCE_EXHAUSTED,
                  f"request body is {size} bytes or more; the limit is {limit} bytes "
                  "(AuthConfig.max_body_bytes)")


async def _refuse(send: Any, status: int, code: ErrorCode, message: str) -> None:
    body = json.dumps({"error_code": code.value, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _spec(route: APIRoute) -> RouteSpec:
    """The route's parameter places, computed once and kept on the route itself."""
    spec: RouteSpec | None = getattr(route, "_mf_param_spec", None)
    if spec is None:
        spec = route_spec(route)
        route._mf_param_spec = spec  # type: ignore[attr-defined]
    return spec


async def request_view(request: Request) -> Any:
    """The request's parameters exactly as its handler will read them (see `_params`)."""
    route = request.scope.get("route")
    parse = getattr(getattr(route, "endpoint", None), "mf_parse", None)
    if parse is not None:  # an MLflow route: its own parser, shared with the handler
        view = await parse(request)
        setattr(request.state, ARGS_STATE, view)
        return view
    if not isinstance(route, APIRoute):
        raise PermissionDenied("this route cannot be authorized")  # secure_app forbids it
    spec = _spec(route)
    body = await request.body() if spec.body is not None else None
    return fastapi_view(spec, request.query_params, dict(request.path_params), body)


def _public(route: Any, request: Request) -> bool:
    """An endpoint marked `mf_public` (True, or a predicate of the request) is served
    without credentials: the web UI's static files and its sign-in route."""
    public = getattr(getattr(route, "endpoint", None), "mf_public", False)
    return bool(public(request) if callable(public) else public)


def make_dependency(guard: Guard) -> Any:
    """The FastAPI dependency that admits (or refuses) one HTTP request."""

    async def guard_dependency(request: Request) -> None:
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        request.state.guard = guard  # the web UI's sign-in route authenticates through it
        if path in guard.config.public_routes or _public(route, request):
            return
        # Routes outside the table (the web UI's /ui-api) carry their rule on the endpoint.
        rule: Rule | None = HTTP_RULES.get((request.method, path))
        if rule is None:
            rule = getattr(getattr(route, "endpoint", None), "mf_rule", FAIL_CLOSED)
        where = f"{request.method} {path}"
        try:
            # The UI's session cookie when no authorization header is sent (CSRF-checked).
            authorization = request.headers.get("authorization") or cookie_authorization(
                request.method, request.headers, request.cookies)
            params = await request_view(request)
            peer = request.client.host if request.client else ""
            p = await guard.admit(authorization, peer=peer,
                                  cert_user=None, where=where, rule=rule, request=params)
        except MetricflowError as e:
            raise GuardError(e) from None
        except Exception:  # a guard that fails must refuse, not answer 500
            log.exception("authorization of %s failed; refusing the request", where)
            raise GuardError(PermissionDenied(
                "the request could not be authorized (see the server log)")) from None
        request.state.principal = p
        CURRENT.set((p, guard.authz))  # type: ignore[arg-type]
        # Long responses (the live tail) call this before each chunk while they run.
        request.state.recheck = guard.stream_recheck(functools.partial(
            guard.admit, authorization, peer=peer,
            cert_user=None, where=where, rule=rule, request=params))

    return guard_dependency


def secure_app(app: FastAPI, guard: Guard, extra_routers: list[Any] | None = None) -> FastAPI:
    """A new app serving `app`'s routes (plus `extra_routers`), each behind the guard."""
    dep = Depends(make_dependency(guard))
    out = FastAPI(title=app.title, version=app.version, docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[dep])
    out.exception_handlers.update(app.exception_handlers)
    install_handlers(out)  # 400 for FastAPI's validation errors (never its 422/500)

    @out.exception_handler(GuardError)
    async def _guard_error(request: Request, exc: GuardError) -> JSONResponse:
        return error_response(exc.err)

    kept = []
    for r in app.router.routes:
        if not isinstance(r, APIRoute) and getattr(r, "path", None) in _FASTAPI_DOCS:
            continue  # the inner app's unguarded docs; `out` serves a guarded schema
        kept.append(r)
    app.router.routes = kept
    out.include_router(app.router)
    for router in extra_routers or []:
        out.include_router(router)

    @out.get("/openapi.json", dependencies=[dep], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(out.openapi())

    check_guarded(out.router.routes)
    out.add_middleware(BodyLimit, limit=guard.config.max_body_bytes,
                       table=_body_table(out.router.routes))
    return out


def check_guarded(*route_lists: Any) -> None:
    """ValueError unless every route is an APIRoute (the only kind the dependency reaches).

    A Mount, WebSocketRoute, Host or raw Starlette Route would be served without
    the guard, so the app refuses to start instead.
    """
    for routes in route_lists:
        for _, r in _leaves(routes):
            if not isinstance(r, APIRoute):
                raise ValueError(f"route {getattr(r, 'path', r)!r} ({type(r).__name__}) is "
                                 "not an APIRoute; it cannot be guarded")


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation in `app`'s OpenAPI schema."""
    return sorted((m.upper(), path) for path, ops in app.openapi().get("paths", {}).items()
                  for m in ops)
