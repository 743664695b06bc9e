"""`/api/v1` routes of governance: approvals, protected targets, policies, lineage.

Each route is one call of `_ops.py` with the fields of its gRPC request message:
GET routes as query parameters, POST routes as a JSON object; a parameter or field
that is not one of them is refused (400 naming it), never ignored. Errors answer
`{"error_code", "message"}` (plus `request_id` or `violations` when there are) with
the code's status. The caller is the authenticated user with auth on; with auth off,
the `X-Metricflow-Actor` header, else the server's OS user.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from google.protobuf.descriptor import FieldDescriptor as FD
from pydantic import ConfigDict, create_model

from metricflow._proto.metricflow.governance.v1 import governance_pb2 as pb
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


_PY = {FD.TYPE_STRING: str, FD.TYPE_INT64: int, FD.TYPE_INT32: int, FD.TYPE_BOOL: bool}


def _fields(method: str) -> dict[str, Any]:
    """The call's parameters and their Python types, from its gRPC request message (one
    definition for both surfaces)."""
    m = pb.DESCRIPTOR.services_by_name["GovernanceService"].methods_by_name[method]
    out: dict[str, Any] = {}
    for f in m.input_type.fields:
        if f.is_repeated:
            out[f.name] = list[dict[str, Any]]
        else:
            out[f.name] = _PY[f.type]
    return out


_SHOWN_NAMES = 5
"""Unknown parameter names spelled out in a refusal (each cut to 80 characters)."""


def refuse_unknown_query(request: Request, accepted: frozenset[str]) -> None:
    """InvalidArgument (400) if the request's query string names a parameter the route
    does not take: a misspelt filter silently ignored would widen a listing (`model=`
    instead of `name=` lists every model's requests). Shared by every GET route."""
    unknown = sorted(set(request.query_params) - accepted)
    if not unknown:
        return
    shown = ", ".join(repr(k[:80]) for k in unknown[:_SHOWN_NAMES])
    if len(unknown) > _SHOWN_NAMES:
        shown += f" (and {len(unknown) - _SHOWN_NAMES} more)"
    takes = ", ".join(sorted(accepted)) or "no parameters"
    raise InvalidArgument(
        f"unknown query parameter{'s' if len(unknown) > 1 else ''} {shown}; "
        f"this route takes {takes}", field=unknown[0][:80],
        received=[k[:80] for k in unknown[:_SHOWN_NAMES]], limit=sorted(accepted))


def _add(r: APIRouter, store: Any, verb: str, path: str, op: Op, name: str) -> None:
    """One route whose declared parameters are the op's fields (the auth guard reads
    exactly what FastAPI hands the handler: query parameters, or the JSON body)."""
    fields = _fields(name)
    accepted = frozenset(fields)
    params = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=Request)]
    if verb == "GET":
        params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None,
                                     annotation=Annotated[t | None, Query()])
                   for k, t in fields.items()]
    else:
        # Unknown fields are refused (400 naming them): a misspelt one silently ignored
        # could widen a change (`model` instead of `name` protected every model).
        model = create_model(f"{name}Body",  # type: ignore[call-overload]
                             __config__=ConfigDict(extra="forbid"),
                             **{k: (t | None, None) for k, t in fields.items()})
        params.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=model))

    async def handle(request: Request, **kw: Any) -> JSONResponse:
        try:
            if verb == "GET":
                refuse_unknown_query(request, accepted)
                values = {k: v for k, v in kw.items() if v is not None}
            else:
                values = kw["body"].model_dump(exclude_none=True)
            actor = caller(request.headers.get(ACTOR_HEADER))
            result = await asyncio.to_thread(op, store, actor, values)
            return JSONResponse(result)
        except MetricflowError as e:
            out: dict[str, Any] = {"error_code": e.code.value, "message": e.message}
            for key in ("request_id", "violations"):
                if key in e.details:
                    out[key] = e.details[key]
            return JSONResponse(out, status_code=e.http_status)

    handle.__name__ = f"governance_{name}"
    handle.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=JSONResponse)
    r.add_api_route(path, handle, methods=[verb], name=name)
