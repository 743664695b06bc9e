"""A web UI session ends with what it was signed in with: revoking (or the expiry of) the
API token used at sign-in refuses the session cookie's next request with 401, as does a
new password or deleting the user (one server per module: chDB opens one path per
process).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from ui_support import base_url, start_server

from metricflow.auth._cookie import SESSION_TOKEN_NAME
from metricflow.auth._store import AuthStore
from metricflow.auth._tables import tokens
from metricflow.auth._types import AuthConfig
from metricflow.errors import Unauthenticated

pytestmark = pytest.mark.timeout(300)
ADMIN = {"authorization": "Basic " + base64.b64encode(b"root:root-pass-1").decode()}


@dataclass
class Server:
    base: str
    store: AuthStore


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A long token cache: a revocation must not wait for it to lapse.
    srv = start_server(str(tmp_path_factory.mktemp("mf-ui-revoke")),
                       auth=AuthConfig(token_cache_s=300.0))
    try:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("root", password="root-pass-1", is_admin=True)
        yield Server(base_url(srv), store)
    finally:
        srv.stop()


@contextmanager
def _sign_in(base: str, body: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/ui-api/v1/session", json=body)
        assert r.status_code == 200, r.text
        # The session works (and is now in the server's token cache).
        assert c.get("/api/v1/auth/whoami").status_code == 200
        assert c.get("/api/v1/auth/whoami").status_code == 200
        yield c


def _refused(c: httpx.Client, word: str) -> None:
    r = c.get("/api/v1/auth/whoami")
    assert r.status_code == 401, r.text
    assert word in r.json()["message"]
    assert c.get("/ui-api/v1/session").json()["user"] is None  # who-am-I: signed out


def _session_id(store: AuthStore, user: str) -> str:
    live = [t for t in store.list_tokens(user)
            if t.name == SESSION_TOKEN_NAME and t.revoked_at is None]
    assert len(live) == 1, live
    return live[0].token_id


def test_revoking_the_sign_in_token_ends_the_session(server: Server) -> None:
    server.store.create_user("carol")
    info, token = server.store.create_token("carol", name="laptop")
    with _sign_in(server.base, {"token": token}) as ui:
        sid = _session_id(server.store, "carol")
        assert server.store.get_token(sid).parent_token_id == info.token_id
        r = httpx.post(server.base + "/api/v1/auth/tokens/revoke", headers=ADMIN,
                       json={"token_id": info.token_id})
        assert r.status_code == 200, r.text
        _refused(ui, "revoked")
    # The listing says so too.
    assert server.store.get_token(sid).revoked_at is not None


def test_a_session_signed_in_with_a_session_ends_with_the_first_token(server: Server) -> None:
    server.store.create_user("dave")
    info, token = server.store.create_token("dave", name="laptop")
    with _sign_in(server.base, {"token": token}) as first:
        with _sign_in(server.base, {"token": first.cookies["mf_session"]}) as second:
            sids = [t for t in server.store.list_tokens("dave") if t.name == SESSION_TOKEN_NAME]
            assert len(sids) == 2 and {t.parent_token_id for t in sids} == {info.token_id}
            assert httpx.post(server.base + "/api/v1/auth/tokens/revoke", headers=ADMIN,
                              json={"token_id": info.token_id}).status_code == 200
            _refused(first, "revoked")
            _refused(second, "revoked")


def test_the_store_refuses_a_session_whose_token_is_revoked_or_expired(
        server: Server) -> None:
    """Another process (the CLI, a second node) may revoke only the token's row: the
    session's own row is not needed to end it."""
    server.store.create_user("erin")
    info, token = server.store.create_token("erin", name="ci")
    with _sign_in(server.base, {"token": token}) as ui:
        session = ui.cookies["mf_session"]
    sid = _session_id(server.store, "erin")
    assert server.store.verify_token(session)[0].parent_token_id == info.token_id
    T = tokens.c
    with server.store.engine.begin() as conn:
        conn.execute(tokens.update().where(T.token_id == info.token_id)
                     .values(expires_at=1))
    with pytest.raises(Unauthenticated, match="expired"):
        server.store.verify_token(session)
    with server.store.engine.begin() as conn:
        conn.execute(tokens.update().where(T.token_id == info.token_id)
                     .values(expires_at=None, revoked_at=1))
    with pytest.raises(Unauthenticated, match="revoked"):
        server.store.verify_token(session)
    assert server.store.get_token(sid).revoked_at is None  # refused by the join alone
    server.store.verify_token(server.store.create_token("erin")[1])  # others still work


def test_a_new_password_ends_the_users_sessions(server: Server) -> None:
    server.store.create_user("frank", password="frank-pass-1")
    _, token = server.store.create_token("frank", name="laptop")
    with _sign_in(server.base, {"username": "frank", "password": "frank-pass-1"}) as by_pw, \
            _sign_in(server.base, {"token": token}) as by_token:
        r = httpx.post(server.base + "/api/v1/auth/users/update", headers=ADMIN,
                       json={"username": "frank", "password": "frank-pass-2"})
        assert r.status_code == 200, r.text
        _refused(by_pw, "revoked")
        _refused(by_token, "revoked")
    # The token itself (not a UI session) keeps working, and can sign in again.
    bearer = {"authorization": f"Bearer {token}"}
    assert httpx.get(server.base + "/api/v1/auth/whoami", headers=bearer).status_code == 200
    with _sign_in(server.base, {"username": "frank", "password": "frank-pass-2"}):
        pass


def test_deleting_the_user_ends_their_sessions(server: Server) -> None:
    server.store.create_user("gina", password="gina-pass-1")
    with _sign_in(server.base, {"username": "gina", "password": "gina-pass-1"}) as ui:
        r = httpx.post(server.base + "/api/v1/auth/users/delete", headers=ADMIN,
                       json={"username": "gina"})
        assert r.status_code == 200, r.text
        _refused(ui, "invalid")
