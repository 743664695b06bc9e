"""/ui-api/v1 data routes on a real server with auth on: a caller sees exactly the runs, keys
and experiments it may read, like /api/v1/runs/search; no credential is a 401."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from ui_support import ROOT_HEADERS, auth_server, create_experiment, grant

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    bob: dict[str, str]  # headers: bob's read token (READ on `mine` only)
    admin: dict[str, str]
    mine: str
    hidden: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    srv, base, store = auth_server(str(tmp_path_factory.mktemp("mf-ui-api-auth")))
    try:
        admin = ROOT_HEADERS
        ids = [create_experiment(base, admin, name) for name in ("bob-visible", "root-secret")]
        grant(base, ids[0], "bob", "READ")
        for exp, tag in ((ids[0], "open"), (ids[1], "secret")):
            for i in range(3):
                r = httpx.post(base + "/api/2.0/mlflow/runs/create", headers=admin,
                               json={"experiment_id": exp, "run_name": f"{tag}-{i}"})
                assert r.status_code == 200, r.text
                rid = r.json()["run"]["info"]["run_id"]
                r = httpx.post(base + "/api/2.0/mlflow/runs/log-batch", headers=admin, json={
                    "run_id": rid, "params": [{"key": f"{tag}_param", "value": str(i)}],
                    "metrics": [{"key": f"{tag}_metric", "value": i, "timestamp": 1,
                                 "step": 0}]})
                assert r.status_code == 200, r.text
        token = store.create_token("bob", scopes=("read",))[1]
        yield Site(base, {"authorization": f"Bearer {token}"}, admin, ids[0], ids[1])
    finally:
        srv.stop()


def _window(site: Site, headers: dict[str, str], **body: object) -> httpx.Response:
    return httpx.post(site.base + "/ui-api/v1/runs/window", headers=headers,
                      json={"columns": ["metrics.open_metric", "metrics.secret_metric"], **body})


def _eventually(fn, want):  # the write path applies runs and points asynchronously
    import time

    deadline = time.monotonic() + 30
    while True:
        got = fn()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_admin_sees_both_experiments(site: Site) -> None:
    names = _eventually(lambda: sorted(r["run_name"] for r in _window(
        site, site.admin, limit=100).json()["rows"]),
        ["open-0", "open-1", "open-2", "secret-0", "secret-1", "secret-2"])
    assert names == ["open-0", "open-1", "open-2", "secret-0", "secret-1", "secret-2"]


def test_reader_sees_only_readable_runs_keys_and_experiments(site: Site) -> None:
    test_admin_sees_both_experiments(site)  # the data is in
    body = _window(site, site.bob, limit=100).json()
    assert body["total"] == 3
    assert sorted(r["run_name"] for r in body["rows"]) == ["open-0", "open-1", "open-2"]
    assert {r["experiment_id"] for r in body["rows"]} == {site.mine}
    # naming the hidden experiment, filtering or sorting on its keys shows nothing of it
    assert _window(site, site.bob, experiment_ids=[site.hidden]).json()["total"] == 0
    assert _window(site, site.bob, filter="metrics.secret_metric >= 0").json()["total"] == 0
    r = _window(site, site.bob, order_by="metrics.secret_metric DESC", limit=100)
    assert {x["experiment_id"] for x in r.json()["rows"]} == {site.mine}
    keys = httpx.get(site.base + "/ui-api/v1/keys", headers=site.bob).json()
    assert keys["metrics"] == ["open_metric"] and keys["params"] == ["open_param"]
    keys = httpx.get(site.base + "/ui-api/v1/keys", headers=site.bob,
                     params={"experiment_ids": site.hidden}).json()
    assert keys == {"metrics": [], "params": [], "tags": []}
    exps = httpx.get(site.base + "/ui-api/v1/experiments", headers=site.bob).json()
    assert [(e["name"], e["run_count"]) for e in exps["experiments"]] == [("bob-visible", 3)]
    # the same answer as the search API
    s = httpx.post(site.base + "/api/v1/runs/search", headers=site.bob, json={}).json()
    assert sorted(x["info"]["run_name"] for x in s["runs"]) == ["open-0", "open-1", "open-2"]


def test_no_credential_is_401(site: Site) -> None:
    assert _window(site, {}).status_code == 401
    assert httpx.get(site.base + "/ui-api/v1/keys").status_code == 401
    assert httpx.get(site.base + "/ui-api/v1/experiments").status_code == 401
