"""Every MLflow tracking/registry endpoint, called by the real `mlflow` client on metricflow."""

from __future__ import annotations

import math
import time
import uuid

import pytest
import requests
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _code(e: pytest.ExceptionInfo[MlflowException]) -> str:
    return e.value.error_code


def test_experiments_crud_tags_and_search(mlclient):
    name = _name("exp")
    exp_id = mlclient.create_experiment(name, tags={"team": "a"})
    e = mlclient.get_experiment(exp_id)
    assert (e.name, e.lifecycle_stage, e.tags["team"]) == (name, "active", "a")
    assert e.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert mlclient.get_experiment_by_name(name).experiment_id == exp_id
    assert mlclient.get_experiment_by_name(_name("missing")) is None
    with pytest.raises(MlflowException) as ei:
        mlclient.create_experiment(name)
    assert _code(ei) == "RESOURCE_ALREADY_EXISTS"
    mlclient.set_experiment_tag(exp_id, "stage", "dev")
    mlclient.delete_experiment_tag(exp_id, "team")
    assert mlclient.get_experiment(exp_id).tags == {"stage": "dev"}
    mlclient.rename_experiment(exp_id, name + "-renamed")
    found = mlclient.search_experiments(filter_string=f"name = '{name}-renamed'")
    assert [x.experiment_id for x in found] == [exp_id]
    mlclient.delete_experiment(exp_id)
    assert mlclient.get_experiment(exp_id).lifecycle_stage == "deleted"
    deleted = mlclient.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert exp_id in {x.experiment_id for x in deleted}
    mlclient.restore_experiment(exp_id)
    assert mlclient.get_experiment(exp_id).lifecycle_stage == "active"
    with pytest.raises(MlflowException) as ei:
        mlclient.get_experiment("987654321")
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"
    assert mlclient.get_experiment("0").name == "Default"


def test_run_lifecycle_logging_and_system_tags(mlclient):
    exp_id = mlclient.create_experiment(_name("runs"))
    run = mlclient.create_run(exp_id, tags={"k": "v"})
    rid = run.info.run_id
    # a generated name, mirrored in the mlflow.runName system tag
    assert run.info.run_name and run.data.tags["mlflow.runName"] == run.info.run_name
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{rid}/artifacts"
    assert run.info.lifecycle_stage == "active" and run.info.status == "RUNNING"
    mlclient.log_metric(rid, "loss", 0.5, step=1, timestamp=1000)
    mlclient.log_param(rid, "lr", "0.1")
    mlclient.set_tag(rid, "t", "1")
    mlclient.set_tag(rid, "t", "2")  # last write wins
    mlclient.log_batch(rid, metrics=[Metric("acc", 0.9, 2000, 3)],
                       params=[Param("layers", "3")], tags=[RunTag("u", "x")])
    mlclient.delete_tag(rid, "u")
    with pytest.raises(MlflowException) as ei:
        mlclient.delete_tag(rid, "never-set")
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as ei:
        mlclient.log_param(rid, "lr", "0.2")  # params are immutable
    assert _code(ei) == "INVALID_PARAMETER_VALUE"
    mlclient.log_param(rid, "lr", "0.1")  # the same value again is fine
    mlclient.update_run(rid, name="renamed")
    mlclient.set_terminated(rid, "FINISHED", end_time=5000)
    got = mlclient.get_run(rid)
    assert got.info.status == "FINISHED" and got.info.end_time == 5000
    assert got.info.run_name == "renamed" and got.data.tags["mlflow.runName"] == "renamed"
    assert got.data.params == {"lr": "0.1", "layers": "3"}
    assert got.data.metrics == {"loss": 0.5, "acc": 0.9}
    assert got.data.tags["t"] == "2" and "u" not in got.data.tags and got.data.tags["k"] == "v"
    mlclient.delete_run(rid)
    assert mlclient.get_run(rid).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as ei:
        mlclient.log_metric(rid, "loss", 1.0)
    assert _code(ei) == "INVALID_PARAMETER_VALUE"
    mlclient.restore_run(rid)
    assert mlclient.get_run(rid).info.lifecycle_stage == "active"
    with pytest.raises(MlflowException) as ei:
        mlclient.get_run("0" * 32)
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as ei:
        mlclient.create_run("424242424")
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"


