"""The web UI's session with auth on: sign-in with a token or a password, the cookie's
attributes, CSRF on state-changing cookie requests, scopes and grants carried over,
sign-out revoking the session (one server per module: chDB opens one path per process).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(300)
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@dataclass
class Secured:
    base: str
    store: AuthStore
    alice_token: str  # read-only token of a user who may read experiment `mine` only
    mine: str
    other: str


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-ui-auth")), grpc_port=0,
                       http_port=0, security=SecurityConfig(
                           auth_mode="on", auth=AuthConfig(default_permission="NO_PERMISSIONS")))
    with ServerThread(cfg) as srv:
        base = f"http://127.0.0.1:{srv.server.http_port}"
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("root", password="root-pass-1", is_admin=True)
        store.create_user("alice", password="alice-pass-1")
        admin = {"authorization": "Basic " + __import__("base64").b64encode(
            b"root:root-pass-1").decode()}
        ids = []
        for name in ("alice-exp", "hidden-exp"):
            r = httpx.post(base + "/api/v1/experiments/create", json={"name": name},
                           headers=admin)
            assert r.status_code == 200, r.text
            ids.append(r.json()["experiment_id"])
        r = httpx.post(base + "/api/v1/auth/permissions/experiments/set", headers=admin,
                       json={"experiment_id": ids[0], "username": "alice",
                             "permission": "EDIT"})
        assert r.status_code == 200, r.text
        token = store.create_token("alice", scopes=("read",))[1]
        yield Secured(base, store, token, ids[0], ids[1])


def _cookie_header(resp: httpx.Response, name: str) -> str:
    for h in resp.headers.get_list("set-cookie"):
        if h.startswith(name + "="):
            return h
    raise AssertionError(f"no {name} cookie in {resp.headers.get_list('set-cookie')}")


def test_auth_on_page_is_public_data_is_not(secured: Secured) -> None:
    assert httpx.get(secured.base + "/", headers=BROWSER).status_code == 200
    assert httpx.get(secured.base + "/").status_code == 401  # the JSON listing
    s = httpx.get(secured.base + "/ui-api/v1/session").json()
    assert s == {"auth_enabled": True, "user": None, "is_admin": False, "expires_at_ms": None}
    assert httpx.post(secured.base + "/api/v1/experiments/search", json={}).status_code == 401


def test_token_sign_in_sets_http_only_strict_cookies(secured: Secured) -> None:
    with httpx.Client(base_url=secured.base) as c:
        r = c.post("/ui-api/v1/session", json={"token": secured.alice_token})
        assert r.status_code == 200, r.text
        assert r.json()["user"] == "alice"
        assert secured.alice_token not in r.text  # the answer does not echo a credential
        sess = _cookie_header(r, "mf_session").lower()
        assert "httponly" in sess and "samesite=strict" in sess and "path=/" in sess
        assert "secure" not in sess  # plain HTTP here; TLS adds Secure
        csrf = _cookie_header(r, "mf_csrf").lower()
        assert "httponly" not in csrf and "samesite=strict" in csrf
        assert c.cookies["mf_session"] != secured.alice_token  # a session token of its own
        assert c.get("/ui-api/v1/session").json()["user"] == "alice"

        # Reads with the cookie: GET needs no CSRF header; only readable experiments.
        assert c.get("/api/v1/experiments/get",
                     params={"experiment_id": secured.mine}).status_code == 200
        hidden = c.get("/api/v1/experiments/get", params={"experiment_id": secured.other})
        bearer = httpx.get(secured.base + "/api/v1/experiments/get",
                           params={"experiment_id": secured.other},
                           headers={"authorization": f"Bearer {secured.alice_token}"})
        assert hidden.status_code in (403, 404)  # the same answer as the token's own
        assert (hidden.status_code, hidden.json()) == (bearer.status_code, bearer.json())
        # A POST with the cookie and no CSRF header is refused, whatever it does.
        r = c.post("/api/v1/experiments/search", json={})
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["message"]
        r = c.post("/api/v1/experiments/search", json={},
                   headers={"x-csrf-token": "0" * 64})
        assert r.status_code == 403 and "mismatch" in r.json()["message"]
        r = c.post("/api/v1/experiments/search", json={},
                   headers={"x-csrf-token": c.cookies["mf_csrf"]})
        assert r.status_code == 200, r.text
        names = {e["name"] for e in r.json()["experiments"]}
        assert "alice-exp" in names and "hidden-exp" not in names
        # The session carries the token's scopes: a read-only token signs in read-only.
        r = c.post("/api/v1/experiments/create", json={"name": "nope"},
                   headers={"x-csrf-token": c.cookies["mf_csrf"]})
        assert r.status_code == 403, r.text


def test_bearer_clients_need_no_csrf_header(secured: Secured) -> None:
    r = httpx.post(secured.base + "/api/v1/experiments/search", json={},
                   headers={"authorization": f"Bearer {secured.alice_token}"},
                   cookies={"mf_session": "mft_bogus_cookie"})
    assert r.status_code == 200, r.text


def test_password_sign_in_and_sign_out_revokes(secured: Secured) -> None:
    with httpx.Client(base_url=secured.base) as c:
        bad = c.post("/ui-api/v1/session", json={"username": "alice", "password": "wrong"})
        assert bad.status_code == 401 and "mf_session" not in c.cookies
        r = c.post("/ui-api/v1/session", json={"username": "alice", "password": "alice-pass-1"})
        assert r.status_code == 200, r.text
        session = c.cookies["mf_session"]
        tokens = [t for t in secured.store.list_tokens("alice") if t.name == "ui-session"]
        assert tokens and all(t.expires_at is not None for t in tokens)
        csrf = {"x-csrf-token": c.cookies["mf_csrf"]}
        # A password session may edit what alice may edit (EDIT grant on her experiment).
        r = c.post("/api/v1/experiments/set-experiment-tag", headers=csrf,
                   json={"experiment_id": secured.mine, "key": "k", "value": "v"})
        assert r.status_code == 200, r.text
        # Sign-out needs the CSRF header too, then the session token is revoked.
        assert c.delete("/ui-api/v1/session").status_code == 403
        r = c.delete("/ui-api/v1/session", headers=csrf)
        assert r.status_code == 200 and r.json()["user"] is None
        assert "mf_session" not in c.cookies
    r = httpx.get(secured.base + "/api/v1/experiments/get",
                  params={"experiment_id": secured.mine}, cookies={"mf_session": session})
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_sign_in_refuses_bad_bodies(secured: Secured) -> None:
    url = secured.base + "/ui-api/v1/session"
    for body in ({}, {"username": "alice"}, {"token": "x", "username": "a", "password": "b"}):
        r = httpx.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
    # A cross-site HTML form cannot send JSON: a form-encoded or text body is refused.
    r = httpx.post(url, content=f'{{"token": "{secured.alice_token}"}}',
                   headers={"content-type": "text/plain"})
    assert r.status_code in (400, 422) and "mf_session" not in r.headers.get("set-cookie", "")
    r = httpx.post(url, data={"token": secured.alice_token})
    assert r.status_code in (400, 422) and "set-cookie" not in r.headers
    assert httpx.post(url, json={"token": "mft_nope_nope"}).status_code == 401
