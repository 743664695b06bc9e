"""MLflow 3.17.2 behaviours measured against a real `mlflow server` and pinned here:

1. a metric logged with `model_id`/`dataset_name`/`dataset_digest` keeps those fields
   on the logged model's copy only; the run's own metrics (runs/get, get-history,
   search, bulk-interval) are plain (key, value, timestamp, step), as MLflow answers;
2. runs/search filters on `datasets.name|digest|context` (a run matches when any of
   its dataset inputs does) and on `attributes.artifact_uri` (the URI the API shows);
3. run names and registered-model names: MLflow's limits and message shape.
"""

from __future__ import annotations

import uuid

import pytest
import requests

API = "/api/2.0/mlflow/"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _post(uri: str, path: str, body: dict) -> requests.Response:
    return requests.post(uri + API + path, json=body, timeout=30)


def _get(uri: str, path: str, params: dict) -> requests.Response:
    return requests.get(uri + API + path, params=params, timeout=30)


# ------------------------------------------------ 1. model/dataset fields of metrics
def test_model_metric_fields_stay_on_the_logged_model(mlclient, tracking):
    exp = mlclient.create_experiment(_name("mm"))
    rid = mlclient.create_run(exp).info.run_id
    mid = mlclient.create_logged_model(exp, name="m").model_id
    r = _post(tracking, "runs/log-metric", {
        "run_id": rid, "key": "acc", "value": 0.5, "timestamp": 1000, "step": 1,
        "model_id": mid, "dataset_name": "ds", "dataset_digest": "abc"})
    assert r.status_code == 200, r.text
    r = _post(tracking, "runs/log-batch", {"run_id": rid, "metrics": [
        {"key": "loss", "value": 0.25, "timestamp": 1000, "step": 2, "model_id": mid,
         "dataset_name": "ds2", "dataset_digest": "d2"},
        {"key": "plain", "value": 1, "timestamp": 5, "step": 0}]})
    assert r.status_code == 200, r.text

    plain = {"acc": {"key": "acc", "value": 0.5, "timestamp": 1000, "step": 1},
             "loss": {"key": "loss", "value": 0.25, "timestamp": 1000, "step": 2},
             "plain": {"key": "plain", "value": 1.0, "timestamp": 5, "step": 0}}
    run = _get(tracking, "runs/get", {"run_id": rid}).json()["run"]
    assert {m["key"]: m for m in run["data"]["metrics"]} == plain
    found = _post(tracking, "runs/search", {"experiment_ids": [exp]}).json()["runs"]
    assert {m["key"]: m for m in found[0]["data"]["metrics"]} == plain
    for key in ("acc", "loss"):
        hist = _get(tracking, "metrics/get-history", {"run_id": rid, "metric_key": key})
        assert hist.json() == {"metrics": [plain[key]]}
    bulk = _get(tracking, "metrics/get-history-bulk-interval",
                {"run_ids": [rid], "metric_key": "acc"}).json()
    assert bulk == {"metrics": [{**plain["acc"], "run_id": rid}]}

    model = _get(tracking, f"logged-models/{mid}", {}).json()["model"]
    assert sorted(model["data"]["metrics"], key=lambda m: m["key"]) == [
        {**plain["acc"], "dataset_name": "ds", "dataset_digest": "abc", "model_id": mid,
         "run_id": rid},
        {**plain["loss"], "dataset_name": "ds2", "dataset_digest": "d2", "model_id": mid,
         "run_id": rid}]


# -------------------------------------------------------- 2. datasets.* filters
def _log_inputs(mlclient, rid: str, *inputs: tuple[str, str, str | None]) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    mlclient.log_inputs(rid, [
        DatasetInput(Dataset(name=n, digest=d, source_type="local", source="x"),
                     [InputTag("mlflow.data.context", ctx)] if ctx else [])
        for n, d, ctx in inputs])


