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
CERT_SCOPES = ("edit", "manage", "read")
"""Scopes of a client-certificate principal not listed in AuthConfig.cert_admin_users."""


class RateLimiter:
    """A token bucket per key: `rate` requests/s, bursts of 2 s worth."""

    def __init__(self, rate: float) -> None:
        self.rate, self.burst = rate, max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost`; raise ResourceExhausted with the wait until it would fit."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level < cost:
                self._buckets[key] = (level, now)
                wait = (cost - level) / self.rate
                raise ResourceExhausted(
                    f"rate limit of {self.rate:g} requests/s per token exceeded; retry in "
                    f"{wait:.2f}s", retry_after_s=round(wait, 3), field="rate_limit",
                    limit=self.rate)
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

    def authenticate(self, authorization: str | None, *, peer: str = "",
                     cert_user: str | None = None, where: str = "") -> Principal:
        """The caller's principal; every failure is audited (coalesced per peer)."""
        try:
            return self._authenticate(authorization, cert_user)
        except Unauthenticated as e:
            self.record_failure(e.message, peer, where)
            raise

    def _authenticate(self, authorization: str | None, cert_user: str | None) -> Principal:
        if authorization:
            scheme, _, cred = authorization.strip().partition(" ")
            scheme, cred = scheme.lower(), cred.strip()
            if scheme == "bearer" and cred:
                return self._bearer(cred)
            if scheme == "basic" and cred:
                return self._basic(cred)
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

    def _basic(self, cred: str) -> Principal:
        try:
            raw = base64.b64decode(cred, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthenticated("malformed Basic credentials") from None
        user, sep, password = raw.partition(":")
        if not sep:
            raise Unauthenticated("malformed Basic credentials")
        return self.store.verify_password(user, password)

    def forget_token(self, token_id: str) -> None:
        """Drop a revoked token from the cache at once (other processes: after token_cache_s)."""
        with self._lock:
            for k in [k for k, v in self._cache.items() if v[0].token_id == token_id]:
                del self._cache[k]

    def record_failure(self, reason: str, peer: str, where: str) -> None:
        """Audit an authentication failure; repeats from one peer are coalesced per 10 s."""
        host = peer.rsplit(":", 1)[0] if peer else "unknown"
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
        except Exception:  # noqa: BLE001 - auditing must not turn a 401 into a 500
            log.exception("could not audit an authentication failure")