def test_log_batch_limits_and_partial_failure(mlclient, mf_live):
    rid = mlclient.create_run("0").info.run_id
    # the mlflow client splits big batches itself, so the limits are checked over raw REST
    url = f"{mf_live.uri}/api/2.0/mlflow/runs/log-batch"
    kv = [{"key": f"k{i}", "value": "v"} for i in range(101)]
    pts = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    for body in ({"params": kv}, {"tags": kv}, {"metrics": pts},
                 {"metrics": pts[:900], "params": kv[:100], "tags": kv[:10]}):
        r = requests.post(url, json={"run_id": rid, **body}, timeout=30)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert mlclient.get_run(rid).data.params == {}
    mlclient.log_batch(rid, params=[Param(f"p{i}", "v") for i in range(100)],
                       metrics=[Metric("m", float(i), 1, i) for i in range(900)])
    mlclient.log_param(rid, "fixed", "a")
    # a conflicting param fails the whole request: its tags and metrics are not stored
    with pytest.raises(MlflowException):
        mlclient.log_batch(rid, params=[Param("fixed", "b")], tags=[RunTag("side", "1")],
                           metrics=[Metric("side", 1.0, 1, 0)])
    got = mlclient.get_run(rid)
    assert "side" not in got.data.tags and "side" not in got.data.metrics
    assert len(got.data.params) == 101
    assert len(mlclient.get_metric_history(rid, "m")) == 900


def test_metric_history_nan_inf_paging_and_bulk_interval(mlclient, mf_live):
    rid = mlclient.create_run("0").info.run_id
    weird = [float("nan"), float("inf"), float("-inf"), 1.5]
    mlclient.log_batch(rid, metrics=[Metric("w", v, 1000 + i, i) for i, v in enumerate(weird)]
                       + [Metric("long", float(s), 10 + s, s) for s in range(300)])
    hist = mlclient.get_metric_history(rid, "w")
    vals = [m.value for m in sorted(hist, key=lambda m: m.step)]
    assert math.isnan(vals[0]) and vals[1:] == [math.inf, -math.inf, 1.5]
    assert math.isnan(mlclient.get_run(rid).data.metrics["w"]) is False  # last step wins
    base = f"{mf_live.uri}/api/2.0/mlflow/metrics/get-history"
    steps, token = [], None
    while True:
        params = {"run_id": rid, "metric_key": "long", "max_results": 128}
        if token:
            params["page_token"] = token
        body = requests.get(base, params=params, timeout=30).json()
        steps += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert steps == list(range(300))
    bad = requests.get(base, params={"run_id": rid, "metric_key": "long", "max_results": -3},
                       timeout=30)
    assert bad.status_code == 400 and "got -3" in bad.json()["message"], bad.text
    other = mlclient.create_run("0").info.run_id
    mlclient.log_batch(other, metrics=[Metric("long", 1.0, 1, s) for s in range(0, 50, 5)])
    bulk = requests.get(f"{mf_live.uri}/api/2.0/mlflow/metrics/get-history-bulk-interval",
                        params={"run_ids": [rid, other], "metric_key": "long",
                                "max_results": 5}, timeout=30).json()["metrics"]
    mine = [m["step"] for m in bulk if m["run_id"] == rid]
    assert mine[0] == 0 and mine[-1] == 299 and len(mine) == 5
    assert [m["step"] for m in bulk if m["run_id"] == other] == [0, 10, 25, 35, 45] or \
        len([m for m in bulk if m["run_id"] == other]) == 5
    ranged = requests.get(f"{mf_live.uri}/api/2.0/mlflow/metrics/get-history-bulk-interval",
                          params={"run_ids": [rid], "metric_key": "long", "start_step": 10,
                                  "end_step": 20, "max_results": 100}, timeout=30).json()
    assert [m["step"] for m in ranged["metrics"]] == list(range(10, 21))


