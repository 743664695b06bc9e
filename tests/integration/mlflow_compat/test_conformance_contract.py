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
                                   "gs://host/a/%2e%2e/b", "mlflow-artifacts:/1/x%00"])
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
    assert r.status_code == 400
    assert "Invalid value \"5\" for parameter 'tags'" in r.json()["message"]
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


def test_logged_model_source_run_that_does_not_exist_is_kept(mlclient, tracking):
    exp = mlclient.create_experiment(_name("lm-src"))
    ghost = uuid.uuid4().hex
    model = mlclient.create_logged_model(exp, source_run_id=ghost)
    assert mlclient.get_logged_model(model.model_id).source_run_id == ghost


# --------------------------------------------------------------- 2. routes MLflow serves
def _ajax(uri: str, path: str) -> str:
    return f"{uri}/ajax-api/2.0/mlflow/{path}"


def test_get_history_bulk_and_its_validation(mlclient, tracking):
    exp = mlclient.create_experiment(_name("bulk"))
    r1, r2 = (mlclient.create_run(exp).info.run_id for _ in range(2))
    for i, (step, ts, v) in enumerate([(2, 1, 10.0), (3, 1, 11.0), (3, 2, 12.0)]):
        mlclient.log_metric(r1, "m", v, timestamp=ts, step=step)
        mlclient.log_metric(r2, "m", v + 1, timestamp=ts, step=step)
        assert i < 3
    r = requests.get(_ajax(tracking, "metrics/get-history-bulk"),
                     params={"run_id": [r2, r1], "metric_key": "m"}, timeout=30)
    assert r.status_code == 200, r.text
    got = [(m["run_id"], m["step"], m["timestamp"], m["value"]) for m in r.json()["metrics"]]
    first, second = sorted([r1, r2])
    off = {r1: 0.0, r2: 1.0}
    assert got == [(rid, s, t, v + off[rid]) for rid in (first, second)
                   for s, t, v in [(2, 1, 10.0), (3, 1, 11.0), (3, 2, 12.0)]]
    for params, msg in (({"metric_key": "m"}, "must specify at least one run_id"),
                        ({"run_id": [f"id{i}" for i in range(101)], "metric_key": "m"},
                         "cannot specify more than 100"),
                        ({"run_id": [r1]}, "must specify a metric_key")):
        r = requests.get(_ajax(tracking, "metrics/get-history-bulk"), params=params, timeout=30)
        assert r.status_code == 400 and msg in r.json()["message"], r.text
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_get_history_bulk_interval_validates_before_looking_up_runs(tracking):
    url = _ajax(tracking, "metrics/get-history-bulk-interval")
    for params, msg in (({"metric_key": "k"}, "Missing value for required parameter 'run_ids'"),
                        ({"run_ids": ["123"], "metric_key": "k", "max_results": 0},
                         "max_results must be between 1 and 2500, got 0"),
                        ({"run_ids": ["123"], "max_results": 5},
                         "Missing value for required parameter 'metric_key'"),
                        ({"run_ids": ["123"], "metric_key": "k", "start_step": 1,
                          "end_step": 0}, "end_step must be greater than start_step")):
        r = requests.get(url, params=params, timeout=30)
        assert r.status_code == 400, (params, r.text)
        assert msg in r.json()["message"]


def test_upload_artifact_then_get_artifact(mlclient, tracking):
    rid = mlclient.create_run("0").info.run_id
    url = _ajax(tracking, "upload-artifact")
    for params, data, msg in (({}, b"x", "Request must specify run_uuid."),
                              ({"run_uuid": rid}, b"x", "Request must specify path."),
                              ({"run_uuid": rid, "path": "../x.txt"}, b"x", "Invalid path"),
                              ({"run_uuid": rid, "path": "x.txt"}, b"", "must specify data")):
        r = requests.post(url, params=params, data=data, timeout=30)
        assert r.status_code == 400 and msg in r.json()["message"], (params, r.text)
    r = requests.post(url, params={"run_uuid": rid, "path": "dir/hello.txt"},
                      data=b"hello world", timeout=30)
    assert r.status_code == 200, r.text
    r = requests.get(f"{tracking}/get-artifact", params={"run_uuid": rid,
                                                          "path": "dir/hello.txt"}, timeout=30)
    assert r.status_code == 200 and r.content == b"hello world"
    assert [f.path for f in mlclient.list_artifacts(rid, "dir")] == ["dir/hello.txt"]


