"""GET routes of the governance API refuse query parameters they do not take (400
naming them and the accepted ones), as their POST bodies refuse unknown fields: a
misspelt filter silently ignored would widen a listing. Known parameters, as the
docs and the project's callers send them, still work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metricflow.governance._http import _fields, governance_router
from metricflow.governance._ops import ROUTES
from metricflow.store.metadata import open_metadata_store

GETS = sorted((name, path) for name, (verb, path) in ROUTES.items() if verb == "GET")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("gov-get")
    store = open_metadata_store(f"sqlite:///{tmp}/md.db")
    store.create_registered_model("m", actor="admin")
    store.create_model_version("m", "s3://bucket/m/1", run_id="r1", actor="alice")
    app = FastAPI()
    app.include_router(governance_router(store))
    try:
        with TestClient(app) as c:
            yield c
    finally:
        store.close()


def test_every_governance_get_route_is_covered() -> None:
    assert len(GETS) == 7  # a new GET route gets the same check (it is built by _add)


@pytest.mark.parametrize(("method", "path"), GETS)
def test_an_unknown_query_parameter_is_a_400_naming_it_and_the_accepted_ones(
        client: TestClient, method: str, path: str) -> None:
    r = client.get("/api/v1" + path, params={"bogus_param": "1"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    msg = body["message"]
    assert "unknown query parameter 'bogus_param'" in msg, msg
    for accepted in _fields(method):
        assert accepted in msg, (accepted, msg)


def test_several_unknown_parameters_are_all_named_next_to_known_ones(
        client: TestClient) -> None:
    # `model` instead of `name`: ignored, it listed every model's requests
    r = client.get("/api/v1/approvals/list", params={"model": "m", "stat": "pending",
                                                     "name": "m"})
    assert r.status_code == 400, r.text
    msg = r.json()["message"]
    assert "parameters 'model', 'stat'" in msg and "max_results, name, state" in msg, msg
    r = client.get("/api/v1/approvals/list", params={f"p{i}": "1" for i in range(9)})
    assert r.status_code == 400 and "(and 4 more)" in r.json()["message"], r.text


@pytest.mark.parametrize(("path", "params"), [
    ("/approvals/list", {}),
    ("/approvals/list", {"state": "pending", "name": "m", "max_results": "10"}),
    ("/approvals/protected-targets/list", {"name": "m"}),
    ("/approvals/approvers/list", {"name": "m"}),
    ("/approvals/approvers/list", {}),
    ("/policies/list", {"history": "true"}),
    ("/lineage/model-version", {"name": "m", "version": "1"}),
    ("/lineage/trained-on", {"digest": "abc", "dataset_name": "train"}),
])
def test_the_parameters_the_routes_take_still_work(client: TestClient, path: str,
                                                   params: dict[str, Any]) -> None:
    r = client.get("/api/v1" + path, params=params)
    assert r.status_code == 200, r.text


def test_a_known_parameter_keeps_its_own_errors(client: TestClient) -> None:
    r = client.get("/api/v1/approvals/get", params={"request_id": "99999999999999999999"})
    assert r.status_code == 400 and "request_id" in r.json()["message"], r.text
    r = client.get("/api/v1/approvals/get", params={"request_id": "12345"})
    assert r.status_code == 404, r.text
