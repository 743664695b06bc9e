"""Data logged through MLflow is visible through metricflow's Client, and the other way round."""

from __future__ import annotations

import math

import pytest


@pytest.fixture()
def mfclient(mf_live):  # type: ignore[no-untyped-def]
    import metricflow as mf

    c = mf.Client(f"grpc://{mf_live.grpc_target}", linger_ms=5)
    yield c
    c.close()


def test_mlflow_writes_are_visible_to_metricflow(mlclient, mfclient, tmp_path):
    from mlflow.entities import Metric

    run = mlclient.create_run("0", run_name="from-mlflow", tags={"team": "ml"})
    rid = run.info.run_id
    mlclient.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1), 1000 + s, s)
                                     for s in range(50)] + [Metric("odd", math.inf, 7, 0)])
    mlclient.log_param(rid, "lr", "0.01")
    (tmp_path / "a.txt").write_text("artifact via mlflow")
    mlclient.log_artifact(rid, str(tmp_path / "a.txt"), "docs")
    mlclient.set_terminated(rid)
    got = mfclient.get_run(rid)
    assert got.info.run_name == "from-mlflow" and got.info.status == "FINISHED"
    assert got.params == {"lr": "0.01"} and got.tags["team"] == "ml"
    assert got.metrics["loss"].last_step == 49 and got.metrics["odd"].last_value == math.inf
    hist = mfclient.get_metric_history(rid, "loss")
    assert hist.steps.tolist() == list(range(50))
    assert [a.path for a in mfclient.list_artifacts(rid, "docs")] == ["docs/a.txt"]
    out = tmp_path / "dl"
    mfclient.download_artifacts(rid, "docs/a.txt", str(out))
    assert any(p.read_text() == "artifact via mlflow" for p in out.rglob("a.txt"))


def test_metricflow_writes_are_visible_to_mlflow(mlclient, mfclient, tmp_path):
    exp_id = mfclient.get_or_create_experiment("interop-from-metricflow")
    run = mfclient.create_run(exp_id, run_name="from-metricflow", tags={"k": "v"})
    rid = run.run_id
    for step in range(200):
        mfclient.log_metric(rid, "acc", step / 200, step=step)
    mfclient.log_params(rid, {"batch": 32})
    (tmp_path / "w.bin").write_bytes(b"\x00\x01" * 5000)
    mfclient.log_artifact(rid, str(tmp_path / "w.bin"), "ckpt")
    mfclient.set_terminated(rid, "FINISHED")
    got = mlclient.get_run(rid)
    assert got.info.run_name == "from-metricflow" and got.info.status == "FINISHED"
    assert got.data.params == {"batch": "32"} and got.data.tags["k"] == "v"
    assert got.data.metrics["acc"] == pytest.approx(199 / 200)
    assert got.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{rid}/artifacts"
    hist = mlclient.get_metric_history(rid, "acc")
    assert sorted(m.step for m in hist) == list(range(200))
    assert [(f.path, f.file_size) for f in mlclient.list_artifacts(rid, "ckpt")] == [
        ("ckpt/w.bin", 10_000)]
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="ckpt/w.bin",
                                                dst_path=str(tmp_path / "dl"),
                                                tracking_uri=mlclient.tracking_uri)
    with open(local, "rb") as f:
        assert f.read() == b"\x00\x01" * 5000
    found = mlclient.search_runs([exp_id], "metrics.acc > 0.9 AND params.batch = '32'")
    assert [r.info.run_id for r in found] == [rid]
