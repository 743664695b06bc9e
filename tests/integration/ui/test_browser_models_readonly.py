"""The models page for users who may not change a model: a read-only credential sees
the alias and stage controls disabled; a refused change (403) says the account may not
make this change (not "may not read this") and disables them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from ui_support import Watched, base_url, start_server

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    read_token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    srv = start_server(str(tmp_path_factory.mktemp("mf-ui-models-ro")),
                       auth=AuthConfig(default_permission="READ"))
    try:
        base = base_url(srv)
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("root", password="root-pass-1", is_admin=True)
        store.create_user("rita", password="rita-pass-1")
        admin = {"authorization": "Basic " + base64.b64encode(b"root:root-pass-1").decode()}
        with httpx.Client(base_url=base, headers=admin, timeout=60) as h:
            exp = h.post("/api/2.0/mlflow/experiments/create", json={"name": "m"}).json()
            rid = h.post("/api/2.0/mlflow/runs/create", json={
                "experiment_id": exp["experiment_id"]}).json()["run"]["info"]["run_id"]
            r = h.post("/api/2.0/mlflow/registered-models/create", json={"name": "ro-model"})
            assert r.status_code == 200, r.text
            r = h.post("/api/2.0/mlflow/model-versions/create", json={
                "name": "ro-model", "source": f"runs:/{rid}/model", "run_id": rid})
            assert r.status_code == 200, r.text
        yield Site(base, store.create_token("rita", scopes=("read",))[1])
    finally:
        srv.stop()


def _sign_in(page, site: Site, **cred: str) -> None:
    page.goto(site.base + "/#/signin")
    if "token" in cred:
        page.get_by_test_id("signin-mode-token").click()
        page.get_by_test_id("signin-token").fill(cred["token"])
    else:
        page.get_by_test_id("signin-mode-password").click()
        page.get_by_test_id("signin-username").fill(cred["user"])
        page.get_by_test_id("signin-password").fill(cred["password"])
    page.get_by_test_id("signin-submit").click()
    page.wait_for_function("() => !location.hash.startsWith('#/signin')")


def test_read_only_token_sees_disabled_controls(watched: Watched, site: Site) -> None:
    page = watched.page
    _sign_in(page, site, token=site.read_token)
    page.goto(site.base + "/#/models/ro-model")
    page.get_by_test_id("read-only").wait_for()
    assert page.get_by_test_id("stage-select").first.is_disabled()
    assert page.get_by_test_id("alias-set").is_disabled()
    assert page.get_by_test_id("alias-input").is_disabled()


def test_refused_change_says_change_not_read(watched: Watched, site: Site) -> None:
    page = watched.page
    _sign_in(page, site, user="rita", password="rita-pass-1")  # READ on the model only
    page.goto(site.base + "/#/models/ro-model")
    page.get_by_test_id("alias-input").fill("champion")
    assert not page.get_by_test_id("alias-set").is_disabled()
    page.get_by_test_id("alias-set").click()
    # (the audit trail, which needs MANAGE, shows its own "may not read" message)
    denied = page.get_by_test_id("permission-denied").filter(has_text="needs EDIT")
    denied.wait_for()
    assert "may not make this change" in denied.inner_text()
    assert "may not read" not in denied.inner_text()
    assert page.get_by_test_id("alias-set").is_disabled()
