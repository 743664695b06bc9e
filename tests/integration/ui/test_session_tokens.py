"""A web UI session (the `mf_session` cookie) cannot mint API tokens: a token it made
would outlive the session (12 h at most, ended by sign-out), so a stolen or scripted
session could turn itself into a lasting credential. The same user with a password or
an API token in the Authorization header still can.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from metricflow.auth._cookie import SESSION_TOKEN_NAME
from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, AuthStore]]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-ui-tokens")), grpc_port=0,
                       http_port=0, security=SecurityConfig(auth_mode="on", auth=AuthConfig()))
    with ServerThread(cfg) as srv:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("bob", password="bob-pass-123")
        yield f"http://127.0.0.1:{srv.server.http_port}", store


def test_the_ui_names_its_session_tokens_like_auth_does() -> None:
    from metricflow.ui._session import SESSION_TOKEN_NAME as UI_NAME

    assert UI_NAME == SESSION_TOKEN_NAME


def test_a_ui_session_cannot_create_tokens(server: tuple[str, AuthStore]) -> None:
    base, store = server
    with httpx.Client(base_url=base, timeout=60) as ui:
        r = ui.post("/ui-api/v1/session", json={"username": "bob", "password": "bob-pass-123"})
        assert r.status_code == 200, r.text
        csrf = r.json()["csrf"]
        before = {t.token_id for t in store.list_tokens("bob")}
        r = ui.post("/api/v1/auth/tokens/create", headers={"x-csrf-token": csrf},
                    json={"name": "forever", "ttl_s": 10 * 365 * 86400})
        assert r.status_code == 403, r.text
        assert "web UI session cannot create API tokens" in r.text
        assert {t.token_id for t in store.list_tokens("bob")} == before
        # the session itself still works for reads
        assert ui.get("/api/v1/auth/whoami").json()["username"] == "bob"
    # a password (or an API token) in the Authorization header still mints one
    basic = "Basic " + base64.b64encode(b"bob:bob-pass-123").decode()
    r = httpx.post(base + "/api/v1/auth/tokens/create", headers={"authorization": basic},
                   json={"name": "ci", "ttl_s": 3600}, timeout=60)
    assert r.status_code == 200, r.text
    tok = r.json()["token"]
    r = httpx.post(base + "/api/v1/auth/tokens/create", json={"name": "ci2", "ttl_s": 60},
                   headers={"authorization": "Bearer " + tok}, timeout=60)
    assert r.status_code == 200, r.text
