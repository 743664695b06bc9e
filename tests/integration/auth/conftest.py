"""A secured embedded server (auth on, default permission NO_PERMISSIONS) and its users.

No external service is needed: chDB, SQLite and local files run in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig


@dataclass
class Secured:
    srv: Any
    store: AuthStore
    tokens: dict[str, str]

    @property
    def target(self) -> str:
        return self.srv.target

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.srv.server.http_port}"

    def headers(self, user: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[user]}"}

    def md(self, user: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[user]}"),)

    def client(self, user: str) -> Any:
        import metricflow as mf

        return mf.Client(f"grpc://{self.target}", token=self.tokens[user], linger_ms=5)

    def get(self, user: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.http + path, headers=self.headers(user), timeout=30, **kw)

    def post(self, user: str, path: str, body: Any) -> httpx.Response:
        return httpx.post(self.http + path, json=body, headers=self.headers(user), timeout=30)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-sec")), grpc_port=0,
                       http_port=0, security=SecurityConfig(
                           auth_mode="on", auth=AuthConfig(default_permission="NO_PERMISSIONS")))
    with ServerThread(cfg) as srv:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("admin", is_admin=True)
        for u in ("alice", "bob", "carol"):
            store.create_user(u)
        tokens = {u: store.create_token(u)[1] for u in ("admin", "alice", "bob", "carol")}
        yield Secured(srv, store, tokens)


@pytest.fixture(scope="module")
def channel(secured: Secured) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(secured.target)
    yield ch
    ch.close()
