"""/ui-api/v1/session: sign in (token or password) -> session cookie; who am I; sign out.

A session is an API token of its own, minted at sign-in for the signed-in user
with the credential's scopes (a read-only token gives a read-only session),
named `ui-session`, living at most `SESSION_TTL_S` (and never longer than the
token used to sign in, nor than `AuthConfig.max_token_ttl_days`). A session
signed in with an API token records that token (`parent_token_id`) and ends with
it: revoking or the expiry of the token refuses the session's next request. A
new password, or deleting the user, ends the user's sessions. Its plaintext
is only ever in the HttpOnly `mf_session` cookie, so page script cannot read it
and it is never in a URL. Signing out revokes it in the store, so it stops
working on every node (within `token_cache_s` on other processes); an admin
sees and can revoke it among the user's tokens. The cookie then authenticates
exactly as that token would (see auth/_cookie.py for the CSRF check).
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from metricflow.auth import CSRF_COOKIE, SESSION_COOKIE, check_csrf, csrf_of
from metricflow.errors import InvalidArgument, MetricflowError, Unauthenticated
from metricflow.ui._static import SECURITY_HEADERS

SESSION_TTL_S = 12 * 3600
"""Longest life of a UI session (the cookie and its token expire together)."""
SESSION_TOKEN_NAME = "ui-session"
PREFIX = "/ui-api/v1"


class SignIn(BaseModel):
    """Either `token`, or `username` and `password`."""

    model_config = ConfigDict(extra="forbid")
    token: str | None = Field(None, max_length=4096)
    username: str | None = Field(None, max_length=256)
    password: str | None = Field(None, max_length=4096)


def _answer(content: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status,
                        headers={**SECURITY_HEADERS, "cache-control": "no-store"})


def _error(e: MetricflowError) -> JSONResponse:
    headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
    if e.http_status == 401:
        headers["www-authenticate"] = 'Bearer realm="metricflow"'
    return JSONResponse({"error_code": e.code.value, "message": e.message},
                        status_code=e.http_status, headers=headers)


def _set_cookies(resp: JSONResponse, token: str, max_age: int, secure: bool) -> None:
    resp.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                    samesite="strict", secure=secure)
    resp.set_cookie(CSRF_COOKIE, csrf_of(token), max_age=max_age, path="/", httponly=False,
                    samesite="strict", secure=secure)


def _clear_cookies(resp: JSONResponse, secure: bool) -> None:
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        resp.delete_cookie(name, path="/", httponly=http_only, samesite="strict", secure=secure)


def _guard(request: Request) -> Any:
    """The auth layer's guard (set on every request by its dependency), or None."""
    guard = getattr(request.state, "guard", None)
    return guard if guard is not None and guard.enabled else None


def _session_ttl(guard: Any, credential_expires_ms: int | None) -> int:
    ttl = float(SESSION_TTL_S)
    if guard.config.max_token_ttl_days > 0:
        ttl = min(ttl, guard.config.max_token_ttl_days * 86400)
    if credential_expires_ms is not None:
        ttl = min(ttl, credential_expires_ms / 1000 - time.time())
    return int(ttl)


def session_router() -> APIRouter:
    """The sign-in, who-am-I and sign-out routes (public: each authenticates itself)."""
    router = APIRouter(prefix=PREFIX)

    @router.get("/session", include_in_schema=False, response_model=None)
    async def whoami(request: Request) -> JSONResponse:
        guard = _guard(request)
        if guard is None:
            return _answer({"auth_enabled": False, "user": None, "is_admin": False,
                            "expires_at_ms": None})
        token = request.cookies.get(SESSION_COOKIE, "")
        out: dict[str, Any] = {"auth_enabled": True, "user": None, "is_admin": False,
                               "expires_at_ms": None}
        if token:
            try:
                p, expires = await asyncio.to_thread(guard.authn.store.verify_token, token)
            except MetricflowError:
                return _answer(out)  # expired or revoked: signed out
            out.update(user=p.user, is_admin=p.admin, expires_at_ms=expires)
        return _answer(out)

    @router.post("/session", include_in_schema=False, response_model=None)
    async def sign_in(body: SignIn, request: Request) -> JSONResponse:
        guard = _guard(request)
        if guard is None:
            return _answer({"auth_enabled": False, "user": None, "is_admin": False,
                            "expires_at_ms": None})
        try:
            authorization = _authorization(body)
            peer = request.client.host if request.client else ""
            p, expires, parent = await asyncio.to_thread(_verify, guard, authorization, peer)
            ttl = _session_ttl(guard, expires)
            if ttl < 1:
                raise Unauthenticated("API token has expired")
            info, token = await asyncio.to_thread(
                guard.authn.store.create_token, p.user, name=SESSION_TOKEN_NAME,
                scopes=p.scopes if p.token_id else None, ttl_s=ttl, actor=p.user,
                parent_token_id=parent)
        except MetricflowError as e:
            return _error(e)
        resp = _answer({"auth_enabled": True, "user": p.user, "is_admin": p.admin,
                        "expires_at_ms": info.expires_at, "csrf": csrf_of(token)})
        _set_cookies(resp, token, ttl, request.url.scheme == "https")
        return resp

    @router.delete("/session", include_in_schema=False, response_model=None)
    async def sign_out(request: Request) -> JSONResponse:
        guard = _guard(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        if guard is not None and token:
            try:
                check_csrf(request.method, request.headers, request.cookies)
                await asyncio.to_thread(_revoke, guard, token)
            except MetricflowError as e:
                return _error(e)
        resp = _answer({"auth_enabled": guard is not None, "user": None, "is_admin": False,
                        "expires_at_ms": None})
        _clear_cookies(resp, request.url.scheme == "https")
        return resp

    for fn in (whoami, sign_in, sign_out):
        fn.mf_public = True  # type: ignore[attr-defined, union-attr]  # authenticates itself
    return router


def _authorization(body: SignIn) -> str:
    if body.token and (body.username or body.password):
        raise InvalidArgument("send either token, or username and password, not both",
                              field="token")
    if body.token:
        return "Bearer " + body.token.strip()
    if body.username and body.password is not None:
        cred = base64.b64encode(f"{body.username}:{body.password}".encode()).decode()
        return "Basic " + cred
    raise InvalidArgument("sign-in needs a token, or a username and a password",
                          field="token")


def _verify(guard: Any, authorization: str, peer: str) -> tuple[Any, int | None, str | None]:
    """The principal of the credential (password limits and failure audit apply), and for
    tokens the credential's own expiry (ms) and the API token the session will end with
    (a session token used to sign in again passes on its own sign-in token)."""
    p = guard.authn.authenticate(authorization, peer=peer, where=f"POST {PREFIX}/session")
    guard.authn.limiter.take(p.limiter_key)
    if not p.token_id:
        return p, None, None
    info = guard.authn.store.get_token(p.token_id)
    return p, info.expires_at, info.parent_token_id or info.token_id


def _revoke(guard: Any, token: str) -> None:
    """Revoke the session's token (only a `ui-session` token: an API token someone put in
    the cookie by hand is not the UI's to revoke)."""
    try:
        p, _ = guard.authn.store.verify_token(token)
    except MetricflowError:
        return  # already expired or revoked
    if guard.authn.store.get_token(p.token_id).name == SESSION_TOKEN_NAME:
        guard.authn.store.revoke_token(p.token_id, actor=p.user)
        guard.authn.forget_token(p.token_id)
