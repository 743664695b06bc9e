"""MLflow's server contract on metricflow: sources, validation, error wording, tags.

Each test pins one behaviour an MLflow client (or MLflow's own REST test suite,
see scripts/mlflow_conformance.py) relies on. Written from the behaviour, against
the shared metricflow server of this package's conftest.
"""

from __future__ import annotations

import uuid

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _post(uri: str, path: str, body: dict) -> requests.Response:
    return requests.post(f"{uri}/api/2.0/mlflow/{path}", json=body, timeout=30)


# ------------------------------------------------------------ 1. model-version sources
def test_remote_and_not_yet_uploaded_sources_register_ready(mlclient, tracking):
    name = _name("src")
    mlclient.create_registered_model(name)
    exp = mlclient.create_experiment(_name("src"))
    run = mlclient.create_run(exp)
    rid = run.info.run_id
    sources = [f"runs:/{rid}/model",  # nothing uploaded yet: register first, upload later
               "s3://some-bucket/elsewhere/model",
               f"mlflow-artifacts:/{exp}/{rid}/artifacts/model",
               "gs://bucket/m"]
    for src in sources:
        mv = mlclient.create_model_version(name, src, run_id=rid)
        assert mv.status == "READY", (src, mv.status, mv.status_message)
    # another registered model's version as the source
    mv = mlclient.create_model_version(name, f"models:/{name}/2")
    assert mv.status == "READY"
    assert mlclient.get_model_version(name, mv.version).status == "READY"
    # sources outside this server are handed back as they are; models:/ resolves
    assert mlclient.get_model_version_download_uri(name, "2") == sources[1]
    assert mlclient.get_model_version_download_uri(name, mv.version) == sources[1]
    v = mlclient.create_model_version(name, "runs:/not-a-run-here/model").version
    assert mlclient.get_model_version_download_uri(name, v) == "runs:/not-a-run-here/model"


def test_missing_files_are_named_when_downloaded(mlclient, tracking, tmp_path):
    name = _name("later")
    mlclient.create_registered_model(name)
    rid = mlclient.create_run(mlclient.create_experiment(_name("later"))).info.run_id
    mlclient.create_model_version(name, f"runs:/{rid}/model", run_id=rid)
    with pytest.raises(MlflowException, match=rf"nothing was uploaded to run {rid} at 'model'"):
        mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "a"))
    # upload later: the same version now resolves
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.bin").write_bytes(b"w" * 100)
    mlclient.log_artifacts(rid, str(tmp_path / "m"), "model")
    out = mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "b"))
    assert (tmp_path / "b").exists() and any(p.name == "weights.bin"
                                             for p in (tmp_path / "b").rglob("*")), out


@pytest.mark.parametrize("source", ["/etc/passwd", "file:///etc/passwd", "model/relative",
                                   "./model", "file:/tmp/x"])
def test_local_filesystem_sources_are_refused(mlclient, tracking, source):
    name = _name("local")
    mlclient.create_registered_model(name)
    r = _post(tracking, "model-versions/create", {"name": name, "source": source})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "local" in r.json()["message"]
    assert mlclient.search_model_versions(f"name = '{name}'") == []


@pytest.mark.parametrize("source", ["s3://b/models/../../other", "mlflow-artifacts:/1/..%2f..%2fx",
                                   "https://host/a/%2e%2e/b", "mlflow-artifacts:/1/x%00"])
def test_relative_references_in_uri_sources_are_refused(mlclient, tracking, source):
    name = _name("dots")
    mlclient.create_registered_model(name)
    r = _post(tracking, "model-versions/create", {"name": name, "source": source})
    assert r.status_code == 400, r.text
    assert "without relative path references" in r.json()["message"]


# --------------------------------------------------- 3. validation and error contract
def test_wrong_json_types_answer_mlflow_400_and_change_nothing(mlclient, tracking):
    before = {e.name for e in mlclient.search_experiments()}
    r = _post(tracking, "experiments/create", {"name": 123})
    assert r.status_code == 400
    assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": r.json()["message"]}
    assert "Invalid value 123 for parameter 'name' supplied" in r.json()["message"]
    assert {e.name for e in mlclient.search_experiments()} == before
    assert "123" not in {e.name for e in mlclient.search_experiments()}
    r = _post(tracking, "experiments/create", {"name": _name("x"), "tags": "5"})
    assert r.status_code == 400 and "Invalid value \"5\" for parameter 'tags'" in r.json()["message"]
    r = _post(tracking, "experiments/create", {})
    assert r.status_code == 400
    assert "Missing value for required parameter 'name'" in r.json()["message"]


def test_numeric_run_id_is_invalid_not_missing(mlclient, tracking):
    rid = mlclient.create_run("0").info.run_id
    for path, body in (("runs/log-metric", {"run_id": 31, "key": "m", "value": 1,
                                            "timestamp": 1, "step": 0}),
                       ("runs/log-parameter", {"run_id": 31, "key": "p", "value": "v"}),
                       ("runs/set-tag", {"run_id": 31, "key": "t", "value": "v"})):
        r = _post(tracking, path, body)
        assert r.status_code == 400, (path, r.text)
        assert "Invalid value 31 for parameter 'run_id' supplied" in r.json()["message"]
    r = _post(tracking, "runs/log-metric", {"run_id": rid, "key": "m", "value": 1,
                                            "timestamp": 1, "step": "foo"})
    assert r.status_code == 400
    assert 'Invalid value "foo" for parameter \'step\' supplied' in r.json()["message"]


def test_registry_errors_use_mlflow_wording(mlclient, tracking):
    name = _name("rm")
    with pytest.raises(MlflowException, match=f"Registered Model with name={name} not found"):
        mlclient.get_registered_model(name)
    mlclient.create_registered_model(name)
    with pytest.raises(MlflowException,
                       match=rf"Registered Model \(name={name}\) already exists"):
        mlclient.create_registered_model(name)
    with pytest.raises(MlflowException,
                       match=rf"Model Version \(name={name}, version=7\) not found"):
        mlclient.get_model_version(name, "7")
    with pytest.raises(MlflowException, match="Registered model alias champ not found"):
        mlclient.get_model_version_by_alias(name, "champ")


# --------------------------------------------------------- 4. tags that are only tags
def test_parent_run_tag_that_is_not_a_run_id_is_a_plain_tag(mlclient, tracking):
    exp = mlclient.create_experiment(_name("parent"))
    run = mlclient.create_run(exp, tags={"mlflow.parentRunId": "7"})
    got = mlclient.get_run(run.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == "7"
