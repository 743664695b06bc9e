"""AuthStore: users, API tokens and audit writes, on the control-plane database.

Every change is audited in the same transaction as the change itself, in the
registry's append-only `audit_log` table. Secrets never reach the log.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from metricflow.auth import _secrets
from metricflow.auth._cookie import SESSION_TOKEN_NAME
from metricflow.auth._perm_store import PermissionMixin
from metricflow.auth._tables import experiment_permissions, model_permissions, tokens, users
from metricflow.auth._types import Principal, check_scopes
from metricflow.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidState,
    NotFound,
    Unauthenticated,
)
from metricflow.store.metadata import append_audit, approvers

_USER_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,256}$")
_U, _T = users.c, tokens.c


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_username(name: object) -> str:
    """User names: 1-256 of letters, digits and `_ . @ -` (no spaces, no control chars)."""
    if not isinstance(name, str) or not _USER_RE.match(name):
        raise InvalidArgument("username must be 1-256 characters of letters, digits and _.@-",
                              field="username", received=str(name)[:80])
    return name


@dataclass(frozen=True)
class User:
    username: str
    is_admin: bool
    has_password: bool
    created_at: int


@dataclass(frozen=True)
class TokenInfo:
    """A token's public record (never its secret)."""

    token_id: str
    username: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    parent_token_id: str | None = None
    """For a UI session signed in with an API token: that token (the session ends with it)."""


