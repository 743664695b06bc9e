"""Request parsing, MLflow error bodies and route registration under both API prefixes."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

# Route annotations must resolve at module level for FastAPI (postponed annotations).
from fastapi import APIRouter, Request
from fastapi.responses import Response

from metricflow.auth import ARGS_STATE
from metricflow.errors import ErrorCode, InvalidArgument, MetricflowError
from metricflow.mlflow_compat._numbers import INT64_MAX, INT64_MIN, reject_float_overflow
from metricflow.mlflow_compat._strings import json_string, kv_pairs, shown

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
"""Every MLflow REST route is served under both: the client uses /api, the UI /ajax-api."""

GENAI_PATHS = ("/v1/traces", "/api/3.0/jobs/{rest:path}", "/ajax-api/3.0/jobs/{rest:path}")
"""MLflow GenAI routes outside the /mlflow prefixes (whose unknown routes answer
ENDPOINT_NOT_FOUND already): answered ENDPOINT_NOT_FOUND too (docs/mlflow.md)."""

# metricflow code -> (MLflow error_code, HTTP status). The names are MLflow's
# ErrorCode names, which its client maps back to exception types.
_MLFLOW_CODES: dict[ErrorCode, tuple[str, int]] = {
    ErrorCode.INVALID_PARAMETER_VALUE: ("INVALID_PARAMETER_VALUE", 400),
    ErrorCode.RESOURCE_DOES_NOT_EXIST: ("RESOURCE_DOES_NOT_EXIST", 404),
    ErrorCode.RESOURCE_ALREADY_EXISTS: ("RESOURCE_ALREADY_EXISTS", 400),
    ErrorCode.INVALID_STATE: ("INVALID_STATE", 400),
    ErrorCode.CONFLICT: ("ABORTED", 409),
    ErrorCode.RESOURCE_EXHAUSTED: ("RESOURCE_EXHAUSTED", 429),
    ErrorCode.UNAUTHENTICATED: ("UNAUTHENTICATED", 401),
    ErrorCode.PERMISSION_DENIED: ("PERMISSION_DENIED", 403),
    ErrorCode.UNAVAILABLE: ("TEMPORARILY_UNAVAILABLE", 503),
    ErrorCode.DEADLINE_EXCEEDED: ("DEADLINE_EXCEEDED", 504),
    ErrorCode.INTERNAL_ERROR: ("INTERNAL_ERROR", 500),
}


class MlflowApiError(MetricflowError):
    """An error whose MLflow code has no metricflow twin (ENDPOINT_NOT_FOUND, ...)."""

    def __init__(self, message: str, mlflow_code: str, http_status: int) -> None:
        super().__init__(message, ErrorCode.INVALID_PARAMETER_VALUE)
        self.mlflow_code, self.status = mlflow_code, http_status


def error_response(exc: Exception) -> Response:
    """MLflow's error body: {"error_code": ..., "message": ...} with its HTTP status."""
    if isinstance(exc, MlflowApiError):
        code, status, msg = exc.mlflow_code, exc.status, exc.message
    elif isinstance(exc, MetricflowError):
        code, status = _MLFLOW_CODES.get(exc.code, ("INTERNAL_ERROR", 500))
        msg = exc.message
    elif isinstance(exc, OverflowError):
        # Last resort: every id and integer is range-checked where it is read, so this
        # is a missed check, but still the caller's number, not a server fault.
        log.warning("a number out of range reached a store: %s", exc)
        code, status = "INVALID_PARAMETER_VALUE", 400
        msg = f"a number in the request is out of range: {exc}"
    else:
        log.exception("MLflow API handler failed")
        code, status, msg = "INTERNAL_ERROR", 500, f"{type(exc).__name__}: {exc}"
    return json_response({"error_code": code, "message": msg}, status)


def num(x: float) -> float | str:
    """A float as MLflow's JSON writes it: NaN and infinities as strings."""
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def json_response(obj: Any, status: int = 200) -> Response:
    body = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status, media_type="application/json")