def test_search_runs_filter_order_paging(mlclient):
    exp_id = mlclient.create_experiment(_name("search"))
    ids = []
    for i in range(7):
        r = mlclient.create_run(exp_id, start_time=1000 + i, tags={"grp": "a" if i % 2 else "b"})
        mlclient.log_batch(r.info.run_id, metrics=[Metric("acc", i / 10, 1, 0)],
                           params=[Param("lr", str(i))])
        ids.append(r.info.run_id)
    got = mlclient.search_runs([exp_id], "metrics.acc > 0.25 AND tags.grp = 'a'",
                               order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in got] == [ids[5], ids[3]]
    assert [r.info.run_id for r in mlclient.search_runs([exp_id], "params.lr = '4'")] == [ids[4]]
    page1 = mlclient.search_runs([exp_id], max_results=3)
    assert [r.info.run_id for r in page1] == ids[::-1][:3] and page1.token
    page2 = mlclient.search_runs([exp_id], max_results=3, page_token=page1.token)
    assert [r.info.run_id for r in page2] == ids[::-1][3:6]
    mlclient.delete_run(ids[0])
    assert ids[0] not in {r.info.run_id for r in mlclient.search_runs([exp_id])}
    deleted = mlclient.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [ids[0]]
    with pytest.raises(MlflowException) as ei:
        mlclient.search_runs([exp_id], "metrics.acc >>> 1")
    assert _code(ei) == "INVALID_PARAMETER_VALUE"


def test_registry_endpoints(mlclient):
    rid = mlclient.create_run("0").info.run_id
    name = _name("model")
    rm = mlclient.create_registered_model(name, tags={"o": "1"}, description="d")
    assert rm.name == name and rm.description == "d" and rm.tags == {"o": "1"}
    with pytest.raises(MlflowException) as ei:
        mlclient.create_registered_model(name)
    assert _code(ei) == "RESOURCE_ALREADY_EXISTS"
    src = f"mlflow-artifacts:/0/{rid}/artifacts/model"
    v1 = mlclient.create_model_version(name, src, run_id=rid, tags={"a": "b"})
    v2 = mlclient.create_model_version(name, src, run_id=rid)
    assert (v1.version, v2.version, v1.status) == ("1", "2", "READY")
    mlclient.update_registered_model(name, description="new")
    mlclient.set_registered_model_tag(name, "x", "y")
    mlclient.delete_registered_model_tag(name, "o")
    assert mlclient.get_registered_model(name).tags == {"x": "y"}
    mlclient.update_model_version(name, "1", description="first")
    mlclient.set_model_version_tag(name, "1", "k", "v")
    mlclient.delete_model_version_tag(name, "1", "a")
    mv = mlclient.get_model_version(name, "1")
    assert mv.description == "first" and mv.tags == {"k": "v"} and mv.run_id == rid
    staged = mlclient.transition_model_version_stage(name, "1", "Staging")
    assert staged.current_stage == "Staging"
    latest = mlclient.get_latest_versions(name, stages=["Staging"])
    assert [v.version for v in latest] == ["1"]
    mlclient.set_registered_model_alias(name, "champion", "2")
    assert mlclient.get_model_version_by_alias(name, "champion").version == "2"
    assert mlclient.get_registered_model(name).aliases == {"champion": "2"}
    assert mlclient.get_model_version_download_uri(name, "1") == src
    found = mlclient.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in found) == ["1", "2"]
    assert [m.name for m in mlclient.search_registered_models(f"name = '{name}'")] == [name]
    mlclient.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as ei:
        mlclient.get_model_version_by_alias(name, "champion")
    assert _code(ei) == "INVALID_PARAMETER_VALUE"  # MLflow 3.17.2: a missing alias is 400
    mlclient.delete_model_version(name, "2")
    with pytest.raises(MlflowException) as ei:
        mlclient.get_model_version(name, "2")
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"
    mlclient.rename_registered_model(name, name + "-new")
    assert mlclient.get_registered_model(name + "-new").name == name + "-new"
    mlclient.delete_registered_model(name + "-new")
    with pytest.raises(MlflowException) as ei:
        mlclient.get_registered_model(name + "-new")
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"


