"""Helpers of the web UI's browser tests (tests/integration/ui): a watched page, servers."""

from __future__ import annotations

import base64
from typing import Any

import httpx


class Watched:
    """A page plus what it must not do."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.console: list[str] = []  # console errors (printed when a test fails)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp || []"))

    def pwned(self) -> list[Any]:
        return list(self.page.evaluate("window.__pwned || []"))

    def assert_clean(self) -> None:
        """No XSS canary fired, no CSP violation, no uncaught script error."""
        assert self.pwned() == [], f"a payload executed: {self.pwned()}"
        assert self.csp_violations() == [], f"CSP violations: {self.csp_violations()}"
        assert self.errors == [], f"uncaught page errors: {self.errors}"



def start_server(data_dir: str, auth: Any = None, **settings: Any) -> Any:
    """An embedded server on `data_dir`, started; `auth`: an AuthConfig to turn auth on."""
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    if auth is not None:
        settings["security"] = SecurityConfig(auth_mode="on", auth=auth)
    return ServerThread(ServerConfig(data_dir=data_dir, grpc_port=0, http_port=0,
                                     **settings)).start()


def base_url(srv: Any) -> str:
    return f"http://127.0.0.1:{srv.server.http_port}"


ROOT_HEADERS = {"authorization": "Basic " + base64.b64encode(b"root:root-pass-1").decode()}
"""The admin `root` of `auth_server` (HTTP basic auth)."""


def auth_server(data_dir: str) -> tuple[Any, str, Any]:
    """An embedded server with auth on and nothing granted by default
    (NO_PERMISSIONS), an admin `root` (password root-pass-1: `ROOT_HEADERS`) and a user
    `bob` (bob-pass-1): (the server, its base URL, its AuthStore). Stop the server."""
    from metricflow.auth._store import AuthStore
    from metricflow.auth._types import AuthConfig

    srv = start_server(data_dir, auth=AuthConfig(default_permission="NO_PERMISSIONS"))
    try:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("root", password="root-pass-1", is_admin=True)
        store.create_user("bob", password="bob-pass-1")
    except BaseException:
        srv.stop()
        raise
    return srv, base_url(srv), store


def create_experiment(base: str, headers: dict[str, str], name: str) -> str:
    r = httpx.post(base + "/api/v1/experiments/create", json={"name": name}, headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["experiment_id"])


def grant(base: str, experiment_id: str, username: str, permission: str) -> None:
    """`root` gives `username` `permission` on the experiment."""
    r = httpx.post(base + "/api/v1/auth/permissions/experiments/set", headers=ROOT_HEADERS,
                   json={"experiment_id": experiment_id, "username": username,
                         "permission": permission})
    assert r.status_code == 200, r.text
