"""The UI with auth on, in a real browser: the sign-in page, sessions that see exactly
what the user may read, a clear message on denied access, sign-out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ui_support import ROOT_HEADERS, Watched, auth_server, create_experiment, grant

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    token: str  # bob's read-only API token
    mine: str  # experiment bob may read
    hidden: str  # experiment bob may not read
    hidden_run: str  # a run in it


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    srv, base, store = auth_server(str(tmp_path_factory.mktemp("mf-ui-auth")))
    try:
        admin = ROOT_HEADERS
        ids = [create_experiment(base, admin, name) for name in ("bob-visible", "root-secret")]
        grant(base, ids[0], "bob", "READ")
        token = store.create_token("bob", scopes=("read",))[1]
        r = httpx.post(base + "/api/2.0/mlflow/runs/create", headers=admin,
                       json={"experiment_id": ids[1], "run_name": "secret-run"})
        assert r.status_code == 200, r.text
        # A model bob may read, whose audit trail needs MANAGE: a 403 on its page.
        m = httpx.post(base + "/api/v1/registered-models/create", headers=admin,
                       json={"name": "bob-model"})
        assert m.status_code == 200, m.text
        g = httpx.post(base + "/api/v1/auth/permissions/registered-models/set", headers=admin,
                       json={"name": "bob-model", "username": "bob", "permission": "READ"})
        assert g.status_code == 200, g.text
        yield Site(base, token, ids[0], ids[1], r.json()["run"]["info"]["run_id"])
    finally:
        srv.stop()


def _sign_in_with_password(page: Any, site: Site, user: str, password: str) -> None:
    page.get_by_test_id("signin-mode-password").click()
    page.get_by_test_id("signin-username").fill(user)
    page.get_by_test_id("signin-password").fill(password)
    page.get_by_test_id("signin-submit").click()


def test_sign_in_with_password_then_see_only_readable(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + "/#/experiments")
    # Not signed in: any data call answers 401 and the app shows the sign-in page,
    # remembering where the user was going (in the hash; no credential in any URL).
    page.get_by_test_id("signin-form").wait_for()
    assert "#/signin" in page.url
    _sign_in_with_password(page, site, "bob", "wrong-password")
    err = page.get_by_test_id("signin-error")
    err.wait_for()
    assert "invalid user name or password" in err.inner_text()
    _sign_in_with_password(page, site, "bob", "bob-pass-1")
    page.get_by_test_id("exp-row").first.wait_for()
    names = page.get_by_test_id("exp-row").all_inner_texts()
    assert any("bob-visible" in n for n in names)
    assert not any("root-secret" in n for n in names)
    assert "bob-pass-1" not in page.url and "password" not in page.url
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["mf_session"]["httpOnly"] and cookies["mf_session"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("mf_session") < 0  # script cannot read it
    watched.assert_clean()


def test_token_sign_in_denied_page_and_sign_out(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + "/#/signin")
    page.get_by_test_id("signin-mode-token").click()
    page.get_by_test_id("signin-token").fill(site.token)
    page.get_by_test_id("signin-submit").click()
    page.get_by_test_id("exp-row").first.wait_for()
    assert site.token not in page.url
    # A run bob may not read: the API answers as if it did not exist (no existence leak);
    # the page says so in words, not with a blank page, and shows nothing of the run.
    r = httpx.get(f"{site.base}/api/v1/runs/{site.hidden_run}",
                  headers={"authorization": f"Bearer {site.token}"})
    assert r.status_code == 404, r.text
    page.goto(site.base + f"/#/experiments/{site.hidden}/runs/{site.hidden_run}")
    alert = page.locator("[role=alert]").first
    alert.wait_for()
    assert r.json()["message"] in alert.inner_text()
    assert "secret-run" not in page.content()
    # An experiment bob may not read: a message in words, no rows.
    page.goto(site.base + f"/#/experiments/{site.hidden}")
    page.locator("[role=alert]").first.wait_for()
    assert page.get_by_test_id("run-row").count() == 0
    # A 403 (the model's audit trail needs MANAGE): the permission-denied message.
    page.goto(site.base + "/#/models/bob-model")
    denied = page.get_by_test_id("permission-denied")
    denied.wait_for()
    assert "Permission denied" in denied.inner_text()
    # Sign out: the session is revoked, the next data call sends the user to sign in.
    page.goto(site.base + "/#/signin")
    page.get_by_test_id("signout").click()
    page.get_by_test_id("signin-form").wait_for()
    page.goto(site.base + "/#/experiments")
    page.get_by_test_id("signin-form").wait_for()
    watched.assert_clean()
