"""Authenticator: credentials -> Principal, with failure auditing and rate limits.

Accepted credentials: `authorization: Bearer mft_...` (gRPC metadata or HTTP
header), HTTP `Basic` user:password (argon2id), and, with mTLS, a verified
client certificate whose CN names an existing user.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import logging
import threading
import time

from metricflow.auth._store import AuthStore, now_ms
from metricflow.auth._types import AuthConfig, Principal
from metricflow.errors import ResourceExhausted, Unauthenticated

log = logging.getLogger(__name__)
_AUDIT_WINDOW_S = 10.0
_MAX_AUDIT_KEYS = 10_000
_PASSWORD_SLOT_WAIT_S = 2.0
CERT_SCOPES = ("edit", "manage", "read")
"""Scopes of a client-certificate principal not listed in AuthConfig.cert_admin_users."""


def _host(peer: str) -> str:
    """The client address of a peer ("ipv4:1.2.3.4:5678" / "1.2.3.4"), without the port."""
    if not peer:
        return "unknown"
    if peer.startswith(("ipv4:", "ipv6:")):  # gRPC peers carry the port
        return peer.rsplit(":", 1)[0]
    return peer  # HTTP: request.client.host, no port


class RateLimiter:
    """A token bucket per key: `rate` requests/s, bursts of 2 s worth."""

    def __init__(self, rate: float, burst: float | None = None,
                 what: str = "requests/s per token") -> None:
        self.rate, self.burst = rate, max(1.0, 2 * rate) if burst is None else burst
        self.what = what
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """ResourceExhausted if `take(key)` would fail now; spends nothing."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            level = self._level(key, now)
        if level < 1.0:
            self._exhausted((1.0 - level) / self.rate)

    def _level(self, key: str, now: float) -> float:
        """Tokens in `key`'s bucket at `now` (caller holds the lock)."""
        level, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, level + (now - last) * self.rate)

    def _exhausted(self, wait: float) -> None:
        raise ResourceExhausted(
            f"rate limit of {self.rate:g} {self.what} exceeded; retry in {wait:.2f}s",
            retry_after_s=round(wait, 3), field="rate_limit", limit=self.rate)

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost`; raise ResourceExhausted with the wait until it would fit."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            level = self._level(key, now)
            if level < cost:
                self._buckets[key] = (level, now)
                self._exhausted((cost - level) / self.rate)
            self._buckets[key] = (level - cost, now)
            if len(self._buckets) > 100_000:
                self._buckets.clear()


class Authenticator:
    """Turns presented credentials into a Principal, or raises Unauthenticated."""

    def __init__(self, store: AuthStore, config: AuthConfig) -> None:
        self.store, self.config = store, config
        self.limiter = RateLimiter(config.rate_limit_per_s)
        # sha256(token) -> (principal, expires_at_ms, trust_until_monotonic)
        self._cache: dict[str, tuple[Principal, int | None, float]] = {}
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], tuple[float, int]] = {}
        # argon2id costs ~64 MiB and a noticeable CPU slice per check: failed password
        # attempts are limited per client address *before* the check runs, and only a few
        # checks run at once, so a flood cannot stall the worker threads tokens need.
        self.password_failures = RateLimiter(
            config.password_failures_per_s, burst=config.password_failure_burst,
            what="failed password attempts/s per client address")
        self._password_slots = threading.BoundedSemaphore(config.max_password_checks)

    def authenticate(self, authorization: str | None, *, peer: str = "",
                     cert_user: str | None = None, where: str = "") -> Principal:
        """The caller's principal; every failure is audited (coalesced per peer)."""
        try:
            return self._authenticate(authorization, cert_user, _host(peer))
        except Unauthenticated as e:
            self.record_failure(e.message, peer, where)
            raise

    def _authenticate(self, authorization: str | None, cert_user: str | None,
                      host: str) -> Principal:
        if authorization:
            scheme, _, cred = authorization.strip().partition(" ")
            scheme, cred = scheme.lower(), cred.strip()
            if scheme == "bearer" and cred:
                return self._bearer(cred)
            if scheme == "basic" and cred:
                return self._basic(cred, host)
            raise Unauthenticated("authorization must be 'Bearer <token>' or 'Basic ...'")
        if cert_user is not None and self.config.cert_users:
            p = self.store.principal_of_user(cert_user)
            if p is not None:
                # A certificate is a machine identity: an admin user's CN does not make
                # it an admin credential unless explicitly mapped (cert_admin_users).
                if cert_user in self.config.cert_admin_users:
                    return p
                return dataclasses.replace(p, scopes=CERT_SCOPES)
            raise Unauthenticated("client certificate does not name a known user")
        raise Unauthenticated("credentials required: send 'authorization: Bearer <token>'")

    def _bearer(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[2] > now:
            if hit[1] is None or hit[1] > now_ms():
                return hit[0]
        principal, expires = self.store.verify_token(token)
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (principal, expires, now + self.config.token_cache_s)
        return principal

    def _basic(self, cred: str, host: str) -> Principal:
        try:
            raw = base64.b64decode(cred, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthenticated("malformed Basic credentials") from None
        user, sep, password = raw.partition(":")
        if not sep:
            raise Unauthenticated("malformed Basic credentials")
        self.password_failures.check(host)  # 429 before argon2 runs
        if not self._password_slots.acquire(timeout=_PASSWORD_SLOT_WAIT_S):
            raise ResourceExhausted(
                f"too many password checks in progress (limit "
                f"{self.config.max_password_checks}); retry shortly or use a token",
                retry_after_s=1.0, field="max_password_checks",
                limit=self.config.max_password_checks)
        try:
            return self.store.verify_password(user, password)
        except Unauthenticated:
            try:
                self.password_failures.take(host)
            except ResourceExhausted:
                pass  # this failure is answered 401; the next attempt gets 429
            raise
        finally:
            self._password_slots.release()

    def forget_token(self, token_id: str) -> None:
        """Drop a revoked token, and the UI sessions signed in with it, from the cache at
        once (other processes: after token_cache_s)."""
        with self._lock:
            for k in [k for k, v in self._cache.items()
                      if token_id in (v[0].token_id, v[0].parent_token_id)]:
                del self._cache[k]

    def forget_user(self, username: str) -> None:
        """Drop every cached token of a user (deleted, or a new password ended their UI
        sessions): the next request re-reads the store."""
        with self._lock:
            for k in [k for k, v in self._cache.items() if v[0].user == username]:
                del self._cache[k]

    def record_failure(self, reason: str, peer: str, where: str) -> None:
        """Audit an authentication failure; repeats from one peer are coalesced per 10 s."""
        host = _host(peer)
        key = (reason, host)
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._failures.get(key, (0.0, 0))
            if now - last < _AUDIT_WINDOW_S:
                self._failures[key] = (last, suppressed + 1)
                return
            if len(self._failures) > _MAX_AUDIT_KEYS:
                self._failures.clear()
            self._failures[key] = (now, 0)
        log.warning("authentication failed: %s (peer %s, %s)", reason, host, where)
        try:
            self.store.audit(None, actor="anonymous", action="auth_failure",
                             entity_type="auth", entity_id=host,
                             after={"reason": reason, "where": where[:200],
                                    "suppressed_since_last": suppressed})
        except Exception:  # auditing must not turn a 401 into a 500
            log.exception("could not audit an authentication failure")