def test_search_runs_by_dataset_name_digest_and_context(mlclient, tracking):
    exp = mlclient.create_experiment(_name("ds"))
    a, b, c, d = (mlclient.create_run(exp, run_name=n).info.run_id for n in "abcd")
    _log_inputs(mlclient, a, ("iris", "d1", "train"), ("Wine", "d2", "eval"))
    _log_inputs(mlclient, b, ("iris", "d3", "eval"))
    _log_inputs(mlclient, c, ("mnist", "d4", None))  # an input without a context tag
    mlclient.log_param(d, "p", "1")  # d has no inputs at all
    mlclient.log_metric(c, "acc", 0.9)
    other = mlclient.create_experiment(_name("ds-other"))
    e = mlclient.create_run(other).info.run_id
    _log_inputs(mlclient, e, ("iris", "d1", "train"))  # same dataset, other experiment

    def ids(f: str) -> set[str]:
        return {r.info.run_id for r in mlclient.search_runs([exp], f)}

    assert ids("datasets.name = 'iris'") == {a, b}
    assert ids("dataset.name = 'iris'") == {a, b}  # MLflow's singular prefix
    assert ids("datasets.digest = 'd1'") == {a}
    assert ids("datasets.digest IN ('d3', 'd4')") == {b, c}
    assert ids("datasets.context = 'train'") == {a}
    assert ids("datasets.context = 'eval'") == {a, b}
    # any input: a has Wine besides iris; d (no inputs) never matches a dataset clause
    assert ids("datasets.name != 'iris'") == {a, c}
    assert ids("datasets.name NOT IN ('iris', 'mnist')") == {a}
    # c's input has no context tag: no context to compare
    assert ids("datasets.context != 'train'") == {a, b}
    assert ids("datasets.name LIKE 'ir%'") == {a, b}
    assert ids("datasets.name LIKE 'wine'") == set()  # LIKE is case-sensitive
    assert ids("datasets.name ILIKE 'wine'") == {a}
    assert ids("datasets.name LIKE '_ris'") == {a, b}
    # combined with other fields, AND/OR and parentheses keep their meaning
    assert ids("datasets.name = 'iris' AND datasets.context = 'eval'") == {a, b}
    assert ids("datasets.name = 'mnist' OR params.p = '1'") == {c, d}
    assert ids("(datasets.name = 'nothing' OR metrics.acc > 0.5) AND "
               "attributes.run_name = 'c'") == {c}
    assert ids("datasets.name = 'nothing'") == set()
    assert {r.info.run_id for r in mlclient.search_runs([exp, other],
                                                        "datasets.digest = 'd1'")} == {a, e}
    # paging through a dataset filter
    page1 = mlclient.search_runs([exp], "datasets.name = 'iris'", max_results=1)
    page2 = mlclient.search_runs([exp], "datasets.name = 'iris'", max_results=1,
                                 page_token=page1.token)
    assert {page1[0].info.run_id, page2[0].info.run_id} == {a, b}


@pytest.mark.parametrize(("flt", "words"), [
    ("datasets.source = 'x'", ["unknown dataset field 'source'", "name, digest, context"]),
    ("datasets.name IS NULL", ["IS NULL is only supported"]),
    ("datasets.name > 'a'", ["operator > is not allowed for datasets.name"]),
    ("datasets.name = 3", ["compares with a quoted string"]),
    ("attributes.artifact_uri IN ('a')", ["IN is only allowed", "artifact_uri"]),
])
def test_bad_dataset_and_artifact_uri_filters_are_400_naming_them(tracking, flt, words):
    r = _post(tracking, "runs/search", {"experiment_ids": ["0"], "filter": flt})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    for w in words:
        assert w in body["message"], body["message"]


