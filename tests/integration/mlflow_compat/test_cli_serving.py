"""The official `mlflow` CLI against metricflow: `mlflow models serve` and `mlflow run`.

Both run as subprocesses with `--env-manager local` (this interpreter's packages)
and MLFLOW_TRACKING_URI pointing at the shared metricflow server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest


def _mlflow_exe() -> str:
    return shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"


def _env(uri: str) -> dict[str, str]:
    # --env-manager local runs `python`/`uvicorn` from PATH: this interpreter's first.
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
            "PATH": path}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_models_serve_by_alias(tracking, mlclient, tmp_path):
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    name = f"served-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run():
        # Named requirements: inferring them loads the model in a subprocess (~5 s);
        # `--env-manager local` never installs them.
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:2],
                                        pip_requirements=["mlflow", "scikit-learn"])
    mv = mlflow.register_model(info.model_uri, name)
    mlclient.set_registered_model_alias(name, "live", mv.version)

    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [_mlflow_exe(), "models", "serve", "-m", f"models:/{name}@live", "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=_env(tracking), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("mlflow models serve did not start:\n" +
                            (tmp_path / "serve.log").read_text()[-3000:])
            time.sleep(0.5)
        body = json.dumps({"dataframe_split": X.iloc[:10].to_dict(orient="split")}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            got = json.loads(r.read())["predictions"]
        np.testing.assert_array_equal(np.asarray(got), model.predict(X.iloc[:10]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_mlflow_run_of_a_local_project(tracking, mlclient, tmp_path):
    project = Path(tmp_path / "proj")
    project.mkdir()
    (project / "MLproject").write_text(textwrap.dedent("""\
        name: tiny
        entry_points:
          main:
            parameters:
              alpha: {type: float, default: 0.1}
            command: "python train.py --alpha {alpha}"
        """))
    (project / "train.py").write_text(textwrap.dedent("""\
        import argparse

        import mlflow

        p = argparse.ArgumentParser()
        p.add_argument("--alpha", type=float)
        a = p.parse_args()
        with mlflow.start_run():
            mlflow.log_metric("loss", 1.0 - a.alpha, step=1)
            mlflow.log_text("trained", "out/done.txt")
        """))
    exp_name = f"proj-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [_mlflow_exe(), "run", str(project), "--env-manager", "local", "-P", "alpha=0.25",
         "--experiment-name", exp_name],
        env=_env(tracking), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    exp = mlclient.get_experiment_by_name(exp_name)
    runs = mlclient.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "0.25"
    assert run.data.metrics["loss"] == pytest.approx(0.75)
    assert run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert [f.path for f in mlclient.list_artifacts(run.info.run_id, "out")] == ["out/done.txt"]