def test_ajax_prefix_unknown_endpoints_and_errors(mf_live):
    s = requests.Session()
    r = s.get(f"{mf_live.uri}/ajax-api/2.0/mlflow/experiments/get",
              params={"experiment_id": "0"}, timeout=30)
    assert r.status_code == 200 and r.json()["experiment"]["name"] == "Default"
    r = s.post(f"{mf_live.uri}/api/2.0/mlflow/no-such/endpoint", json={}, timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    r = s.post(f"{mf_live.uri}/api/2.0/mlflow/runs/create", data=b"{not json", timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = s.get(f"{mf_live.uri}/api/2.0/mlflow/runs/get", timeout=30)
    assert r.status_code == 400 and "run_id" in r.json()["message"]
    t0 = time.time()
    r = s.post(f"{mf_live.uri}/api/2.0/mlflow/runs/search",
               json={"experiment_ids": ["0"], "max_results": 1}, timeout=30)
    assert r.status_code == 200 and time.time() - t0 < 10


def test_log_inputs_outputs_and_logged_models(mlclient):
    import mlflow
    from mlflow.entities import DatasetInput, LoggedModelStatus

    rid = mlclient.create_run("0").info.run_id
    ds = mlflow.data.from_dict({"x": [1, 2, 3]}, name="tiny") if hasattr(
        mlflow.data, "from_dict") else None
    if ds is None:
        import pandas as pd

        ds = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), name="tiny")
    mlclient.log_inputs(rid, [DatasetInput(ds._to_mlflow_entity(), tags=[])])
    run = mlclient.get_run(rid)
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["tiny"]
    model = mlclient.create_logged_model("0", name="lm", source_run_id=rid,
                                         params={"p": "1"}, tags={"t": "1"})
    assert model.model_id.startswith("m-") and model.status == LoggedModelStatus.PENDING
    mlclient.set_logged_model_tags(model.model_id, {"u": "2"})
    mlclient.delete_logged_model_tag(model.model_id, "t")
    done = mlclient.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert done.status == LoggedModelStatus.READY and done.tags == {"u": "2"}
    assert done.params == {"p": "1"}
    found = mlclient.search_logged_models(["0"], filter_string="name = 'lm'")
    assert model.model_id in {m.model_id for m in found}
    mlclient.log_outputs(rid, [mlflow.entities.LoggedModelOutput(model.model_id, 3)])
    assert mlclient.get_run(rid).outputs.model_outputs[0].model_id == model.model_id
    mlclient.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as ei:
        mlclient.get_logged_model(model.model_id)
    assert _code(ei) == "RESOURCE_DOES_NOT_EXIST"


def test_a_lone_surrogate_in_a_body_is_a_400_naming_where(mlclient, mf_live):
    """It reached the handlers and made 500s (a tag value, a search filter)."""
    rid = mlclient.create_run("0").info.run_id
    base = f"{mf_live.uri}/api/2.0/mlflow"
    for path, body, where in (
            ("runs/set-tag", '{"run_id": "' + rid + '", "key": "k", "value": "\\udfff"}',
             "body.value"),
            ("runs/search", '{"experiment_ids": ["0"], "filter": "tags.t = \'\\ud800\'"}',
             "body.filter"),
            ("experiments/create", '{"name": "x\\ud800"}', "body.name")):
        r = requests.post(f"{base}/{path}", data=body.encode(),
                          headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert where in r.json()["message"] and "surrogate" in r.json()["message"]
    mlclient.set_tag(rid, "k", "fine \U0001F600")  # a valid pair, escaped by json.dumps
    assert mlclient.get_run(rid).data.tags["k"] == "fine \U0001F600"


def test_a_log_batch_metric_that_is_not_an_object_is_named(mlclient, mf_live):
    rid = mlclient.create_run("0").info.run_id
    r = requests.post(f"{mf_live.uri}/api/2.0/mlflow/runs/log-batch",
                      json={"run_id": rid, "metrics": ["a", 1]}, timeout=30)
    assert r.status_code == 400, r.text
    assert "metrics[0] must be an object with a string 'key'" in r.json()["message"]


def test_list_artifacts_refuses_an_absolute_or_dotted_path_as_get_artifact_does(mlclient,
                                                                                mf_live):
    rid = mlclient.create_run("0").info.run_id
    mlclient.log_text(rid, "hello", "d/a.txt")
    url = f"{mf_live.uri}/api/2.0/mlflow/artifacts/list"
    for bad in ("/etc/passwd", "d/../..", "\\etc"):
        r = requests.get(url, params={"run_id": rid, "path": bad}, timeout=30)
        assert r.status_code == 400 and "Invalid path" in r.json()["message"], (bad, r.text)
    ok = requests.get(url, params={"run_id": rid, "path": "d/"}, timeout=30).json()
    assert [f["path"] for f in ok["files"]] == ["d/a.txt"]
    assert [f.path for f in mlclient.list_artifacts(rid)] == ["d"]
