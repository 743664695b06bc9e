"""Guard: the one decision procedure behind the gRPC interceptor and the HTTP dependency.

admit() = authenticate -> rate limit -> input limits -> resolve the call's
needs from the permission table -> check them. Blocking work (SQL, the
run->experiment lookup) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from metricflow.auth._authn import Authenticator
from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._limits import KeysPerRun, check_request_filters
from metricflow.auth._types import ANONYMOUS_ADMIN, AuthConfig, Permission, Principal
from metricflow.auth.policy import Rule
from metricflow.errors import MetricflowError


class StreamRecheck:
    """An open stream's admission, run again at most every `every_s` (finding 5).

    Call it before each message: it returns the principal when a check was due
    and passed, None when none was due, and raises (and keeps in `refused`) the
    error of a refused check.
    """

    def __init__(self, admit: Callable[[], Awaitable[Principal | None]], every_s: float) -> None:
        self._admit, self.every_s = admit, every_s
        self._last = time.monotonic()
        self.refused: MetricflowError | None = None

    async def __call__(self) -> Principal | None:
        if time.monotonic() - self._last < self.every_s:
            return None
        try:
            p = await self._admit()
        except MetricflowError as e:
            self.refused = e
            raise
        self._last = time.monotonic()
        return p


class Guard:
    """Holds the authenticator, authorizer and limits of one server."""

    def __init__(self, config: AuthConfig, authn: Authenticator | None,
                 authz: Authorizer | None) -> None:
        self.config, self.authn, self.authz = config, authn, authz
        self.keys = KeysPerRun(config.max_keys_per_run)

    @property
    def enabled(self) -> bool:
        return self.config.enabled and self.authn is not None

    def _authenticate_sync(self, authorization: str | None, peer: str,
                           cert_user: str | None, where: str) -> Principal:
        if not self.enabled:
            return ANONYMOUS_ADMIN
        assert self.authn is not None
        p = self.authn.authenticate(authorization, peer=peer, cert_user=cert_user, where=where)
        self.authn.limiter.take(p.limiter_key)
        return p

    def _authorize_sync(self, p: Principal, rule: Rule, request: Any,
                        decode: Callable[[], Any] | None = None) -> Any:
        if decode is not None:  # parsed only once the caller is known (review finding 2)
            request = decode()
        if request is not None:
            check_request_filters(request, self.config)
        if self.enabled:
            assert self.authz is not None
            if request is None:  # client stream: scope now, resources per message
                needs = [Need("any", "", Permission.EDIT)]
            else:
                needs = rule.resolve(self.authz, request)
            self.authz.check(p, needs)
        return request

    def _admit_sync(self, authorization: str | None, peer: str, cert_user: str | None,
                    where: str, rule: Rule, request: Any,
                    decode: Callable[[], Any] | None = None) -> Principal:
        p = self._authenticate_sync(authorization, peer, cert_user, where)
        self._authorize_sync(p, rule, request, decode)
        return p

    async def admit(self, authorization: str | None, *, peer: str, cert_user: str | None,
                    where: str, rule: Rule, request: Any,
                    decode: Callable[[], Any] | None = None) -> Principal:
        """The caller's principal if the call is allowed; MetricflowError otherwise.

        `request=None` (client streams) checks only authentication and scope; the
        stream's messages are checked one by one as they arrive. `decode`, if given,
        yields the request after authentication and the rate limit passed, so bytes
        from an unknown caller are never parsed.
        """
        if not self.enabled and request is None and decode is None:
            return ANONYMOUS_ADMIN
        if not self.enabled and decode is None:
            # Auth off: only the input limits are checked (a few field lookups), here,
            # not through a worker thread: the hop cost more than the check, and it
            # queued behind the blocking store calls on the shared default executor.
            return self._admit_sync(authorization, peer, cert_user, where, rule, request)
        return await asyncio.to_thread(self._admit_sync, authorization, peer, cert_user,
                                       where, rule, request, decode)

    async def authenticate(self, authorization: str | None, *, peer: str,
                           cert_user: str | None, where: str) -> Principal:
        """The caller's principal from its credentials alone (rate limit spent).

        The gRPC interceptor calls this before it reads a request message, so an
        unknown caller's message is never received (re-review item 1).
        """
        if not self.enabled:
            return ANONYMOUS_ADMIN
        return await asyncio.to_thread(self._authenticate_sync, authorization, peer,
                                       cert_user, where)

    async def authorize(self, p: Principal, rule: Rule, request: Any,
                        decode: Callable[[], Any] | None = None) -> Any:
        """Decode (if `decode`), check the input limits and `p`'s permissions; the request."""
        return await asyncio.to_thread(self._authorize_sync, p, rule, request, decode)

    def stream_recheck(self, admit: Callable[[], Awaitable[Principal | None]]
                       ) -> StreamRecheck | None:
        """Re-admission of an open stream every `stream_recheck_s`; None with auth off."""
        return StreamRecheck(admit, self.config.stream_recheck_s) if self.enabled else None

    async def check_run_write(self, p: Principal, run_id: str) -> None:
        """EDIT on a run's experiment (one batch of an ingest stream)."""
        if self.enabled and not p.admin:
            assert self.authz is not None
            await asyncio.to_thread(self.authz.check, p, [Need("run", run_id, Permission.EDIT)])
