"""Shared fixtures. Services (Kafka, PostgreSQL, S3) come from metricflow.devservices."""

from __future__ import annotations

import pytest

pytest_plugins = ["metricflow.devservices.pytest_plugin"]


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory):
    """A full embedded server (chDB, SQLite, local files) in a background thread."""
    from metricflow.server._config import ServerConfig
    from metricflow.server._embedded import ServerThread

    data_dir = tmp_path_factory.mktemp("mf-data")
    with ServerThread(ServerConfig(data_dir=str(data_dir), grpc_port=0, http_port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(embedded_server):
    import metricflow as mf

    c = mf.Client(f"grpc://{embedded_server.target}", linger_ms=10)
    yield c
    c.close()
