"""The authenticated caller of the current request, for layers below the guard.

The gRPC interceptor and the HTTP dependency set it once per call; it flows
into worker threads (asyncio.to_thread copies the context). Handlers read the
actor from it instead of trusting a header, and search layers read the
caller's readable set from it.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metricflow.auth._authz import Authorizer
    from metricflow.auth._types import Principal

CURRENT: contextvars.ContextVar[tuple[Principal, Authorizer] | None] = contextvars.ContextVar(
    "metricflow_principal", default=None)


def current() -> tuple[Principal, Authorizer] | None:
    """(principal, authorizer) of the request being served, or None outside one."""
    return CURRENT.get()


def current_user() -> str | None:
    cur = CURRENT.get()
    return cur[0].user or None if cur is not None else None


def grpc_actor(context: Any) -> str | None:
    """`actor_of` hook for the registry's gRPC servicers: the authenticated user."""
    return current_user()


def http_actor(request: Any) -> str | None:
    """`actor_of` hook for the registry's HTTP routes: the authenticated user."""
    return current_user()
