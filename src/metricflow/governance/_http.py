"""`/api/v1` routes of governance: approvals, protected targets, policies, lineage.

Each route is one call of `_ops.py`: GET routes read the query string, POST routes
a JSON object. Errors answer `{"error_code", "message"}` with the code's status
(a protected transition is refused in the registry's own route, naming the
request it made). The caller is the authenticated user with auth on; with auth
off, the `X-Metricflow-Actor` header, else the server's OS user.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from metricflow.auth import caller
from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.governance._ops import OPS, ROUTES, Op

if TYPE_CHECKING:
    from metricflow.store.metadata import MetadataStore

ACTOR_HEADER = "X-Metricflow-Actor"


def governance_router(store: MetadataStore) -> APIRouter:
    """The `/api/v1` governance routes over `store` (the request handlers' view)."""
    r = APIRouter(prefix="/api/v1", tags=["governance"])
    for method_name, (verb, path) in ROUTES.items():
        _add(r, store, verb, path, OPS[method_name], method_name)
    return r


def _add(r: APIRouter, store: Any, verb: str, path: str, op: Op, name: str) -> None:
    async def handle(request: Request) -> JSONResponse:
        try:
            if verb == "GET":
                params: Any = dict(request.query_params)
            else:
                try:
                    params = await request.json() if await request.body() else {}
                except ValueError:
                    raise InvalidArgument("the body must be a JSON object",
                                          field="body") from None
                if not isinstance(params, dict):
                    raise InvalidArgument("the body must be a JSON object", field="body",
                                          received=type(params).__name__)
            actor = caller(request.headers.get(ACTOR_HEADER))
            result = await asyncio.to_thread(op, store, actor, params)
            return JSONResponse(result)
        except MetricflowError as e:
            body: dict[str, Any] = {"error_code": e.code.value, "message": e.message}
            if "request_id" in e.details:
                body["request_id"] = e.details["request_id"]
            if "violations" in e.details:
                body["violations"] = e.details["violations"]
            return JSONResponse(body, status_code=e.http_status)

    handle.__name__ = f"governance_{name}"
    r.add_api_route(path, handle, methods=[verb], name=name)