class AuthStore(PermissionMixin):
    """Users and tokens (this class) and permissions (PermissionMixin) on one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ audit
    def audit(self, conn: sa.Connection | None, *, actor: str, action: str, entity_type: str,
              entity_id: str, after: Any = None, before: Any = None, comment: str = "") -> None:
        """Append one audit record (hash-chained), in `conn`'s transaction or a new one."""
        row = dict(actor=actor or "unknown", action=action, entity_type=entity_type,
                   entity_id=entity_id, before=before, after=after, comment=comment,
                   ts=now_ms())
        if conn is not None:
            append_audit(conn, **row)
            return
        with self.engine.begin() as c:
            append_audit(c, **row)

    # ------------------------------------------------------------ users
    def create_user(self, username: str, *, password: str | None = None, is_admin: bool = False,
                    actor: str = "") -> User:
        check_username(username)
        pw = _secrets.hash_password(password) if password is not None else None
        with self.engine.begin() as conn:
            if conn.execute(sa.select(_U.username).where(_U.username == username)).first():
                raise AlreadyExists(f"user {username!r} already exists", field="username")
            conn.execute(users.insert().values(username=username, password_hash=pw,
                                               is_admin=is_admin, created_at=now_ms()))
            self.audit(conn, actor=actor, action="create_user", entity_type="user",
                       entity_id=username, after={"is_admin": is_admin,
                                                  "password": pw is not None})
        return self.get_user(username)

    def get_user(self, username: str) -> User:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(users).where(_U.username == username)).first()
        if r is None:
            raise NotFound(f"user {username!r} does not exist", field="username")
        return User(r.username, bool(r.is_admin), r.password_hash is not None, r.created_at)

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(_U.username)).all()
        return [User(r.username, bool(r.is_admin), r.password_hash is not None, r.created_at)
                for r in rows]

    def update_user(self, username: str, *, password: str | None = None,
                    is_admin: bool | None = None, actor: str = "") -> User:
        values: dict[str, Any] = {}
        if password is not None:
            values["password_hash"] = _secrets.hash_password(password)
        if is_admin is not None:
            values["is_admin"] = is_admin
        with self.engine.begin() as conn:
            if is_admin is False:
                self._keep_an_admin(conn, username, "demote")
            q = users.update().where(_U.username == username).values(**values) if values \
                else sa.select(_U.username).where(_U.username == username)
            n = conn.execute(q)
            if (n.rowcount if values else len(n.all())) == 0:
                raise NotFound(f"user {username!r} does not exist", field="username")
            ended = 0
            if password is not None:
                # A new password signs the user out of the web UI everywhere (a session
                # signed in with a token is signed in again with that token, if still valid).
                ended = conn.execute(
                    tokens.update().where(_T.username == username,
                                          _T.name == SESSION_TOKEN_NAME,
                                          _T.revoked_at.is_(None))
                    .values(revoked_at=now_ms())).rowcount
            self.audit(conn, actor=actor, action="update_user", entity_type="user",
                       entity_id=username, after={"is_admin": is_admin,
                                                  "password_changed": password is not None,
                                                  **({"sessions_ended": ended} if ended else {})})
        return self.get_user(username)

    def delete_user(self, username: str, *, actor: str = "") -> None:
        """Delete a user and, in the same transaction, every grant and token of theirs:
        tokens, experiment and model permissions, and APPROVE grants (the approvers table
        names users without a foreign key, so a new user of the same name would otherwise
        inherit them). The last admin cannot be deleted."""
        with self.engine.begin() as conn:
            self._keep_an_admin(conn, username, "delete")
            removed = {
                "approver_grants": conn.execute(
                    approvers.delete().where(approvers.c.username == username)).rowcount,
                "experiment_permissions": conn.execute(experiment_permissions.delete().where(
                    experiment_permissions.c.username == username)).rowcount,
                "model_permissions": conn.execute(model_permissions.delete().where(
                    model_permissions.c.username == username)).rowcount,
                "tokens": conn.execute(
                    tokens.delete().where(_T.username == username)).rowcount,
            }
            n = conn.execute(users.delete().where(_U.username == username))
            if n.rowcount == 0:
                raise NotFound(f"user {username!r} does not exist", field="username")
            self.audit(conn, actor=actor, action="delete_user", entity_type="user",
                       entity_id=username, before={k: v for k, v in removed.items() if v})

    def _keep_an_admin(self, conn: sa.Connection, username: str, what: str) -> None:
        """Refuse to demote or delete `username` if they are the last admin (nobody could
        manage users, grants or policies afterwards)."""
        # The admin rows are locked (PostgreSQL; SQLite's write transactions are
        # serialized), so two admins demoting each other at once cannot both succeed.
        admins = set(conn.execute(sa.select(_U.username).where(_U.is_admin == sa.true())
                                  .with_for_update()).scalars())
        if username in admins and not admins - {username}:
            raise InvalidState(f"cannot {what} {username!r}: they are the last admin; make "
                               "another user an admin first", field="username",
                               received=username)

    # ------------------------------------------------------------ tokens
    def create_token(self, username: str, *, name: str = "", scopes: tuple[str, ...] | None = None,
                     ttl_s: float | None = None, actor: str = "",
                     parent_token_id: str | None = None) -> tuple[TokenInfo, str]:
        """Create a token; returns its record and the plaintext (shown once, never stored).

        `parent_token_id` (UI sessions): the token stops working when that one is revoked
        or expires.
        """
        user = self.get_user(username)
        if scopes is None:
            scopes = ("read", "edit", "manage") + (("admin",) if user.is_admin else ())
        scopes = check_scopes(scopes)
        if not isinstance(name, str) or len(name) > 256:
            raise InvalidArgument("token name must be at most 256 characters", field="name")
        if ttl_s is not None and not 0 < ttl_s <= 10 * 365 * 86400:
            raise InvalidArgument("ttl_s must be in (0, 10 years]", field="ttl_s",
                                  received=ttl_s)
        token_id, plaintext, digest = _secrets.new_token()
        created = now_ms()
        expires = created + int(ttl_s * 1000) if ttl_s is not None else None
        with self.engine.begin() as conn:
            conn.execute(tokens.insert().values(
                token_id=token_id, username=username, secret_sha256=digest,
                scopes=",".join(scopes), name=name, created_at=created, expires_at=expires,
                parent_token_id=parent_token_id))
            self.audit(conn, actor=actor or username, action="create_token",
                       entity_type="token", entity_id=token_id,
                       after={"username": username, "scopes": list(scopes),
                              "expires_at": expires, "name": name,
                              **({"parent_token_id": parent_token_id}
                                 if parent_token_id else {})})
        return (TokenInfo(token_id, username, name, scopes, created, expires, None,
                          parent_token_id), plaintext)

    def revoke_token(self, token_id: str, *, actor: str = "") -> TokenInfo:
        """Revoke a token and the UI sessions signed in with it (verify_token refuses those
        anyway; marking them revoked keeps the token listing true)."""
        info = self.get_token(token_id)
        with self.engine.begin() as conn:
            now = now_ms()
            conn.execute(tokens.update().where(_T.token_id == token_id, _T.revoked_at.is_(None))
                         .values(revoked_at=now))
            ended = conn.execute(tokens.update().where(_T.parent_token_id == token_id,
                                                       _T.revoked_at.is_(None))
                                 .values(revoked_at=now)).rowcount
            self.audit(conn, actor=actor, action="revoke_token", entity_type="token",
                       entity_id=token_id, after={"username": info.username,
                                                  **({"sessions_ended": ended} if ended
                                                     else {})})
        return self.get_token(token_id)

    def get_token(self, token_id: str) -> TokenInfo:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(tokens).where(_T.token_id == token_id)).first()
        if r is None:
            raise NotFound(f"token {token_id!r} does not exist", field="token_id")
        return _token_info(r)

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        q = sa.select(tokens).order_by(_T.created_at, _T.token_id)
        if username is not None:
            q = q.where(_T.username == username)
        with self.engine.connect() as conn:
            return [_token_info(r) for r in conn.execute(q).all()]

    # ------------------------------------------------------------ credentials
    def verify_token(self, plaintext: str) -> tuple[Principal, int | None]:
        """The principal of a valid token and its expiry (ms); Unauthenticated otherwise.

        Every failure has the same message, so a caller cannot probe which ids exist.
        """
        token_id, secret = _secrets.split_token(plaintext)
        parent = tokens.alias("parent")
        with self.engine.connect() as conn:
            # One query: the token, its user and (UI sessions) the token it was signed in with.
            r = conn.execute(sa.select(tokens, _U.is_admin,
                                       parent.c.token_id.label("parent_id"),
                                       parent.c.revoked_at.label("parent_revoked_at"),
                                       parent.c.expires_at.label("parent_expires_at"))
                             .join(users, _U.username == _T.username)
                             .outerjoin(parent, parent.c.token_id == _T.parent_token_id)
                             .where(_T.token_id == token_id)).first()
        stored = r.secret_sha256 if r is not None else "0" * 64
        ok = _secrets.digest_matches(secret, stored) and r is not None
        if not ok or r is None:
            raise Unauthenticated("invalid API token")
        if r.revoked_at is not None:
            raise Unauthenticated("API token has been revoked")
        now = now_ms()
        if r.expires_at is not None and r.expires_at <= now:
            raise Unauthenticated("API token has expired")
        if r.parent_token_id is not None:  # a UI session ends with its sign-in token
            if r.parent_id is None or r.parent_revoked_at is not None:
                raise Unauthenticated("API token has been revoked (the UI session's "
                                      "sign-in token was revoked)")
            if r.parent_expires_at is not None and r.parent_expires_at <= now:
                raise Unauthenticated("API token has expired (the UI session's "
                                      "sign-in token expired)")
        return (Principal(r.username, bool(r.is_admin), tuple(r.scopes.split(",")), token_id,
                          r.parent_token_id or ""),
                r.expires_at)

    def verify_password(self, username: str, password: str) -> Principal:
        """Check a user's password with argon2id; Unauthenticated on any mismatch."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(users).where(_U.username == username)).first()
        ok = _secrets.verify_password(r.password_hash if r is not None else None, password)
        if not ok or r is None:
            raise Unauthenticated("invalid user name or password")
        return Principal(r.username, bool(r.is_admin))

    def principal_of_user(self, username: str) -> Principal | None:
        """The principal of an existing user (client certificates name users by CN)."""
        try:
            u = self.get_user(username)
        except NotFound:
            return None
        return Principal(u.username, u.is_admin)


def _token_info(r: Any) -> TokenInfo:
    return TokenInfo(r.token_id, r.username, r.name, tuple(r.scopes.split(",")),
                     r.created_at, r.expires_at, r.revoked_at, r.parent_token_id)
