"""HTTP admin API: tokens, users and permissions (under `/api/v1/auth/`).

Who may call what is decided by the guard from the permission table in
`policy/`; these handlers only do the work and record the actor.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from metricflow.auth._authn import Authenticator
from metricflow.auth._cookie import SESSION_TOKEN_NAME
from metricflow.auth._store import AuthStore
from metricflow.auth._types import Principal, check_scopes
from metricflow.errors import MetricflowError, PermissionDenied


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateToken(_Body):
    username: str | None = Field(None, description="default: the caller (others: admins only)")
    name: str = Field("", max_length=256)
    scopes: list[str] | None = Field(None, description="subset of read, edit, manage, admin")
    ttl_s: float | None = Field(None, gt=0, description="lifetime in seconds; none = no expiry")


class TokenRef(_Body):
    token_id: str = Field(max_length=64)


class CreateUser(_Body):
    username: str = Field(max_length=256)
    password: str | None = Field(None, max_length=1024)
    is_admin: bool = False


class UpdateUser(_Body):
    username: str = Field(max_length=256)
    password: str | None = Field(None, max_length=1024)
    is_admin: bool | None = None


class UserRef(_Body):
    username: str = Field(max_length=256)


class ExperimentGrant(_Body):
    experiment_id: str = Field(max_length=32)
    username: str = Field(max_length=256)
    permission: str = Field("READ", max_length=32)


class ModelGrant(_Body):
    name: str = Field(max_length=256)
    username: str = Field(max_length=256)
    permission: str = Field("READ", max_length=32)


def _json(v: Any) -> Any:
    return dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) \
        else v


async def _run(fn: Any) -> JSONResponse:
    try:
        result = await asyncio.to_thread(fn)
    except MetricflowError as e:
        return JSONResponse({"error_code": e.code.value, "message": e.message},
                            status_code=e.http_status)
    return JSONResponse({} if result is None else result)


def _me(request: Request) -> Principal:
    return getattr(request.state, "principal", Principal(user=""))


def admin_router(store: AuthStore, authn: Authenticator | None,
                 max_token_ttl_s: float = 0.0) -> APIRouter:
    """Routes to manage tokens, users and grants; mount behind the auth dependency."""
    r = APIRouter(prefix="/api/v1/auth", tags=["auth"])

    @r.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        p = _me(request)
        return {"username": p.user, "is_admin": p.is_admin, "scopes": list(p.scopes),
                "token_id": p.token_id}

    @r.post("/tokens/create")
    async def create_token(body: CreateToken, request: Request) -> JSONResponse:
        p = _me(request)
        ttl = body.ttl_s
        if max_token_ttl_s > 0:
            ttl = min(ttl or max_token_ttl_s, max_token_ttl_s)

        def go() -> dict[str, Any]:
            if p.token_id and store.get_token(p.token_id).name == SESSION_TOKEN_NAME:
                # A web UI session (cookie) lives <= 12 h and ends at sign-out; a token it
                # minted would outlive both (and an XSS could persist through it).
                raise PermissionDenied(
                    "a web UI session cannot create API tokens: authenticate this request "
                    "with a password (HTTP Basic) or an API token in the Authorization "
                    "header, or use `metricflow admin token create`", field="credential",
                    received=SESSION_TOKEN_NAME)
            target = store.get_user(body.username or p.user)
            allowed = set(p.scopes) if target.is_admin else set(p.scopes) - {"admin"}
            # an unknown scope is a 400 naming the valid ones (not "exceeds yours")
            scopes = tuple(sorted(allowed)) if body.scopes is None \
                else check_scopes(tuple(body.scopes))
            if not set(scopes) <= allowed:
                # A token can only mint tokens weaker than or equal to itself.
                raise PermissionDenied(f"scopes {sorted(set(scopes) - allowed)} exceed the "
                                       "calling credential's scopes", field="scopes")
            info, plaintext = store.create_token(target.username, name=body.name,
                                                 scopes=scopes, ttl_s=ttl, actor=p.user)
            return {"token": plaintext, "info": _json(info)}
        return await _run(go)

    @r.post("/tokens/revoke")
    async def revoke_token(body: TokenRef, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            info = store.revoke_token(body.token_id, actor=_me(request).user)
            if authn is not None:
                authn.forget_token(body.token_id)
            return {"info": _json(info)}
        return await _run(go)

    @r.get("/tokens/list")
    async def list_tokens(username: str, request: Request) -> JSONResponse:
        return await _run(lambda: {"tokens": [_json(t) for t in store.list_tokens(username)]})

    @r.get("/users/list")
    async def list_users() -> JSONResponse:
        return await _run(lambda: {"users": [_json(u) for u in store.list_users()]})

    @r.post("/users/create")
    async def create_user(body: CreateUser, request: Request) -> JSONResponse:
        return await _run(lambda: {"user": _json(store.create_user(
            body.username, password=body.password, is_admin=body.is_admin,
            actor=_me(request).user))})

    @r.post("/users/update")
    async def update_user(body: UpdateUser, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            user = store.update_user(body.username, password=body.password,
                                     is_admin=body.is_admin, actor=_me(request).user)
            if authn is not None and body.password is not None:
                authn.forget_user(body.username)  # its UI sessions were just ended
            return {"user": _json(user)}
        return await _run(go)

    @r.post("/users/delete")
    async def delete_user(body: UserRef, request: Request) -> JSONResponse:
        def go() -> None:
            store.delete_user(body.username, actor=_me(request).user)
            if authn is not None:
                authn.forget_user(body.username)  # its tokens and sessions are gone
        return await _run(go)

    @r.get("/permissions/user")
    async def user_permissions(username: str) -> JSONResponse:
        return await _run(lambda: store.list_permissions(username))

    @r.post("/permissions/experiments/set")
    async def set_exp(body: ExperimentGrant, request: Request) -> JSONResponse:
        return await _run(lambda: store.set_experiment_permission(
            body.experiment_id, body.username, body.permission, actor=_me(request).user))

    @r.post("/permissions/experiments/delete")
    async def delete_exp(body: ExperimentGrant, request: Request) -> JSONResponse:
        return await _run(lambda: store.delete_experiment_permission(
            body.experiment_id, body.username, actor=_me(request).user))

    @r.post("/permissions/registered-models/set")
    async def set_model(body: ModelGrant, request: Request) -> JSONResponse:
        return await _run(lambda: store.set_model_permission(
            body.name, body.username, body.permission, actor=_me(request).user))

    @r.post("/permissions/registered-models/delete")
    async def delete_model(body: ModelGrant, request: Request) -> JSONResponse:
        return await _run(lambda: store.delete_model_permission(
            body.name, body.username, actor=_me(request).user))

    return r
