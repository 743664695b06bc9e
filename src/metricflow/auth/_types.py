"""Values of the auth model: permissions, scopes, principals and settings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from metricflow.errors import InvalidArgument


class Permission(enum.IntEnum):
    """MLflow's permission ladder; each level includes the ones below it."""

    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3

    @classmethod
    def parse(cls, text: str) -> Permission:
        """`"read"`/`"READ"` -> Permission.READ; InvalidArgument on anything else."""
        try:
            return cls[text.strip().upper()]
        except (KeyError, AttributeError):
            names = ", ".join(p.name for p in cls)
            raise InvalidArgument(f"permission must be one of {names}, got {text!r}",
                                  field="permission", received=str(text)[:40]) from None


SCOPES = ("read", "edit", "manage", "admin")
"""Token scopes. A scope caps what a token may do, whatever its user may do."""
_SCOPE_LEVEL = {"read": Permission.READ, "edit": Permission.EDIT, "manage": Permission.MANAGE,
                "admin": Permission.MANAGE}


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate and normalise a scope list (sorted, de-duplicated, non-empty)."""
    out = sorted({s.strip().lower() for s in scopes})
    bad = [s for s in out if s not in SCOPES]
    if bad or not out:
        raise InvalidArgument(f"scopes must be a non-empty subset of {', '.join(SCOPES)}, "
                              f"got {list(scopes)!r}", field="scopes")
    return tuple(out)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user: str
    """User name; recorded as the actor in the audit log."""
    is_admin: bool = False
    """Admins pass every permission check (when the token has the admin scope)."""
    scopes: tuple[str, ...] = SCOPES
    """What this credential may do (passwords and client certs carry every scope)."""
    token_id: str = ""
    """Id of the API token used, or "" for passwords, certificates and auth-off mode."""
    parent_token_id: str = ""
    """For a UI session signed in with an API token: that token's id (the session ends
    with it); "" otherwise."""

    @property
    def ceiling(self) -> Permission:
        """The highest permission level this credential may exercise."""
        return max((_SCOPE_LEVEL[s] for s in self.scopes), default=Permission.NO_PERMISSIONS)

    @property
    def admin(self) -> bool:
        """Admin powers need both an admin user and the admin scope."""
        return self.is_admin and "admin" in self.scopes

    @property
    def limiter_key(self) -> str:
        return self.token_id or f"user:{self.user}"


ANONYMOUS_ADMIN = Principal(user="", is_admin=True)
"""The caller when auth is off (loopback-only default): everything is allowed."""


@dataclass(frozen=True)
class AuthConfig:
    """Settings of authentication and authorization on one server."""

    enabled: bool = False
    """Require credentials on every RPC and route (except /health and /ready)."""
    default_permission: str = "READ"
    """Permission of a user on an experiment or model without an explicit grant."""
    rate_limit_per_s: float = 0.0
    """Requests per second per token (burst = 2 s worth); 0 disables the limit."""
    max_token_ttl_days: float = 0.0
    """Upper bound of a new token's lifetime; 0 = tokens may be created without expiry."""
    token_cache_s: float = 2.0
    """How long a verified token is trusted before the store is asked again."""
    stream_recheck_s: float = 5.0
    """How often an open stream checks its credential and permissions again: a live
    tail (gRPC or HTTP) ends, and an ingest Write stream is closed, once its token is
    revoked or expired or its grant removed (within this plus `token_cache_s`)."""
    cert_users: bool = True
    """With mTLS, a client certificate whose CN names a user authenticates as that user
    (scopes read, edit, manage: never admin unless the user is in `cert_admin_users`)."""
    cert_admin_users: frozenset[str] = frozenset()
    """Users whose client certificate also carries the admin scope (explicit mapping)."""
    max_filter_length: int = 10_000
    """Longest filter string accepted by any search."""
    max_filter_depth: int = 32
    """Deepest parenthesis nesting accepted in a filter."""
    max_keys_per_run: int = 10_000
    """Distinct metric keys one run may have (tracked per server process)."""
    password_failures_per_s: float = 0.5
    """Failed password (HTTP Basic) attempts per second per client address, refilled
    continuously; beyond the burst an attempt is answered 429 before argon2 runs."""
    password_failure_burst: float = 10.0
    """Failed password attempts a client address may make back to back."""
    max_password_checks: int = 2
    """argon2id verifications running at once (each ~64 MiB); others wait up to 2 s, then 429."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest HTTP request body a route that parses its body accepts (413 above it);
    raw artifact uploads stream and are not limited by this."""
    public_routes: frozenset[str] = field(
        default_factory=lambda: frozenset({"/health", "/ready"}))
    """HTTP paths served without credentials (load balancer probes)."""

    def __post_init__(self) -> None:
        Permission.parse(self.default_permission)
        if self.rate_limit_per_s < 0:
            raise InvalidArgument("rate_limit_per_s must be >= 0", field="rate_limit_per_s")
        if self.max_password_checks < 1:
            raise InvalidArgument("max_password_checks must be positive",
                                  field="max_password_checks", received=self.max_password_checks)
        if self.max_body_bytes < 1:
            raise InvalidArgument("max_body_bytes must be positive", field="max_body_bytes",
                                  received=self.max_body_bytes)
        if self.max_filter_depth < 1 or self.max_filter_length < 1:
            raise InvalidArgument("filter limits must be positive", field="max_filter_depth")

    @property
    def default(self) -> Permission:
        return Permission.parse(self.default_permission)
