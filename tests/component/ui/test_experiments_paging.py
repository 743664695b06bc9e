"""GET /ui-api/v1/experiments over more than 10,000 experiments: the name search and the
caller's readable set run inside the store's search, pages go on with next_page_token,
so an experiment created after the first 10,000 is found, and nothing in the answer says
how many experiments the server holds."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metricflow.auth._context import CURRENT
from metricflow.query import ScopedQueryCore
from metricflow.query._core import QueryCore
from metricflow.store.metadata import open_metadata_store
from metricflow.store.metadata._tables import experiments
from metricflow.ui._api import ui_router

N = 10_050


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory):
    m = open_metadata_store(f"sqlite:///{tmp_path_factory.mktemp('ui-many')}/m.db")
    now = int(time.time() * 1000)
    rows = [{"name": f"exp-{i:05d}", "artifact_location": f"/a/{i}",
             "lifecycle_stage": "active", "creation_time": now, "last_update_time": now}
            for i in range(N)]
    with m.engine.begin() as conn:
        conn.execute(sa.insert(experiments), rows)
    m.create_experiment("late needle 50%_off")  # the last one created
    yield m


def _all(c: TestClient, **params: object) -> list[dict]:
    out: list[dict] = []
    token = ""
    for _ in range(100):
        body = c.get("/ui-api/v1/experiments",
                     params={**params, "max_results": 5000, "page_token": token}).json()
        assert "truncated" not in body
        out.extend(body["experiments"])
        token = body["next_page_token"]
        if not token:
            return out
    raise AssertionError("paging did not end")


def test_every_experiment_is_reachable_and_searchable(store, metadata) -> None:
    app = FastAPI()
    app.include_router(ui_router(QueryCore(store, metadata)))
    c = TestClient(app)
    r = c.get("/ui-api/v1/experiments", params={"q": "needle"}).json()
    assert [e["name"] for e in r["experiments"]] == ["late needle 50%_off"]
    assert r["next_page_token"] is None
    # % and _ in the search are plain characters, not wildcards
    assert [e["name"] for e in c.get("/ui-api/v1/experiments",
                                     params={"q": "50%_O"}).json()["experiments"]] \
        == ["late needle 50%_off"]
    assert c.get("/ui-api/v1/experiments", params={"q": "0%_x"}).json()["experiments"] == []
    ids = [e["experiment_id"] for e in _all(c)]
    assert len(ids) == len(set(ids)) == N + 2  # + the Default experiment
    r = c.get("/ui-api/v1/experiments", params={"max_results": 10**6})
    assert r.status_code == 400 and r.json()["field"] == "max_results"


class _Readable:
    def __init__(self, ids: frozenset[str]) -> None:
        self.ids = ids

    def readable_experiments(self, principal: object) -> frozenset[str]:
        return self.ids


def test_a_reader_pages_through_only_its_experiments(store, metadata) -> None:
    target = metadata.get_experiment_by_name("late needle 50%_off").experiment_id
    mine = frozenset({"3", "10001", target})
    app = FastAPI()
    app.include_router(ui_router(ScopedQueryCore(store, metadata)))

    @app.middleware("http")
    async def as_reader(request, call_next):  # what the auth guard sets for a caller
        tok = CURRENT.set((object(), _Readable(mine)))  # type: ignore[arg-type]
        try:
            return await call_next(request)
        finally:
            CURRENT.reset(tok)

    c = TestClient(app)
    assert {e["experiment_id"] for e in _all(c)} == mine
    assert [e["experiment_id"] for e in _all(c, q="needle")] == [target]
    assert [e["experiment_id"] for e in _all(c, q="10001")] == ["10001"]  # by id
    assert _all(c, q="exp-00005") == []  # exists, not readable
