"""Findings of a fresh-eyes MLflow user (MLflow 3.17.2), each pinned against metricflow.

1. sources and artifact locations that name another host are refused (bearer tokens);
2. search_runs attributes without a prefix, IS [NOT] NULL, datasets.*, artifact_uri;
3. a version registered from models:/SRC@alias is pinned to models:/SRC/<version>;
and the smaller contract items after them.
"""

from __future__ import annotations

import uuid

import pytest
import requests


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _post(uri: str, path: str, body: dict) -> requests.Response:
    return requests.post(f"{uri}/api/2.0/mlflow/{path}", json=body, timeout=30)


def _get(uri: str, path: str, params: dict) -> requests.Response:
    return requests.get(f"{uri}/api/2.0/mlflow/{path}", params=params, timeout=30)


# ------------------------------------------------------- 1. sources naming another host
@pytest.mark.parametrize("source", [
    "mlflow-artifacts://attacker.example:8080/1/abc/artifacts/model",
    "MLFLOW-ARTIFACTS://attacker.example/x",
    "http://attacker.example/model", "https://attacker.example/model",
    "ftp://attacker.example/model", "sftp://attacker.example/model",
    "hdfs://attacker.example:8020/model"])
def test_sources_naming_another_host_are_refused(mlclient, tracking, source):
    name = _name("host")
    mlclient.create_registered_model(name)
    r = _post(tracking, "model-versions/create", {"name": name, "source": source})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    scheme = source.split(":", 1)[0].lower()
    assert f"'source' cannot use the '{scheme}' scheme" in body["message"]
    assert "addresses a host other than" in body["message"]
    assert mlclient.search_model_versions(f"name = '{name}'") == []


def test_sources_on_this_server_or_object_stores_stay_accepted(mlclient, tracking):
    name = _name("okhost")
    mlclient.create_registered_model(name)
    for src in ["mlflow-artifacts:/1/x/artifacts/model", "mlflow-artifacts:///1/y/model",
                "s3://bucket/model", "gs://bucket/model"]:
        r = _post(tracking, "model-versions/create", {"name": name, "source": src})
        assert r.status_code == 200, (src, r.text)


@pytest.mark.parametrize("location", [
    "mlflow-artifacts://otherhost/artifacts", "mlflow-artifacts://otherhost:5000/a",
    "http://otherhost/artifacts", "https://otherhost/a", "ftp://otherhost/a"])
def test_experiment_locations_naming_another_host_are_refused(mlclient, tracking, location):
    name = _name("exphost")
    r = _post(tracking, "experiments/create", {"name": name, "artifact_location": location})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'artifact_location' cannot use the" in r.json()["message"]
    assert mlclient.get_experiment_by_name(name) is None


# ------------------------------------------- 2. search_runs names without a prefix
def test_search_runs_reads_unprefixed_names_as_attributes(mlclient, tracking):
    exp = mlclient.create_experiment(_name("unpref"))
    a = mlclient.create_run(exp, run_name="PARENT-a", tags={"t": "1"})
    b = mlclient.create_run(exp, run_name="child-b")
    mlclient.log_param(b.info.run_id, "p", "x")
    mlclient.set_terminated(a.info.run_id, "FINISHED")
    ida, idb = a.info.run_id, b.info.run_id

    def ids(filter_string: str = "", order_by: list[str] | None = None) -> list[str]:
        return [r.info.run_id for r in mlclient.search_runs(
            [exp], filter_string, order_by=order_by)]

    assert ids("status = 'FINISHED'") == [ida]
    assert ids("run_name = 'child-b'") == [idb]
    assert ids("run_name ILIKE 'par%'") == [ida]
    assert ids("tags.t IS NOT NULL") == [ida]
    assert ids("tags.t IS NULL") == [idb]
    assert ids("params.p IS NOT NULL") == [idb]
    assert ids("params.p IS NULL AND status = 'FINISHED'") == [ida]
    assert ids(order_by=["start_time DESC"]) == [idb, ida]
    assert ids(order_by=["start_time ASC"]) == [ida, idb]
    assert ids(order_by=["run_name"]) == [ida, idb]  # 'P' < 'c'
    assert ids(order_by=["status"]) == [ida, idb]  # FINISHED < RUNNING
    assert ids(order_by=["created DESC"]) == [idb, ida]
    assert sorted(ids(order_by=["run_id"])) == sorted([ida, idb])
    assert set(ids(order_by=["end_time"])) == {ida, idb}
    # sorting by the key that the IS NULL test names (the key's rows drive the query)
    assert ids("tags.t IS NULL", order_by=["tags.t"]) == [idb]


