"""Early requests (ui/src/boot.ts) with auth on: signed out, the early answers are 401s and
the page signs in as usual; signed in, a cold load uses early answers made with the session
cookie and the CSRF header. (Its own module: one chDB data path per process at a time.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from ui_support import Watched, base_url, start_server

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def auth_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    srv = start_server(str(tmp_path_factory.mktemp("mf-ui-early-auth")),
                       auth=AuthConfig(default_permission="NO_PERMISSIONS"))
    try:
        base = base_url(srv)
        AuthStore(srv.server.metadata.engine).create_user("root", password="root-pass-1",
                                                           is_admin=True)
        admin = {"authorization": "Basic " + base64.b64encode(b"root:root-pass-1").decode()}
        r = httpx.post(base + "/api/v1/experiments/create", json={"name": "early-auth"},
                       headers=admin)
        assert r.status_code == 200, r.text
        exp = r.json()["experiment_id"]
        r = httpx.post(base + "/api/2.0/mlflow/runs/create", headers=admin,
                       json={"experiment_id": exp, "run_name": "early-auth-run"})
        assert r.status_code == 200, r.text
        yield base, exp
    finally:
        srv.stop()


def test_with_auth_the_early_requests_carry_the_session(watched: Watched,
                                                       auth_site: tuple[str, str]) -> None:
    base, exp = auth_site
    page = watched.page
    page.goto(base + f"/#/experiments/{exp}")
    page.get_by_test_id("signin-form").wait_for()
    page.get_by_test_id("signin-mode-password").click()
    page.get_by_test_id("signin-username").fill("root")
    page.get_by_test_id("signin-password").fill("root-pass-1")
    page.get_by_test_id("signin-submit").click()
    page.get_by_test_id("run-row").filter(has_text="early-auth-run").wait_for()
    # a cold load of the same view, signed in (same browser context: the session cookie)
    page.goto(base + "/#/")
    page.get_by_test_id("exp-row").first.wait_for()
    page.goto(base + f"/#/experiments/{exp}")
    page.reload()
    page.get_by_test_id("run-row").filter(has_text="early-auth-run").wait_for()
    taken = list(page.evaluate("window.__mf.earlyTaken || []"))
    early = list(page.evaluate("Object.keys(window.__mfEarly || {})"))
    assert any(k.startswith("POST /ui-api/v1/runs/window ") for k in taken), (taken, early)
    watched.assert_clean()
