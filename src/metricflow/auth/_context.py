"""The authenticated caller of the current request, for layers below the guard.

The gRPC interceptor and the HTTP dependency set it once per call; it flows
into worker threads (asyncio.to_thread copies the context). Handlers read the
actor from it instead of trusting a header, and search layers read the
caller's readable set from it.
"""

from __future__ import annotations

import contextvars
import functools
import getpass
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


@functools.cache
def os_user() -> str:
    """The OS user running this server ("unknown" where the system has no name for it).
    Looked up once: getpass reads the environment and then the passwd database, and with
    auth off every write names its caller (a profile of a sweep found it per request)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def caller(claimed: str | None = None) -> str:
    """Who is calling: one rule for runs, model versions and the audit log.

    With auth on, the authenticated user (whatever the client claims). With auth off,
    the name the client sent (a run's `user_id`, the registry's actor metadata or
    header), else the OS user running the server.
    """
    return current_user() or claimed or os_user()


def grpc_actor(context: Any) -> str | None:
    """`actor_of` hook for the registry's gRPC servicers: the authenticated user."""
    return caller()


def http_actor(request: Any) -> str | None:
    """`actor_of` hook for the registry's HTTP routes: the authenticated user."""
    return caller()
