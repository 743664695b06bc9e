"""MLflow routes with auth on: proxied multipart uploads, /graphql, the new file routes.

MLflow's client PUTs parts to the URLs that mpu/create handed out without its
credentials. Each part URL carries a signed, expiring token for exactly one part
of one upload; nothing else opens the part route to an unauthenticated caller.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from metricflow.auth import AuthConfig, AuthStore

_ART = "/api/2.0/mlflow-artifacts"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-mpu")), grpc_port=0,
                       http_port=0, security=SecurityConfig(
                           auth_mode="on", auth=AuthConfig(default_permission="NO_PERMISSIONS")))
    with ServerThread(cfg) as srv:
        store = AuthStore(srv.server.metadata.engine)
        for u in ("alice", "bob"):
            store.create_user(u)
        tokens = {u: store.create_token(u)[1] for u in ("alice", "bob")}
        yield {"http": f"http://127.0.0.1:{srv.server.http_port}", "tokens": tokens}


def _h(secured: dict[str, Any], user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secured['tokens'][user]}"}


@pytest.fixture(scope="module")
def run_root(secured: dict[str, Any]) -> str:
    http, h = secured["http"], _h(secured, "alice")
    exp = httpx.post(f"{http}/api/2.0/mlflow/experiments/create", json={"name": "mpu-auth"},
                     headers=h, timeout=30).json()["experiment_id"]
    rid = httpx.post(f"{http}/api/2.0/mlflow/runs/create", json={"experiment_id": exp},
                     headers=h, timeout=30).json()["run"]["info"]["run_id"]
    return f"{exp}/{rid}/artifacts"


def _create(secured: dict[str, Any], root: str, name: str, parts: int) -> dict[str, Any]:
    r = httpx.post(f"{secured['http']}{_ART}/mpu/create/{root}", json={
        "path": name, "num_parts": parts}, headers=_h(secured, "alice"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_real_client_multipart_upload_with_auth_on(secured, run_root, tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secured["tokens"]["alice"])
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    data = os.urandom(11 * 1024 * 1024)  # three parts
    f = tmp_path / "weights.bin"
    f.write_bytes(data)
    client = MlflowClient(secured["http"])
    rid = run_root.split("/")[1]
    client.log_artifact(rid, str(f), "big")
    out = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="big/weights.bin",
                                              dst_path=str(tmp_path / "dl"),
                                              tracking_uri=secured["http"])
    with open(out, "rb") as got:
        assert got.read() == data


def test_part_urls_work_without_credentials_and_only_for_their_part(secured, run_root):
    up = _create(secured, run_root, "p.bin", 2)
    url1, url2 = (c["url"] for c in up["credentials"])
    assert "token=" in url1 and "expires=" in url1
    # the signed URL alone is enough (no authorization header, as MLflow's client sends)
    assert httpx.put(url1, content=b"hello ", timeout=30).status_code == 200
    # part 1's token does not open part 2
    swapped = url2.split("?")[0] + "?" + url1.split("?")[1]
    assert httpx.put(swapped, content=b"evil", timeout=30).status_code == 403
    # a tampered token, or a changed expiry, is refused
    bad = url2[:-4] + ("0000" if not url2.endswith("0000") else "1111")
    assert httpx.put(bad, content=b"evil", timeout=30).status_code == 403
    later = url2.replace("expires=", "expires=9")
    assert httpx.put(later, content=b"evil", timeout=30).status_code == 403
    # no token and no credentials: the auth guard answers 401
    assert httpx.put(url2.split("?")[0], content=b"x", timeout=30).status_code == 401
    assert httpx.put(url2, content=b"world", timeout=30).status_code == 200
    r = httpx.post(f"{secured['http']}{_ART}/mpu/complete/{run_root}", json={
        "path": "p.bin", "upload_id": up["upload_id"],
        "parts": [{"part_number": 1, "etag": ""}, {"part_number": 2, "etag": ""}]},
        headers=_h(secured, "alice"), timeout=30)
    assert r.status_code == 200, r.text
    got = httpx.get(f"{secured['http']}{_ART}/artifacts/{run_root}/p.bin",
                    headers=_h(secured, "alice"), timeout=30)
    assert got.content == b"hello world"
    # bob may not complete alice's upload, even knowing its id (404: the guard does not
    # tell him whether her run exists)
    up = _create(secured, run_root, "q.bin", 1)
    r = httpx.post(f"{secured['http']}{_ART}/mpu/complete/{run_root}", json={
        "path": "q.bin", "upload_id": up["upload_id"], "parts": [{"part_number": 1}]},
        headers=_h(secured, "bob"), timeout=30)
    assert r.status_code in (403, 404), r.text


def test_expired_part_urls_are_refused(secured, run_root, monkeypatch):
    from metricflow.mlflow_compat import _artifacts

    monkeypatch.setattr(_artifacts, "PART_TOKEN_TTL_S", -1)
    up = _create(secured, run_root, "old.bin", 1)
    r = httpx.put(up["credentials"][0]["url"], content=b"x", timeout=30)
    assert r.status_code == 403 and "expired" in r.json()["message"]


def test_graphql_and_file_routes_check_the_run(secured, run_root):
    http = secured["http"]
    rid = run_root.split("/")[1]
    q = {"query": f'query q {{ mlflowGetRun(input: {{runId: "{rid}"}}) '
                  "{ run { info { runId } } } }", "operationName": "q"}
    r = httpx.post(f"{http}/graphql", json=q, headers=_h(secured, "alice"), timeout=30)
    assert r.status_code == 200 and r.json()["errors"] is None, r.text
    assert r.json()["data"]["mlflowGetRun"]["run"]["info"]["runId"] == rid
    # bob may not read alice's run through GraphQL either
    r = httpx.post(f"{http}/graphql", json=q, headers=_h(secured, "bob"), timeout=30)
    assert r.status_code == 200 and r.json()["data"]["mlflowGetRun"] is None
    assert r.json()["errors"], r.text
    # nobody unauthenticated
    assert httpx.post(f"{http}/graphql", json=q, timeout=30).status_code == 401
    # upload-artifact needs EDIT on the run, get-artifact READ
    up = f"{http}/ajax-api/2.0/mlflow/upload-artifact"
    p = {"run_uuid": rid, "path": "notes.txt"}
    assert httpx.post(up, params=p, content=b"x", headers=_h(secured, "bob"),
                      timeout=30).status_code in (403, 404)
    assert httpx.post(up, params=p, content=b"hi", headers=_h(secured, "alice"),
                      timeout=30).status_code == 200
    get = f"{http}/get-artifact"
    assert httpx.get(get, params=p, headers=_h(secured, "bob"), timeout=30).status_code \
        in (403, 404)
    r = httpx.get(get, params=p, headers=_h(secured, "alice"), timeout=30)
    assert r.status_code == 200 and r.content == b"hi"


def test_dataset_and_artifact_uri_filters_see_only_readable_runs(secured):
    """The dataset clause resolves to run ids of every experiment; the caller's scope
    still decides which of them a search can return."""
    http = secured["http"]

    def post(user: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{http}/api/2.0/mlflow/{path}", json=body,
                          headers=_h(secured, user), timeout=30)

    runs = {}
    for user in ("alice", "bob"):
        exp = post(user, "experiments/create", {"name": f"ds-scope-{user}"}).json()[
            "experiment_id"]
        rid = post(user, "runs/create", {"experiment_id": exp}).json()["run"]["info"]["run_id"]
        r = post(user, "runs/log-inputs", {"run_id": rid, "datasets": [{"dataset": {
            "name": "shared-ds", "digest": "d", "source_type": "local", "source": "x"}}]})
        assert r.status_code == 200, r.text
        runs[user] = (exp, rid)
    for flt in ("datasets.name = 'shared-ds'", "attributes.artifact_uri LIKE '%'"):
        r = post("bob", "runs/search", {"experiment_ids": [runs["bob"][0]], "filter": flt})
        assert r.status_code == 200, r.text
        assert [x["info"]["run_id"] for x in r.json()["runs"]] == [runs["bob"][1]]
        r = post("bob", "runs/search", {"experiment_ids": [runs["alice"][0], runs["bob"][0]],
                                        "filter": flt})
        assert runs["alice"][1] not in r.text
        if r.status_code == 200:
            assert [x["info"]["run_id"] for x in r.json()["runs"]] == [runs["bob"][1]]
        else:
            assert r.status_code == 403, r.text
