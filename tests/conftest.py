"""Shared fixtures. Services (Kafka, PostgreSQL, S3) come from metricflow.devservices."""

from __future__ import annotations

import pytest

pytest_plugins = ["metricflow.devservices.pytest_plugin"]


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
