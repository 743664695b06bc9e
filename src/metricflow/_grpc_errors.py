"""Map metricflow errors to and from gRPC status codes (via errors.STATUS_TABLE)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from metricflow.errors import STATUS_TABLE, ErrorCode, MetricflowError, error_from_code

log = logging.getLogger(__name__)
CODE_KEY = "mf-error-code"
RETRY_KEY = "mf-retry-after-s"
DETAILS_KEY = "mf-error-details"
"""The error's details (field, limit, received...) as JSON."""
_DETAILS_MAX = 4000  # characters of JSON in one trailing header
_RESERVED = frozenset({"code", "message", "retry_after_s"})  # the errors' own arguments
T = TypeVar("T")
_BY_STATUS = {status: code for code, (status, _http) in STATUS_TABLE.items()}


def trailing_metadata(err: MetricflowError) -> tuple[tuple[str, str], ...]:
    """What lets a client rebuild `err`: its code, retry hint and details."""
    md = [(CODE_KEY, err.code.value)]
    retry = getattr(err, "retry_after_s", None)
    if retry is not None:
        md.append((RETRY_KEY, f"{retry:.3f}"))
    details = details_json(err)
    if details is not None:
        md.append((DETAILS_KEY, details))
    return tuple(md)


async def abort(context: grpc.aio.ServicerContext, err: MetricflowError) -> None:
    """Abort the RPC with the error's gRPC status and `trailing_metadata(err)`."""
    context.set_trailing_metadata(trailing_metadata(err))
    await context.abort(getattr(grpc.StatusCode, err.grpc_status_name), err.message)


def details_json(err: MetricflowError) -> str | None:
    """The error's details as ASCII JSON for a trailing header; a value too large for one
    is left out (its field is still named), None when nothing is left."""
    d = {k: v for k, v in getattr(err, "details", {}).items() if k not in _RESERVED}
    if not d:
        return None
    text = json.dumps(d, default=str)
    if len(text) > _DETAILS_MAX:
        d = {k: v for k, v in d.items() if len(json.dumps(v, default=str)) <= 200}
        text = json.dumps(d, default=str)
    return text if d and len(text) <= _DETAILS_MAX else None


def handles_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorator for unary aio handlers: MetricflowError -> status; others -> INTERNAL."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await fn(self, request, context)
        except MetricflowError as e:
            await abort(context, e)
        except (grpc.aio.AbortError, grpc.RpcError):
            raise
        except Exception as e:  # never crash the server on one request
            log.exception("unhandled error in %s", fn.__name__)
            await abort(context, MetricflowError(f"internal error: {type(e).__name__}"))
        raise AssertionError("unreachable")

    return wrapper


def from_rpc_error(e: grpc.RpcError) -> MetricflowError:
    """Rebuild a MetricflowError on the client side from a failed call."""
    md = dict(e.trailing_metadata() or ())  # type: ignore[attr-defined]
    code = md.get(CODE_KEY)
    msg = e.details() or str(e)  # type: ignore[attr-defined]
    if code is None:  # no metricflow code: a transport failure or a foreign server
        code = _BY_STATUS.get(e.code().name, ErrorCode.INTERNAL_ERROR).value  # type: ignore[attr-defined]
    details: dict[str, Any] = {}
    try:
        extra = json.loads(md.get(DETAILS_KEY) or "{}")
    except ValueError:
        extra = {}
    if isinstance(extra, dict):
        details.update({str(k): v for k, v in extra.items() if k not in _RESERVED})
    if RETRY_KEY in md:
        details["retry_after_s"] = float(md[RETRY_KEY])
    return error_from_code(code, msg, **details)