class Args:
    """The parameters of one request: query string merged with the JSON body."""

    def __init__(self, query: Any, body: dict[str, Any],
                 path: dict[str, Any] | None = None) -> None:
        self._query, self._body = query, body
        self.path: dict[str, Any] = path or {}
        self.base_url = ""
        """The URL the client reached this server at (for URLs handed back to it)."""

    @classmethod
    async def read(cls, request: Request) -> Args:
        body: dict[str, Any] = {}
        if request.method != "GET":
            raw = await request.body()
            if raw.strip():
                try:
                    parsed = json.loads(raw, parse_float=reject_float_overflow)
                except ValueError as e:
                    raise InvalidArgument(f"request body is not valid JSON: {e}",
                                          field="body") from None
                except RecursionError:  # BodyLimit refuses these first, with the limit
                    raise InvalidArgument("request body is nested too deeply",
                                          field="body") from None
                if not isinstance(parsed, dict):
                    raise InvalidArgument("request body must be a JSON object", field="body")
                body = parsed
        args = cls(request.query_params, body, dict(request.path_params))
        args.base_url = str(request.base_url)
        return args

    def get(self, name: str, default: Any = None) -> Any:
        """Path, then a non-null body value, then the query string (one value only)."""
        if name in self.path:
            return self.path[name]
        if name in self._body and self._body[name] is not None:
            return self._body[name]
        if name in self._query:
            vals = self._query.getlist(name) if hasattr(self._query, "getlist") else None
            if vals is not None and len(vals) > 1:
                # The auth guard decides on the same value: an ambiguous one is refused.
                raise InvalidArgument(f"query parameter {name!r} is given {len(vals)} times; "
                                      "it takes one value", field=name, received=len(vals))
            return self._query[name]
        return default

    # The auth guard's view of the request (metricflow.auth._params.ParamView): the
    # guard decides on exactly what the handler reads.
    def param(self, name: str) -> Any:
        return self.get(name)

    def param_list(self, name: str) -> list[Any]:
        return self.items(name)

    def text(self, name: str, default: str = "") -> str:
        """A `string` field: a JSON string (or absent/null -> `default`); else MLflow's 400
        (`Invalid value 123 for parameter 'name' supplied`)."""
        v = self.get(name, default)
        if isinstance(v, str):
            return v
        if v is None:
            return default
        return json_string(v, name)  # raises: a number, boolean, list or object

    def required(self, name: str, *aliases: str) -> str:
        for n in (name, *aliases):
            v = self.text(n)
            if v:
                return v
        raise InvalidArgument(f"Missing value for required parameter '{name}'. See the API "
                              "docs for more information about request parameters.",
                              field=name)

    def integer(self, name: str, default: int | None = None) -> int | None:
        v = self.get(name)
        if v is None or v == "":
            return default
        try:
            if isinstance(v, bool) or isinstance(v, float) and not v.is_integer():
                raise ValueError
            n = int(v)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgument(f"Invalid value {shown(v)} for parameter '{name}' supplied: "
                                  "expected an integer", field=name,
                                  received=shown(v)) from None
        if not INT64_MIN <= n <= INT64_MAX:
            raise InvalidArgument(f"Invalid value {str(v)[:40]} for parameter '{name}' "
                                  f"supplied: out of range; the limit is {INT64_MAX} (a 64-bit "
                                  "integer)", field=name, limit=INT64_MAX,
                                  received=str(v)[:40])
        return n

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.get(name)
        if v is None or v == "":
            return default
        if isinstance(v, bool):
            return v
        if str(v).lower() in ("true", "1"):
            return True
        if str(v).lower() in ("false", "0"):
            return False
        raise InvalidArgument(f"Invalid value {shown(v)} for parameter '{name}' supplied: "
                              "expected a boolean", field=name, received=shown(v))

    def items(self, name: str) -> list[Any]:
        if name in self._body and self._body[name] is not None:
            v = self._body[name]
            if not isinstance(v, list):
                raise InvalidArgument(f"Invalid value {shown(v)} for parameter '{name}' "
                                      "supplied: expected a list", field=name,
                                      received=shown(v))
            return v
        if hasattr(self._query, "getlist"):
            return list(self._query.getlist(name))
        return []

    def kv_list(self, name: str) -> list[tuple[str, str]]:
        """A list of {"key": ..., "value": ...} objects as (key, value) pairs (strings only)."""
        return kv_pairs(self.items(name), name)


Handler = Callable[[Args], Awaitable[Any]]


class MlflowRoutes:
    """Collects handlers and mounts each under every prefix it belongs to."""

    def __init__(self, prefixes: Iterable[str] = API_PREFIXES) -> None:
        self.router = APIRouter(include_in_schema=False)
        self.prefixes = tuple(prefixes)

    def add(self, methods: str | list[str], path: str, handler: Handler,
            prefixes: Iterable[str] | None = None, rule: Any = None) -> None:
        """Register `handler` (Args -> JSON-able dict or Response) for `path`.

        `rule`: the auth Rule of a route outside `metricflow.auth.policy.HTTP_RULES`
        (without one such a route is admin-only when auth is on)."""
        async def endpoint(request: Request) -> Response:
            try:
                # With auth on, the guard parsed the request already (endpoint.mf_parse)
                # and decided on that very object.
                args = getattr(request.state, ARGS_STATE, None) or await Args.read(request)
                out = await handler(args)
            except Exception as e:  # every failure becomes an MLflow error body
                return error_response(e)
            return out if isinstance(out, Response) else json_response(out)

        endpoint.mf_parse = Args.read  # type: ignore[attr-defined]
        if rule is not None:
            endpoint.mf_rule = rule  # type: ignore[attr-defined]

        ms = [methods] if isinstance(methods, str) else list(methods)
        for prefix in prefixes if prefixes is not None else self.prefixes:
            self.router.add_api_route(prefix + path, endpoint, methods=ms,
                                      name=f"mlflow:{ms[0]}:{path}")

    def not_found_fallback(self, prefixes: Iterable[str]) -> None:
        """Unknown MLflow endpoints answer as MLflow does, not with FastAPI's 404 body."""
        async def missing(request: Request) -> Response:
            return error_response(MlflowApiError(
                f"No endpoint {request.method} {request.url.path} on this server; see "
                "docs/mlflow.md for the supported MLflow endpoints", "ENDPOINT_NOT_FOUND", 404))

        for prefix in prefixes:
            self.router.add_api_route(prefix + "/{rest:path}", missing,
                                      methods=["GET", "POST", "PATCH", "DELETE", "PUT"],
                                      name=f"mlflow:missing:{prefix}")

    def genai_fallback(self, paths: Iterable[str], rule: Any) -> None:
        """MLflow GenAI routes outside the /mlflow prefixes (OTLP trace export, jobs):
        MLflow's ENDPOINT_NOT_FOUND at once, so a client never waits on one."""
        async def missing(request: Request) -> Response:
            return error_response(MlflowApiError(
                f"No endpoint {request.method} {request.url.path} on this server: MLflow's "
                "GenAI features (traces, jobs, gateway) are not served; see docs/mlflow.md",
                "ENDPOINT_NOT_FOUND", 404))

        missing.mf_rule = rule  # type: ignore[attr-defined]
        for path in paths:
            self.router.add_api_route(path, missing,
                                      methods=["GET", "POST", "PATCH", "DELETE", "PUT"],
                                      name=f"mlflow:genai:{path}")
