"""MLflow's fluent API, sklearn autologging and model flavors against a metricflow server."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def iris():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def test_sklearn_autolog_on_iris(tracking, mlclient, iris):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    mlflow.set_experiment("autolog-iris")
    mlflow.sklearn.autolog(log_models=True, log_input_examples=False, silent=True)
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300, C=0.5).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = mlclient.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["C"] == "0.5" and got.data.params["max_iter"] == "300"
    assert got.data.metrics["training_accuracy_score"] > 0.9
    assert got.data.tags["estimator_class"].endswith("LogisticRegression")
    assert got.data.tags["mlflow.source.type"] == "LOCAL" and "mlflow.user" in got.data.tags
    assert got.inputs.dataset_inputs, "autolog records the training dataset"
    models = mlclient.search_logged_models([got.info.experiment_id])
    assert any(m.source_run_id == run.info.run_id for m in models)
    model_id = next(m.model_id for m in models if m.source_run_id == run.info.run_id)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert (loaded.predict(X.iloc[:5]) == y.iloc[:5].to_numpy()).mean() >= 0.8


def test_log_model_register_alias_load_and_predict(tracking, mlclient, iris):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    model = LogisticRegression(max_iter=400).fit(X, y)
    with mlflow.start_run(run_name="flavor"):
        mlflow.log_param("max_iter", 400)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:2])
    mv = mlflow.register_model(info.model_uri, "iris-tree")
    mlclient.set_registered_model_alias("iris-tree", "champion", mv.version)
    loaded = mlflow.pyfunc.load_model("models:/iris-tree@champion")
    np.testing.assert_array_equal(loaded.predict(X.iloc[:20]), model.predict(X.iloc[:20]))
    by_version = mlflow.sklearn.load_model(f"models:/iris-tree/{mv.version}")
    np.testing.assert_array_equal(by_version.predict(X), model.predict(X))
    lm = mlclient.get_logged_model(info.model_id)
    assert lm.status.to_proto() == 2 or str(lm.status).endswith("READY")
    assert "iris-tree" in lm.tags.get("mlflow.modelVersions", "")


def test_nested_runs_search_runs_dataframe_and_metric_history(tracking, mlclient):
    import mlflow

    mlflow.set_experiment("nested-df")
    with mlflow.start_run(run_name="parent") as parent:
        for i in range(3):
            with mlflow.start_run(run_name=f"child-{i}", nested=True):
                mlflow.log_param("i", i)
                for step in range(5):
                    mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
    exp_id = parent.info.experiment_id
    children = mlclient.search_runs(
        [exp_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.info.run_name for r in children) == ["child-0", "child-1", "child-2"]
    df = mlflow.search_runs([exp_id], order_by=["params.i ASC"])
    assert len(df) == 4
    for col in ("run_id", "status", "start_time", "metrics.loss", "params.i",
                "tags.mlflow.runName", "tags.mlflow.parentRunId"):
        assert col in df.columns
    kids = df[df["tags.mlflow.parentRunId"] == parent.info.run_id]
    assert sorted(kids["params.i"].tolist()) == ["0", "1", "2"]
    hist = mlclient.get_metric_history(children[0].info.run_id, "loss")
    assert [m.step for m in sorted(hist, key=lambda m: m.step)] == list(range(5))


def test_log_artifact_list_download_delete_and_dedup(tracking, mlclient, mf_live, tmp_path,
                                                      monkeypatch):
    import mlflow

    payload = np.random.default_rng(0).bytes(3 * 1024 * 1024)
    (tmp_path / "weights.bin").write_bytes(payload)
    (tmp_path / "notes.txt").write_text("hello")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifact(str(tmp_path / "weights.bin"), "ckpt")
        mlflow.log_text("x", "ckpt/sub/t.txt")
        mlflow.log_dict({"a": 1}, "cfg.json")
    rid = run.info.run_id
    top = mlclient.list_artifacts(rid)
    assert [(f.path, f.is_dir) for f in top] == [("cfg.json", False), ("ckpt", True),
                                                  ("notes.txt", False)]
    assert {f.path: f.file_size for f in mlclient.list_artifacts(rid, "ckpt")} == {
        "ckpt/sub": None, "ckpt/weights.bin": len(payload)}
    out = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="ckpt",
                                              dst_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "ckpt" / "weights.bin").read_bytes() == payload, out
    assert mlflow.artifacts.load_text(f"runs:/{rid}/ckpt/sub/t.txt") == "x"
    # the same bytes logged by a second run are stored once (content-addressed)
    store = mf_live.server.artifacts
    chunks_before = sum(1 for _ in store.iter_chunks())
    with mlflow.start_run() as run2:
        mlflow.log_artifact(str(tmp_path / "weights.bin"), "ckpt")
    assert sum(1 for _ in store.iter_chunks()) == chunks_before
    import requests

    listing = requests.get(f"{mf_live.uri}/api/2.0/mlflow/artifacts/list",
                           params={"run_id": run2.info.run_id, "path": "ckpt"}, timeout=30)
    assert listing.json()["files"] == [{"path": "ckpt/weights.bin", "is_dir": False,
                                        "file_size": len(payload)}]
    # multipart upload through the proxy (mpu/create, part PUTs, mpu/complete)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024 * 1024))
    with mlflow.start_run() as run3:
        mlflow.log_artifact(str(tmp_path / "weights.bin"), "mpu")
    mlflow.artifacts.download_artifacts(run_id=run3.info.run_id, artifact_path="mpu",
                                        dst_path=str(tmp_path / "dl3"))
    assert (tmp_path / "dl3" / "mpu" / "weights.bin").read_bytes() == payload
    # delete through the proxy
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(mlclient.get_run(rid).info.artifact_uri)
    repo.delete_artifacts("ckpt/sub")
    assert [f.path for f in mlclient.list_artifacts(rid, "ckpt")] == ["ckpt/weights.bin"]
