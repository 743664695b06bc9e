"""`/`, `/docs` and `/openapi.json` with auth on: each needs a credential (any read token).

(A separate module from test_http_index.py: chDB opens one data path per process
at a time, and each module has its own server.)
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-index")), grpc_port=0,
                       http_port=0, security=SecurityConfig(
                           auth_mode="on", auth=AuthConfig(default_permission="NO_PERMISSIONS")))
    with ServerThread(cfg) as srv:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("reader")
        token = store.create_token("reader", scopes=("read",))[1]
        yield f"http://127.0.0.1:{srv.server.http_port}", token


def test_docs_and_index_need_a_credential_when_auth_is_on(secured: tuple[str, str]) -> None:
    base, token = secured
    auth = {"authorization": f"Bearer {token}"}
    for path in ("/", "/docs", "/openapi.json"):
        assert httpx.get(base + path).status_code == 401, path
        assert httpx.get(base + path, headers=auth).status_code == 200, path
    assert httpx.get(base + "/", headers=auth).json()["http"]["docs"]["path"] == "/docs"
