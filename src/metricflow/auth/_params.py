"""One view of a request's parameters for the guard and the handler.

The guard must decide on exactly the values the handler will act on. So the
HTTP guard never merges query, body and path by rules of its own:

- MLflow routes parse their request with `mlflow_compat.Args`; the route's
  endpoint carries that parser (`endpoint.mf_parse`), the guard runs it once and
  leaves the result on the request (`request.state`) for the handler to use.
- FastAPI routes take each declared parameter from the place FastAPI reads it
  (path, query or JSON body, from the route's dependant); anything else the
  client sent is invisible to both.

Either way a repeated scalar query parameter is refused (400), and a value of
the wrong JSON type is an InvalidArgument, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from metricflow.errors import InvalidArgument

ARGS_STATE = "mf_args"
"""`request.state` attribute holding the parsed MLflow Args (shared by guard and handler)."""


@runtime_checkable
class ParamView(Protocol):
    """A request's parameters as its handler reads them."""

    def param(self, name: str) -> Any:
        """The scalar value `name` (None when absent); InvalidArgument if it is repeated."""

    def param_list(self, name: str) -> Any:
        """The list value `name` ([] when absent; as sent otherwise, for the policy to check)."""


def param_of(r: Any, name: str) -> Any:
    """`name` of a view, a dict or a protobuf message (None when absent)."""
    if isinstance(r, ParamView):
        return r.param(name)
    if isinstance(r, dict):
        return r.get(name)
    return getattr(r, name, None)


def list_of(r: Any, name: str) -> Any:
    """List parameter `name` of a view, a dict or a protobuf message."""
    if isinstance(r, ParamView):
        return r.param_list(name)
    return param_of(r, name)


def repeated(name: str, values: list[str]) -> InvalidArgument:
    return InvalidArgument(
        f"query parameter {name!r} is given {len(values)} times; it takes one value",
        field=name, received=len(values))


class FieldView:
    """Parameters of a FastAPI route, each from the one place FastAPI reads it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def param(self, name: str) -> Any:
        return self.values.get(name)

    def param_list(self, name: str) -> Any:
        # As sent: the policy refuses a value that is not a list (the handler would too).
        v = self.values.get(name)
        return [] if v is None else v


@dataclass(frozen=True)
class RouteSpec:
    """Where a FastAPI route's handler reads each of its parameters."""

    path: tuple[str, ...]
    query: tuple[tuple[str, bool], ...]
    """(name, is a sequence)"""
    body: tuple[str, ...] | None
    """Body fields; None = the route has no body parameter (its body is not parsed)."""
    embed: bool
    """The body is {param name: value} rather than the one model's fields."""


def route_spec(route: Any) -> RouteSpec:
    """The parameter places of an APIRoute, as FastAPI's request handler uses them."""
    from fastapi._compat import field_annotation_is_sequence
    from fastapi.dependencies.utils import _get_flat_body_params

    paths: list[Any] = []
    queries: list[Any] = []
    stack = [route.dependant]
    while stack:
        d = stack.pop()
        paths.extend(d.path_params)
        queries.extend(d.query_params)
        stack.extend(d.dependencies)
    body_params = _get_flat_body_params(route.dependant)
    embed = bool(getattr(route, "_embed_body_fields", len(body_params) > 1))
    body: tuple[str, ...] | None = None
    if body_params:
        names = None if embed else _model_fields(body_params[0].field_info.annotation)
        body = tuple(names) if names is not None else tuple(f.alias for f in body_params)
        embed = embed or names is None
    return RouteSpec(
        path=tuple(f.alias for f in paths),
        query=tuple((f.alias, field_annotation_is_sequence(f.field_info.annotation))
                    for f in queries),
        body=body, embed=embed)


def _model_fields(annotation: Any) -> list[str] | None:
    fields = getattr(annotation, "model_fields", None)
    if not isinstance(fields, dict):
        return None
    return [f.alias or n for n, f in fields.items()]


def fastapi_view(spec: RouteSpec, query: Any, path: dict[str, Any],
                 body: bytes | None) -> FieldView:
    """The parameters a FastAPI route's handler receives, from where it receives them.

    Args:
        spec: the route's parameter places (`route_spec`).
        query: the request's QueryParams (a multi-dict).
        path: the matched path parameters.
        body: the raw body (read only when `spec.body` is not None).
    """
    out: dict[str, Any] = {}
    if spec.body is not None:
        try:
            parsed = json.loads(body) if body and body.strip() else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            parsed = {}  # FastAPI answers 400 (BodyLimit refuses deep nesting before this)
        if isinstance(parsed, dict):
            out.update({n: parsed[n] for n in spec.body if n in parsed})
    for name, is_seq in spec.query:
        vals = query.getlist(name)
        if not vals:
            continue
        if is_seq:
            out[name] = list(vals)
        elif len(vals) > 1:
            raise repeated(name, vals)
        else:
            out[name] = vals[0]
    out.update({n: path[n] for n in spec.path if n in path})
    return FieldView(out)
