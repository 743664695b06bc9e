"""metricflow errors <-> gRPC statuses for the registry services.

The error code travels in trailing metadata ("mf-error-code", the same key the
other metricflow services use), so the client rebuilds the exact error class
from the code, never from a class name.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from metricflow.errors import STATUS_TABLE, ErrorCode, MetricflowError, error_from_code

log = logging.getLogger(__name__)
CODE_KEY = "mf-error-code"
_BY_STATUS = {status: code for code, (status, _http) in STATUS_TABLE.items()}


async def abort_with(context: grpc.aio.ServicerContext, err: MetricflowError) -> None:
    """Abort the call with the error's gRPC status and its code in trailing metadata."""
    context.set_trailing_metadata(((CODE_KEY, err.code.value),))
    await context.abort(getattr(grpc.StatusCode, err.grpc_status_name), err.message)


def from_rpc_error(e: grpc.RpcError) -> MetricflowError:
    """Rebuild the server's MetricflowError from a failed call."""
    md: dict[str, Any] = dict(e.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = e.code()  # type: ignore[attr-defined]
    code = md.get(CODE_KEY) or _BY_STATUS.get(status.name, ErrorCode.INTERNAL_ERROR).value
    return error_from_code(code, e.details() or str(e))  # type: ignore[attr-defined]
