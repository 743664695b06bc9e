"""The /ui-api/v1 routes over HTTP (FastAPI TestClient, chDB + SQLite), auth scoping included."""

from __future__ import annotations

import pytest
from conftest import Ref
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metricflow.auth._context import CURRENT
from metricflow.query import ScopedQueryCore
from metricflow.query._core import QueryCore
from metricflow.store.metadata import open_metadata_store
from metricflow.ui._api import ui_router


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory):
    m = open_metadata_store(f"sqlite:///{tmp_path_factory.mktemp('ui-meta')}/m.db")
    for name in ("alpha", "beta <img src=x onerror=alert(1)>"):
        m.create_experiment(name)
    yield m


def client(core: QueryCore) -> TestClient:
    app = FastAPI()
    app.include_router(ui_router(core))
    return TestClient(app)


def test_window_route(store, dataset: dict[str, Ref], metadata) -> None:
    c = client(QueryCore(store, metadata))
    r = c.post("/ui-api/v1/runs/window", json={
        "experiment_ids": ["1"], "filter": "params.opt = 'sgd'", "order_by": "metrics.loss ASC",
        "offset": 2, "limit": 5, "columns": ["metrics.loss", "params.opt"]})
    assert r.status_code == 200, r.text
    body = r.json()
    n = sum(1 for x in dataset.values() if x.attrs["experiment_id"] == "1"
            and x.attrs["lifecycle_stage"] == "active" and x.params["opt"] == "sgd")
    assert body["total"] == n and body["offset"] == 2 and len(body["rows"]) == 5
    for row in body["rows"]:
        assert row["params"] == {"opt": "sgd"} and row["experiment_id"] == "1"
        loss = row["metrics"].get("loss")
        assert loss is None or isinstance(loss, float) or loss == "nan"


def test_parse_error_reports_position(store, dataset, metadata) -> None:
    c = client(QueryCore(store, metadata))
    r = c.post("/ui-api/v1/runs/window", json={"filter": "params.opt = 'sgd' AND metrics.x >"})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["field"] == "filter" and body["position"] == 34  # end of input
    r = c.post("/ui-api/v1/runs/window", json={"limit": 5000})
    assert r.status_code == 400 and r.json()["field"] == "limit"
    r = c.get("/ui-api/v1/keys", params={"kinds": "metrics,bogus"})
    assert r.status_code == 400 and r.json()["field"] == "kinds"


def test_keys_and_experiments(store, dataset, metadata) -> None:
    c = client(QueryCore(store, metadata))
    r = c.get("/ui-api/v1/keys", params={"experiment_ids": "0,1", "q": "s"})
    assert r.json() == {"metrics": ["loss"], "params": [], "tags": []}
    r = c.get("/ui-api/v1/experiments")
    exps = {e["experiment_id"]: e for e in r.json()["experiments"]}
    assert exps["1"]["name"] == "alpha"
    assert exps["2"]["name"] == "beta <img src=x onerror=alert(1)>"
    for e in ("0", "1", "2"):
        assert exps[e]["run_count"] == sum(
            1 for x in dataset.values()
            if x.attrs["experiment_id"] == e and x.attrs["lifecycle_stage"] == "active")
        assert exps[e]["last_activity"] > 0
    r = c.get("/ui-api/v1/experiments", params={"q": "ALP"})
    assert [e["name"] for e in r.json()["experiments"]] == ["alpha"]


class _OnlyExperiment1:
    """An authorizer stand-in: the caller may read experiment 1 only."""

    def readable_experiments(self, principal: object) -> frozenset[str]:
        return frozenset({"1"})


def test_routes_only_show_readable_experiments(store, dataset, metadata) -> None:
    app = FastAPI()
    app.include_router(ui_router(ScopedQueryCore(store, metadata)))

    @app.middleware("http")
    async def as_reader(request, call_next):  # what the auth guard sets for a caller
        tok = CURRENT.set((object(), _OnlyExperiment1()))  # type: ignore[arg-type]
        try:
            return await call_next(request)
        finally:
            CURRENT.reset(tok)

    c = TestClient(app)
    rows = c.post("/ui-api/v1/runs/window", json={"limit": 1000}).json()
    assert rows["total"] == len(rows["rows"]) > 0
    assert {r["experiment_id"] for r in rows["rows"]} == {"1"}
    # asking for a hidden experiment by id shows nothing, not its runs
    assert c.post("/ui-api/v1/runs/window", json={"experiment_ids": ["2"]}).json()["total"] == 0
    assert [e["experiment_id"] for e in c.get("/ui-api/v1/experiments").json()["experiments"]] \
        == ["1"]
    # every route carries the search API's rule
    from metricflow.auth.policy import search
    for route in app.routes:
        if getattr(route, "path", "").startswith("/ui-api/"):
            assert route.endpoint.mf_rule.search == search().search is True
