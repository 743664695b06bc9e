"""`metricflow gc` keeps the files of MLflow 3 logged models (owners `m-<hex>`)."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import sklearn.datasets as sklearn_datasets

from metricflow.app import ServerConfig, ServerThread
from metricflow.ingest._direct import DirectSinkConfig


def _serve(data):
    return ServerThread(ServerConfig(data_dir=str(data), grpc_port=0, http_port=0,
                                     sink=DirectSinkConfig(linger_s=0.005))).start()


def _point_mlflow_at(srv) -> None:
    # Both URIs: other modules leave a registry URI of their own server behind.
    uri = f"http://127.0.0.1:{srv.server.http_port}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def test_gc_keeps_registered_logged_model(tmp_path):
    from sklearn.linear_model import LogisticRegression

    x, y = sklearn_datasets.load_iris(return_X_y=True)
    data = tmp_path / "data"
    srv = _serve(data)
    try:
        _point_mlflow_at(srv)
        mlflow.set_experiment("gc-kept")  # other modules leave an active experiment behind
        with mlflow.start_run():
            mlflow.sklearn.log_model(LogisticRegression(max_iter=500).fit(x, y), name="model",
                                     registered_model_name="gc-kept",
                                     pip_requirements=["scikit-learn"])  # no inference (~5 s)
        with mlflow.start_run() as doomed:
            mlflow.log_text("bye" * 100_000, "junk.txt")
        mlflow.MlflowClient().delete_run(doomed.info.run_id)
    finally:
        srv.stop()
    out = subprocess.run([sys.executable, "-m", "metricflow.server.cli", "gc", "--data-dir",
                          str(data), "--grace-period-hours", "0"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert '"bytes_freed": 0' not in out.stdout  # the deleted run's text was swept
    srv = _serve(data)
    try:
        _point_mlflow_at(srv)
        model = mlflow.pyfunc.load_model("models:/gc-kept/1")
        assert model.predict(x[:5]).tolist() == y[:5].tolist()
    finally:
        srv.stop()
