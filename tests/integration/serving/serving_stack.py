"""Real processes for the serving tests (fixtures `stack`, `serve`, and helpers).

A `metricflow server`, models registered through the official `mlflow` client,
deployments made through /api/v1, `metricflow serve` processes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loadtests._serve_procs import ServeProcess, start_serve
from loadtests._server import ServerProcess, start_server

for _k, _v in {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}.items():
    os.environ.setdefault(_k, _v)

RAISE_ALWAYS = """
import mlflow.pyfunc
from mlflow.models import set_model

class RaiseAlways(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this model always fails")

set_model(RaiseAlways())
"""

RAISE_ON_NEGATIVE = """
import mlflow.pyfunc
from mlflow.models import set_model

class RaiseOnNegative(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if (model_input.iloc[:, 0] < 0).any():
            raise ValueError("negative sepal length")
        return [7] * len(model_input)

set_model(RaiseOnNegative())
"""

FAIL_TO_LOAD = """
import mlflow.pyfunc
from mlflow.models import set_model

class FailToLoad(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        raise RuntimeError("this version cannot be loaded")

    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)

set_model(FailToLoad())
"""


@dataclass
class Stack:
    server: ServerProcess
    http: str
    tmp: str

    @property
    def grpc(self) -> str:
        return self.server.uri


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    tmp = tempfile.mkdtemp(prefix="mf-serving-")
    srv = start_server(os.path.join(tmp, "data"))
    http = f"http://127.0.0.1:{srv.http_port}"
    os.environ["MLFLOW_TRACKING_URI"] = http
    os.environ["MLFLOW_REGISTRY_URI"] = http
    import mlflow

    # An earlier test module may have called mlflow.set_tracking_uri / set_experiment
    # (process-wide settings that win over the environment): point mlflow at this stack.
    mlflow.set_tracking_uri(http)
    mlflow.set_registry_uri(http)
    mlflow.set_experiment(experiment_id="0")  # an earlier module's active experiment is not here
    try:
        yield Stack(srv, http, tmp)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


# Requirements named up front: without them every log_model infers them by loading the model
# in a subprocess (measured 4.7-7.2 s a model on an idle machine, against 0.2 s). `serve`
# loads models in its own environment and never installs them.
SKLEARN_REQS = ["mlflow", "scikit-learn"]


def register_sklearn(name: str, C: float) -> str:
    """Fit a logistic regression on iris, log and register it; the new version."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    m = LogisticRegression(max_iter=300, C=C).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(m, name="model", signature=infer_signature(X, y),
                                        registered_model_name=name, pip_requirements=SKLEARN_REQS)
    return str(info.registered_model_version)


def register_code_model(name: str, code: str, tmp: str) -> str:
    """Register a pyfunc model from code (it travels in the artifacts); the new version."""
    import mlflow
    from mlflow.models import infer_signature

    X, y = iris()
    path = os.path.join(tmp, f"model_{uuid.uuid4().hex[:8]}.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(code))
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=path,
                                       signature=infer_signature(X, y),
                                       registered_model_name=name, pip_requirements=["mlflow"])
    return str(info.registered_model_version)


def set_alias(name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, version)


def api(stack: Stack, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    import requests

    url = f"{stack.http}/api/v1/deployments/{path}"
    r = requests.post(url, json=body, timeout=30) if body is not None else \
        requests.get(url, timeout=30)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:500]}"
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def serve(stack: Stack) -> Iterator[Any]:
    """Start `metricflow serve` processes; all are stopped when the test ends."""
    procs: list[ServeProcess] = []

    def start(deployment: str, *extra: str) -> ServeProcess:
        p = start_serve(deployment, stack.http, stack.grpc, extra=list(extra),
                        log_dir=stack.tmp)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"