# ----------------------------------- 3. versions registered from another registered model
def test_version_from_alias_is_pinned_and_survives_the_source_model(mlclient, tracking,
                                                                      tmp_path):
    import mlflow

    src, dst = _name("pin-src"), _name("pin-dst")
    exp = mlclient.create_experiment(_name("pin"))
    rid = mlclient.create_run(exp).info.run_id
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.bin").write_bytes(b"w" * 10)
    mlclient.log_artifacts(rid, str(tmp_path / "m"), "model")
    mlclient.create_registered_model(src)
    mlclient.create_model_version(src, f"runs:/{rid}/model", run_id=rid)  # v1
    mlclient.create_model_version(src, "s3://bucket/other")  # v2
    mlclient.set_registered_model_alias(src, "champion", "1")
    mlclient.create_registered_model(dst)
    mv = mlclient.create_model_version(dst, f"models:/{src}@champion")
    assert mv.source == f"models:/{src}/1"
    assert mv.run_id == rid  # inherited from the source version, as MLflow
    mlclient.transition_model_version_stage(src, "2", "Production")
    mv2 = mlclient.create_model_version(dst, f"models:/{src}/Production")
    assert mv2.source == f"models:/{src}/2"
    # moving the alias does not change what the version holds
    mlclient.set_registered_model_alias(src, "champion", "2")
    assert mlclient.get_model_version(dst, mv.version).source == f"models:/{src}/1"
    before = mlclient.get_model_version_download_uri(dst, mv.version)
    assert before.endswith(f"/{rid}/artifacts/model"), before
    # the source model is deleted: the version still resolves to the same files
    mlclient.delete_registered_model(src)
    assert mlclient.get_model_version_download_uri(dst, mv.version) == before
    assert mlclient.get_model_version_download_uri(dst, mv2.version) == "s3://bucket/other"
    out = mlflow.artifacts.download_artifacts(f"models:/{dst}/{mv.version}",
                                              dst_path=str(tmp_path / "dl"))
    assert any(p.name == "weights.bin" for p in (tmp_path / "dl").rglob("*")), out


def test_version_from_a_missing_alias_is_refused(mlclient, tracking):
    src, dst = _name("pin-src"), _name("pin-dst")
    mlclient.create_registered_model(src)
    mlclient.create_registered_model(dst)
    r = _post(tracking, "model-versions/create", {"name": dst, "source": f"models:/{src}@nope"})
    assert r.status_code in (400, 404), r.text
    assert mlclient.search_model_versions(f"name = '{dst}'") == []


# ------------------------------------------------ 5. multipart parts are streamed, capped
def _mpu(tracking: str, mlclient, name: str, parts: int) -> tuple[str, str, list[dict]]:
    exp = mlclient.create_experiment(_name("mpu"))
    rid = mlclient.create_run(exp).info.run_id
    root = f"{exp}/{rid}/artifacts"
    r = requests.post(f"{tracking}/api/2.0/mlflow-artifacts/mpu/create/{root}",
                      json={"path": name, "num_parts": parts}, timeout=30)
    assert r.status_code == 200, r.text
    return root, r.json()["upload_id"], r.json()["credentials"]


