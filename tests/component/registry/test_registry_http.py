"""HTTP/JSON routes under /api/v1/ (FastAPI TestClient, SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metricflow.registry import registry_router
from metricflow.store.metadata import MetadataStore

H = {"X-Metricflow-Actor": "bob"}


@pytest.fixture
def http(store: MetadataStore) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(registry_router(store))
    with TestClient(app) as c:
        yield c


def test_experiment_routes(http: TestClient) -> None:
    r = http.post("/api/v1/experiments/create", json={"name": "e", "tags": {"a": "b"}},
                  headers=H)
    assert r.status_code == 200
    eid = r.json()["experiment_id"]
    assert http.get("/api/v1/experiments/get", params={"experiment_id": eid}).json()[
        "experiment"]["tags"] == {"a": "b"}
    assert http.get("/api/v1/experiments/get-by-name",
                    params={"experiment_name": "zz"}).json() == {"experiment": None}
    dup = http.post("/api/v1/experiments/create", json={"name": "e"})
    assert dup.status_code == 400
    assert dup.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    missing = http.get("/api/v1/experiments/get", params={"experiment_id": "99"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert http.post("/api/v1/experiments/delete", json={"experiment_id": eid}).status_code == 200
    found = http.post("/api/v1/experiments/search", json={"view_type": "deleted"}).json()
    assert [e["name"] for e in found["experiments"]] == ["e"]
    audit = http.get("/api/v1/audit-log/search", params={"actor": "bob"}).json()["entries"]
    assert [e["action"] for e in audit] == ["create_experiment"]


def test_registry_routes(http: TestClient) -> None:
    assert http.post("/api/v1/registered-models/create", json={"name": "m"},
                     headers=H).status_code == 200
    for src in ("runs:/r1/model", "runs:/r2/model"):
        r = http.post("/api/v1/model-versions/create", json={"name": "m", "source": src})
        assert r.status_code == 200
    assert r.json()["model_version"]["version"] == "2"
    r = http.post("/api/v1/model-versions/transition-stage",
                  json={"name": "m", "version": "2", "stage": "production",
                        "archive_existing_versions": True, "comment": "ship"}, headers=H)
    assert r.json()["model_version"]["current_stage"] == "Production"
    bad = http.post("/api/v1/model-versions/transition-stage",
                    json={"name": "m", "version": "2", "stage": "Prod"})
    assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert http.post("/api/v1/registered-models/alias",
                     json={"name": "m", "alias": "champ", "version": "1"}).status_code == 200
    reserved = http.post("/api/v1/registered-models/alias",
                         json={"name": "m", "alias": "v2", "version": "1"})
    assert reserved.status_code == 400 and "reserved" in reserved.json()["message"]
    got = http.get("/api/v1/registered-models/alias", params={"name": "m", "alias": "champ"})
    assert got.json()["model_version"]["version"] == "1"
    res = http.get("/api/v1/model-versions/resolve", params={"model_uri": "models:/m/Production"})
    assert res.json()["artifact_location"] == "runs:/r2/model"
    model = http.get("/api/v1/registered-models/get", params={"name": "m"}).json()
    rv = model["registered_model"]["row_version"]
    ok = http.patch("/api/v1/registered-models/update",
                    json={"name": "m", "description": "x", "expected_version": rv})
    assert ok.status_code == 200
    stale = http.patch("/api/v1/registered-models/update",
                       json={"name": "m", "description": "y", "expected_version": rv})
    assert (stale.status_code, stale.json()["error_code"]) == (409, "CONFLICT")
    vs = http.post("/api/v1/model-versions/search", json={"filter": "name = 'm'"}).json()
    assert [v["version"] for v in vs["model_versions"]] == ["2", "1"]
    audit = http.get("/api/v1/audit-log/search", params={"model_name": "m"}).json()["entries"]
    transition = [e for e in audit if e["action"] == "transition_model_version_stage"]
    assert transition[0]["actor"] == "bob" and transition[0]["comment"] == "ship"
    gone = http.get("/api/v1/registered-models/get", params={"name": "nope"})
    assert gone.status_code == 404
