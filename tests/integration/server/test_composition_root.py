"""The composition root: a role is a set of services, added in one line.

A read-only role (the query front without the MLflow API) is declared here in
one `Role(...)` line and started in-process on chDB and SQLite: it serves
queries and experiments, refuses ingest writes with the name of the role that
serves them, and reports what it serves on `/` and in its ready line.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

import metricflow as mf
from metricflow import app
from metricflow.app import ROLES, Role, ServerConfig, ServerThread
from metricflow.app._roles import HTTP_QUERY, HTTP_REGISTRY
from metricflow.errors import InvalidState
from metricflow.server._forward import QUERY, REGISTRY


def test_a_new_role_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = Role("reader", "read-only query front",
                  frozenset({QUERY, REGISTRY, HTTP_QUERY, HTTP_REGISTRY}), 0, 0)
    monkeypatch.setitem(ROLES, "reader", reader)
    cfg = ServerConfig(role="reader", grpc_port=0, http_port=0,
                       clickhouse_dsn=f"chdb://{tmp_path}/ch",
                       metadata_uri=f"sqlite:///{tmp_path}/metadata.db")
    assert app.services(cfg) == reader.services
    with ServerThread(cfg) as srv:
        c = srv.server.components
        assert c is not None
        assert c.sink is None and c.tracking is None and c.writer is None  # nothing to write
        assert c.artifacts is None  # no MLflow API, no artifact service: no store opened
        base = f"http://127.0.0.1:{srv.server.http_port}"
        index = json.loads(urllib.request.urlopen(base + "/").read())
        assert index["role"] == "reader"
        assert index["grpc"]["serves"] == ["query", "registry"]
        assert "api_v1" in index["http"] and "mlflow_rest" not in index["http"]
        client = mf.Client(f"grpc://{srv.target}", linger_ms=5)
        try:
            exp = client.get_or_create_experiment("composition-root")  # registry: served
            assert exp
            with pytest.raises(InvalidState) as ei:  # ingest: not served, named
                client.create_run(exp)
            assert "not served by this reader node" in str(ei.value)
            assert "metricflow ingest" in str(ei.value)
            runs, token = client.search_runs([exp])  # query: served
            assert runs == [] and not token
        finally:
            client.close()
        line = srv.server.ready_line()
        assert line["role"] == "reader" and line["serves"] == ["query", "registry"]


def test_the_embedded_server_builds_one_write_core_and_one_read_core(tmp_path: Path) -> None:
    cfg = ServerConfig(data_dir=str(tmp_path), grpc_port=0, http_port=-1)
    with ServerThread(cfg) as srv:
        c = srv.server.components
        assert c is not None and c.services == ROLES["server"].services
        assert c.tracking is not None and c.tracking.sink is c.sink
        assert c.query is not None and c.metadata_view is c.metadata  # auth off: unscoped
        assert c.artifact_root == f"file://{tmp_path}/artifacts"
        info = json.loads((tmp_path / "server.json").read_text())
        assert info["grpc_port"] == srv.server.grpc_port and info["http_port"] == 0