def test_multipart_parts_are_stored_in_bounded_pieces(mlclient, tracking, mf_live,
                                                      monkeypatch):
    from metricflow.mlflow_compat import _artifacts

    monkeypatch.setattr(_artifacts, "MPU_SPOOL_BYTES", 64 * 1024)
    root, upload_id, creds = _mpu(tracking, mlclient, "big.bin", 2)
    p1, p2 = bytes(range(256)) * 1100, b"tail" * 1000  # 281,600 bytes: 5 pieces; 1 piece
    for cred, data in zip(creds, (p1, p2), strict=True):
        r = requests.put(cred["url"], data=data, timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["ETag"]
    blobs = mf_live.server.artifacts.blobs
    keys = sorted(b.key for b in blobs.list(f"staging/mlflow-mpu/{upload_id}/00001/"))
    assert len(keys) == 5  # 281,600 bytes in pieces of at most 64 KiB
    assert all(len(blobs.get(k)) <= 64 * 1024 for k in keys)
    r = requests.post(f"{tracking}/api/2.0/mlflow-artifacts/mpu/complete/{root}", json={
        "path": "big.bin", "upload_id": upload_id,
        "parts": [{"part_number": 1, "etag": ""}, {"part_number": 2, "etag": ""}]}, timeout=30)
    assert r.status_code == 200, r.text
    got = requests.get(f"{tracking}/api/2.0/mlflow-artifacts/artifacts/{root}/big.bin",
                       timeout=30)
    assert got.status_code == 200 and got.content == p1 + p2


def test_multipart_part_over_the_limit_is_413_and_stores_nothing(mlclient, tracking,
                                                                 monkeypatch):
    from metricflow.mlflow_compat import _artifacts

    monkeypatch.setattr(_artifacts, "MPU_MAX_PART_BYTES", 100_000)
    monkeypatch.setattr(_artifacts, "MPU_SPOOL_BYTES", 16 * 1024)
    root, upload_id, creds = _mpu(tracking, mlclient, "huge.bin", 1)
    r = requests.put(creds[0]["url"], data=b"x" * 100_001, timeout=30)
    assert r.status_code == 413, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "larger than the limit of 100000 bytes" in r.json()["message"]

    def chunks():  # no Content-Length: the limit is counted while streaming
        for _ in range(20):
            yield b"y" * 10_000

    r = requests.put(creds[0]["url"], data=chunks(), timeout=30)
    assert r.status_code == 413, r.text
    r = requests.post(f"{tracking}/api/2.0/mlflow-artifacts/mpu/complete/{root}", json={
        "path": "huge.bin", "upload_id": upload_id,
        "parts": [{"part_number": 1, "etag": ""}]}, timeout=30)
    assert r.status_code == 400 and "never uploaded" in r.json()["message"], r.text


# ------------------------------------------------------------------ 4. length limits
def test_long_param_and_tag_values_are_cut_like_mlflows_server(mlclient, tracking):
    """MLflow 3.17.2's server (measured: mlflow server, SQLite) answers 200 and keeps the
    first 6000 characters of a param and 8000 of a tag set after the run's creation."""
    rid = mlclient.create_run(mlclient.create_experiment(_name("len"))).info.run_id
    assert _post(tracking, "runs/log-parameter",
                 {"run_id": rid, "key": "p", "value": "a" * 6001}).status_code == 200
    assert _post(tracking, "runs/log-batch", {"run_id": rid, "params": [
        {"key": "q", "value": "b" * 20000}], "tags": [{"key": "u", "value": "c" * 9000}]}
                 ).status_code == 200
    assert _post(tracking, "runs/set-tag",
                 {"run_id": rid, "key": "t", "value": "d" * 8001}).status_code == 200
    data = mlclient.get_run(rid).data
    assert data.params["p"] == "a" * 6000 and data.params["q"] == "b" * 6000
    assert data.tags["t"] == "d" * 8000 and data.tags["u"] == "c" * 8000


# ------------------------------------------------- 6. smaller parts of MLflow's contract
@pytest.mark.parametrize("bad", ["a/b", "a:b"])
def test_model_names_with_slash_or_colon_are_refused(mlclient, tracking, bad):
    name = _name(bad)
    r = _post(tracking, "registered-models/create", {"name": name})
    assert r.status_code == 400, r.text
    assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE",
                        "message": f"Invalid model name '{name}'. Names cannot contain "
                                   "'/' or ':'."}
    ok = _name("okname")
    mlclient.create_registered_model(ok)
    r = _post(tracking, "registered-models/rename", {"name": ok, "new_name": name})
    assert r.status_code == 400 and "Names cannot contain" in r.json()["message"], r.text
    assert mlclient.get_registered_model(ok).name == ok