# ------------------------------------------------- 2b. attributes.artifact_uri
def test_search_runs_by_artifact_uri(mlclient, tracking):
    exp = mlclient.create_experiment(_name("au"))
    a, b = (mlclient.create_run(exp).info.run_id for _ in range(2))
    s3 = mlclient.create_experiment(_name("au-s3"), artifact_location="s3://bucket/runs")
    c = mlclient.create_run(s3).info.run_id
    uri_a = mlclient.get_run(a).info.artifact_uri
    assert uri_a == f"mlflow-artifacts:/{exp}/{a}/artifacts"
    assert mlclient.get_run(c).info.artifact_uri == f"s3://bucket/runs/{c}/artifacts"

    def ids(f: str, exps: list[str] = [exp, s3]) -> set[str]:  # noqa: B006
        return {r.info.run_id for r in mlclient.search_runs(exps, f)}

    assert ids(f"attributes.artifact_uri = '{uri_a}'") == {a}
    assert ids(f"artifact_uri = '{uri_a}'") == {a}  # no prefix: an attribute
    assert ids(f"attributes.artifact_uri != '{uri_a}'") == {b, c}
    assert ids(f"attributes.artifact_uri LIKE 'mlflow-artifacts:/{exp}/%'") == {a, b}
    assert ids("attributes.artifact_uri LIKE 's3://bucket/%'") == {c}
    assert ids("attributes.artifact_uri ILIKE 'S3://BUCKET/%'") == {c}
    assert ids("attributes.artifact_uri LIKE 'S3://%'") == set()
    assert ids(f"attributes.artifact_uri LIKE '%{b}%' OR attributes.artifact_uri = "
               f"'s3://bucket/runs/{c}/artifacts'") == {b, c}
    assert ids("attributes.artifact_uri = 'mlflow-artifacts:/nope'") == set()


# ----------------------------------------------- 3. run and registered-model names
def _length_error(r: requests.Response, field: str, limit: int, received: int) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"] == (f"'{field}' exceeds the maximum length of {limit} "
                               f"characters (received {received})")


def test_run_names_up_to_250_characters(mlclient, tracking):
    """MLflow 3.17.2 on PostgreSQL (measured): a 250-character run name is stored, 251
    is 400 from every route that names a run; nothing is written by a refused call."""
    exp = mlclient.create_experiment(_name("rn"))
    ok = "n" * 250
    run = _post(tracking, "runs/create", {"experiment_id": exp, "run_name": ok}).json()["run"]
    rid = run["info"]["run_id"]
    got = mlclient.get_run(rid)
    assert got.info.run_name == ok and got.data.tags["mlflow.runName"] == ok
    long = "x" * 251
    _length_error(_post(tracking, "runs/create", {"experiment_id": exp, "run_name": long}),
                  "run_name", 250, 251)
    _length_error(_post(tracking, "runs/create", {
        "experiment_id": exp, "tags": [{"key": "mlflow.runName", "value": long}]}),
        "tags.mlflow.runName", 250, 251)
    _length_error(_post(tracking, "runs/update", {"run_id": rid, "run_name": long}),
                  "run_name", 250, 251)
    _length_error(_post(tracking, "runs/set-tag",
                        {"run_id": rid, "key": "mlflow.runName", "value": long}),
                  "value", 250, 251)
    _length_error(_post(tracking, "runs/log-batch", {
        "run_id": rid, "tags": [{"key": "mlflow.runName", "value": long}, {"key": "t",
                                                                            "value": "1"}]}),
        "tags.mlflow.runName", 250, 251)
    got = mlclient.get_run(rid)  # the refused calls changed nothing
    assert got.info.run_name == ok and got.data.tags["mlflow.runName"] == ok
    assert "t" not in got.data.tags
    assert [r.info.run_id for r in mlclient.search_runs([exp])] == [rid]
    # other tags stay as long as MLflow allows (8000, longer ones are cut)
    mlclient.set_tag(rid, "long", "v" * 9000)
    assert mlclient.get_run(rid).data.tags["long"] == "v" * 8000


def test_registered_model_names_up_to_256_characters(mlclient, tracking):
    """MLflow 3.17.2 on PostgreSQL (measured): 256 characters is a name, 257 is 400,
    on create and on rename."""
    ok = uuid.uuid4().hex + "m" * 224
    assert len(ok) == 256
    rm = _post(tracking, "registered-models/create", {"name": ok})
    assert rm.status_code == 200 and rm.json()["registered_model"]["name"] == ok
    assert mlclient.create_model_version(ok, "s3://b/x").version == "1"
    _length_error(_post(tracking, "registered-models/create", {"name": ok + "x"}),
                  "name", 256, 257)
    _length_error(_post(tracking, "registered-models/rename",
                        {"name": ok, "new_name": ok + "x"}), "new_name", 256, 257)
    assert mlclient.get_registered_model(ok).name == ok
    assert _get(tracking, "registered-models/get", {"name": ok + "x"}).status_code == 404