def test_logged_model_artifact_file_download(mlclient, tracking, tmp_path):
    exp = mlclient.create_experiment(_name("lm-files"))
    model = mlclient.create_logged_model(exp)
    (tmp_path / "MLmodel").write_text(f"model_id: {model.model_id}\n")
    mlclient.log_model_artifacts(model.model_id, str(tmp_path))
    url = _ajax(tracking, f"logged-models/{model.model_id}/artifacts/files")
    r = requests.get(url, params={"artifact_file_path": "MLmodel"}, timeout=30)
    assert r.status_code == 200 and model.model_id in r.text
    r = requests.get(url, params={"artifact_file_path": "missing"}, timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(url, params={"artifact_file_path": "../../etc/passwd"}, timeout=30)
    assert r.status_code == 400


def test_unknown_mlflow_routes_answer_endpoint_not_found_fast(tracking):
    import time

    for method, path in (("POST", "/api/3.0/mlflow/traces"),
                         ("GET", "/api/2.0/mlflow/scorers/list"),
                         ("POST", "/ajax-api/3.0/mlflow/datasets/create"),
                         ("POST", "/api/2.0/mlflow/gateway-proxy"),
                         ("POST", "/v1/traces"), ("GET", "/ajax-api/3.0/jobs/abc")):
        t0 = time.monotonic()
        r = requests.request(method, tracking + path, json={}, timeout=10)
        assert time.monotonic() - t0 < 5
        assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND", path


# -------------------------------------------------------------- 5. search semantics
def test_search_experiments_default_order_is_newest_first(mlclient, tracking):
    import time

    names = [_name("order") for _ in range(3)]
    for n in names:
        mlclient.create_experiment(n)
        time.sleep(0.01)
    got = [e.name for e in mlclient.search_experiments(filter_string="name LIKE 'order-%'")]
    assert [n for n in got if n in names] == names[::-1]


def test_relative_artifact_location_is_resolved_like_mlflow(mlclient, tracking):
    import os

    exp = mlclient.create_experiment(_name("loc"), artifact_location="my_location")
    loc = mlclient.get_experiment(exp).artifact_location
    assert os.path.isabs(loc) and loc.endswith("/my_location")


def test_model_metrics_keep_model_and_dataset_and_search_honours_them(mlclient, tracking):
    import time

    exp = mlclient.create_experiment(_name("lm-search"))
    m1 = mlclient.create_logged_model(exp)
    time.sleep(0.01)
    m2 = mlclient.create_logged_model(exp)
    rid = mlclient.create_run(exp).info.run_id
    mlclient.log_metric(rid, "acc", 0.5, timestamp=5, step=1, dataset_name="ds",
                        dataset_digest="d1", model_id=m1.model_id)
    got = mlclient.get_logged_model(m1.model_id).metrics
    assert [(m.key, m.value, m.step, m.model_id, m.dataset_name, m.dataset_digest, m.run_id)
            for m in got] == [("acc", 0.5, 1, m1.model_id, "ds", "d1", rid)]
    found = mlclient.search_logged_models([exp], datasets=[{"dataset_name": "ds",
                                                             "dataset_digest": "d1"}])
    assert [m.model_id for m in found] == [m1.model_id]
    assert mlclient.search_logged_models([exp], datasets=[{"dataset_name": "other"}]) == []
    asc = mlclient.search_logged_models(
        [exp], order_by=[{"field_name": "creation_timestamp", "ascending": True}])
    assert [m.model_id for m in asc] == [m1.model_id, m2.model_id]
    desc = mlclient.search_logged_models(
        [exp], order_by=[{"field_name": "creation_timestamp", "ascending": False}])
    assert [m.model_id for m in desc] == [m2.model_id, m1.model_id]


# ----------------------------------------------------------------------- /graphql
def _gql(uri: str, query: str, op: str = "q") -> dict:
    r = requests.post(f"{uri}/graphql", json={"query": query, "operationName": op},
                      timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_graphql_answers_mlflows_queries(mlclient, tracking, tmp_path):
    exp = mlclient.create_experiment(_name("gql"))
    r1 = mlclient.create_run(exp).info.run_id
    r2 = mlclient.create_run(exp).info.run_id
    for i in range(5):
        mlclient.log_metric(r1, "loss", float(i), step=i, timestamp=100 + i)
    mlclient.log_metric(r1, "bad", float("nan"), step=0, timestamp=1)
    (tmp_path / "f.txt").write_text("hello world")
    mlclient.log_artifact(r1, str(tmp_path / "f.txt"), "d")
    name = _name("gqlmodel")
    mlclient.create_registered_model(name)
    mlclient.create_model_version(name, "s3://b/m", run_id=r1)

    out = _gql(tracking, f'query q {{ mlflowGetExperiment(input: {{experimentId: "{exp}"}}) '
                         "{ experiment { experimentId name lifecycleStage } } }")
    assert out["errors"] is None
    assert out["data"]["mlflowGetExperiment"]["experiment"]["experimentId"] == exp
    out = _gql(tracking, f'query q {{ mlflowGetRun(input: {{runId: "{r1}"}}) {{ run {{ '
                         "info { runId experimentId startTime } experiment { name } "
                         "data { metrics { key value step timestamp } } } } }")
    assert out["errors"] is None, out
    run = out["data"]["mlflowGetRun"]["run"]
    assert run["info"]["runId"] == r1 and isinstance(run["info"]["startTime"], str)
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["loss"] == {"key": "loss", "value": 4.0, "step": "4", "timestamp": "104"}
    assert metrics["bad"]["value"] is None  # NaN is null in GraphQL
    out = _gql(tracking, f'mutation q {{ mlflowSearchRuns(input: {{experimentIds: ["{exp}"]}}) '
                         "{ runs { info { runId } } } }")
    assert [x["info"]["runId"] for x in out["data"]["mlflowSearchRuns"]["runs"]] == [r2, r1]
    out = _gql(tracking, f'query q {{ files: mlflowListArtifacts(input: {{runId: "{r1}", '
                         'path: "d"}) { files { path isDir fileSize } } }')
    assert out["data"]["files"]["files"] == [{"path": "d/f.txt", "isDir": False,
                                              "fileSize": "11"}]
    out = _gql(tracking, "query q { mlflowSearchModelVersions(input: "
                         f"{{filter: \"name = '{name}'\"}}) {{ modelVersions {{ name version "
                         "source } } }")
    assert out["data"]["mlflowSearchModelVersions"]["modelVersions"] == [
        {"name": name, "version": "1", "source": "s3://b/m"}]
    out = _gql(tracking, "query q { mlflowGetMetricHistoryBulkInterval(input: "
                         f'{{runIds: ["{r1}"], metricKey: "loss", maxResults: 3}}) '
                         "{ metrics { key step value runId } } }")
    got = out["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    assert [m["step"] for m in got] == ["0", "2", "4"] and {m["runId"] for m in got} == {r1}


def test_graphql_limits_and_errors(tracking):
    many = " ".join(f'k{i}: test(inputString: "a") {{ output }}' for i in range(12))
    assert "at most 10 root fields" in _gql(tracking, f"query q {{ {many} }}")["errors"][0]
    inner = "name"
    for _ in range(12):
        inner = f"name {{ {inner} }}"
    deep = ('query q { mlflowGetExperiment(input: {experimentId: "1"}) '
            f"{{ experiment {{ {inner} }} }} }}")
    assert "maximum depth of 10" in _gql(tracking, deep)["errors"][0]
    out = _gql(tracking, 'query q { test(inputString: "abc") { output } }')
    assert out == {"data": {"test": {"output": "abc"}}, "errors": None}
    out = _gql(tracking, 'query q { mlflowGetRun(input: {runId: "0123"}) { run { info '
                         "{ runId } } } }")
    assert out["data"]["mlflowGetRun"] is None and "not found" in out["errors"][0]
    out = _gql(tracking, "query q { nope }")
    assert out["data"] is None and out["errors"]


def test_search_datasets_lists_run_inputs(mlclient, tracking):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    exp = mlclient.create_experiment(_name("ds"))
    rid = mlclient.create_run(exp).info.run_id
    ds = Dataset(name="train", digest="abc", source_type="local", source="x")
    mlclient.log_inputs(rid, [DatasetInput(ds, [InputTag("mlflow.data.context", "training")])])
    url = _ajax(tracking, "experiments/search-datasets")
    r = requests.post(url, json={"experiment_ids": [exp]}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["dataset_summaries"] == [{"experiment_id": exp, "name": "train",
                                              "digest": "abc", "context": "training"}]
    r = requests.post(url, json={}, timeout=30)
    assert r.status_code == 400 and "at least one experiment_id" in r.json()["message"]
    r = requests.post(url, json={"experiment_ids": [str(i) for i in range(21)]}, timeout=30)
    assert r.status_code == 400 and "cannot specify more than 20" in r.json()["message"]
