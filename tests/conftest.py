"""Shared fixtures. Services (Kafka, PostgreSQL, S3) come from metricflow.devservices."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

pytest_plugins = ["metricflow.devservices.pytest_plugin"]


@pytest.fixture(autouse=True, scope="module")
def _mlflow_process_state() -> Iterator[None]:
    """Leave no MLflow process state to the next test module: `mlflow.set_experiment()`
    sets MLFLOW_EXPERIMENT_ID in os.environ (for subprocesses) beside its own globals, and
    an active run outlives the module's server. pytest-xdist runs modules of every
    directory one after another in a worker, so a later module saw an experiment id of
    another module's server (and `mlflow run` refused both an id and a name)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for k in [k for k in os.environ if k.startswith("MLFLOW_") and k not in saved]:
        del os.environ[k]
    os.environ.update(saved)
    # the in-process copies too (set_tracking_uri / set_registry_uri keep a global beside
    # the variable), so that in-process calls and subprocesses agree
    for mod, name in (("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
                      ("mlflow.tracking._model_registry.utils", "_registry_uri"),
                      ("mlflow.tracking.fluent", "_active_experiment_id")):
        if mod in sys.modules and hasattr(sys.modules[mod], name):
            setattr(sys.modules[mod], name, None)
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_run_stack.set([])
        fluent._last_active_run_id.set(None)


@pytest.fixture(autouse=True, scope="module")
def _release_engines() -> Iterator[None]:
    """Collect the module's cyclic garbage before the next module starts: chDB binds a
    process to one directory while any engine handle lives, and a test that kept a
    server's components in a local past `ServerThread.stop()` (whose own collection then
    could not free them) left a cycle holding one. The next module on that worker failed
    to open its own directory (seen once in CI: test_composition_root.py, then
    test_embedded_health.py)."""
    yield
    import gc

    gc.collect()


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory):
    """A full embedded server (chDB, SQLite, local files) in a background thread."""
    from metricflow.app import ServerConfig, ServerThread

    data_dir = tmp_path_factory.mktemp("mf-data")
    with ServerThread(ServerConfig(data_dir=str(data_dir), grpc_port=0, http_port=0,
                                   **clickhouse_server_settings())) as srv:
        yield srv


def clickhouse_server_settings() -> dict[str, str]:
    """A real ClickHouse server when METRICFLOW_TEST_CLICKHOUSE_URL is set (fresh database
    per module); otherwise {} and the embedded chDB store is used."""
    import os
    import uuid

    url = os.environ.get("METRICFLOW_TEST_CLICKHOUSE_URL")
    if not url:
        return {}
    return {"clickhouse_dsn": url, "database": f"mftest_{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="module")
def client(embedded_server):
    import metricflow as mf

    c = mf.Client(f"grpc://{embedded_server.target}", linger_ms=10)
    yield c
    c.close()