def test_experiment_with_duplicate_tag_keys_is_refused_and_not_created(mlclient, tracking):
    name = _name("duptags")
    r = _post(tracking, "experiments/create", {"name": name, "tags": [
        {"key": "k", "value": "1"}, {"key": "k", "value": "2"}]})
    assert r.status_code == 400, r.text
    assert "'k'" in r.json()["message"]
    assert mlclient.get_experiment_by_name(name) is None


def test_registry_error_codes_match_mlflow(mlclient, tracking):
    name = _name("codes")
    mlclient.create_registered_model(name)
    mlclient.create_model_version(name, "s3://b/x")
    r = _get(tracking, "registered-models/alias", {"name": name, "alias": "nope"})
    assert r.status_code == 400, r.text
    assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE",
                        "message": "Registered model alias nope not found."}
    r = _get(tracking, "registered-models/alias", {"name": name + "-gone", "alias": "nope"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for v in ("-1", "0"):
        r = _get(tracking, "model-versions/get", {"name": name, "version": v})
        assert r.status_code == 404, r.text
        assert r.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                            "message": f"Model Version (name={name}, version={v}) not found"}


def test_history_bulk_of_an_unknown_run_is_an_empty_list(tracking):
    r = requests.get(f"{tracking}/ajax-api/2.0/mlflow/metrics/get-history-bulk",
                     params={"run_id": uuid.uuid4().hex, "metric_key": "m"}, timeout=30)
    assert r.status_code == 200 and r.json() == {"metrics": []}


def test_metadata_length_limits_are_mlflows(mlclient, tracking):
    """Measured against mlflow server 3.17.2 (SQLite): experiment names up to 500
    characters, experiment tags (mlflow.note.content) up to 20,000, registered-model and
    model-version tags up to 100,000; one more is 400."""
    name = "e" * 492 + uuid.uuid4().hex[:8]
    exp = mlclient.create_experiment(name)
    assert mlclient.get_experiment(exp).name == name
    r = _post(tracking, "experiments/create", {"name": name + "x"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    note = "n" * 20000
    mlclient.set_experiment_tag(exp, "mlflow.note.content", note)
    assert mlclient.get_experiment(exp).tags["mlflow.note.content"] == note
    r = _post(tracking, "experiments/set-experiment-tag",
              {"experiment_id": exp, "key": "k", "value": "n" * 20001})
    assert r.status_code == 400 and "20000" in r.json()["message"], r.text
    model = _name("lim")
    mlclient.create_registered_model(model)
    mlclient.create_model_version(model, "s3://b/x")
    mlclient.set_registered_model_tag(model, "k", "v" * 100000)
    mlclient.set_model_version_tag(model, "1", "k", "w" * 100000)
    assert mlclient.get_registered_model(model).tags["k"] == "v" * 100000
    assert mlclient.get_model_version(model, "1").tags["k"] == "w" * 100000
    for path, body in (("registered-models/set-tag", {"name": model}),
                       ("model-versions/set-tag", {"name": model, "version": "1"})):
        r = _post(tracking, path, {**body, "key": "k", "value": "v" * 100001})
        assert r.status_code == 400 and "100000" in r.json()["message"], r.text


def test_register_prompt_is_refused_clearly_and_creates_nothing(mlclient, tracking):
    import mlflow
    from mlflow.exceptions import MlflowException

    name = _name("prompt")
    with pytest.raises(MlflowException, match="Prompts .* are not served by this server") as ei:
        mlflow.genai.register_prompt(name=name, template="Hello {{x}}")
    assert ei.value.error_code == "ENDPOINT_NOT_FOUND"
    r = _get(tracking, "registered-models/get", {"name": name})
    assert r.status_code == 404, r.text


def test_versions_stored_earlier_with_a_host_source_are_not_handed_out(mlclient, tracking,
                                                                       mf_live):
    name = _name("legacy")
    mlclient.create_registered_model(name)
    store = mf_live.server.metadata  # as a release before the refusal stored them
    for src in ("mlflow-artifacts://attacker.example:80/1/x/artifacts/m",
                "https://attacker.example/m"):
        v = store.create_model_version(name, src).version
        r = _get(tracking, "model-versions/get-download-uri", {"name": name, "version": v})
        assert r.status_code == 400, r.text
        assert "addresses a host other than" in r.json()["message"]
        assert "attacker" not in r.json().get("artifact_uri", "")
