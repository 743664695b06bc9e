"""Unknown paths answer the project's JSON error shape on every HTTP port, naming the
role that serves them where known; `/` on each port says the truth about it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(300)
QUERY_ELSEWHERE = ("the web UI and the query API (/api/v1 search, history, downsample, tail; "
                   "the MLflow REST API; their /docs) are served by the query role's HTTP port "
                   "(`metricflow query`, or `metricflow writer --serve-query`)")


class Role:
    def __init__(self, args: list[str], log: Path) -> None:
        self._log = open(log, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "metricflow.server.cli", *args, "--grpc-port", "0",
             "--http-port", "0", "--no-uvloop"],
            stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"{args[0]} exited: {log.read_text()}"
        self.base = f"http://127.0.0.1:{json.loads(line)['http_port']}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._log.close()


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str,
          kafka_topic_prefix: str) -> Iterator[dict[str, Role]]:
    tmp = tmp_path_factory.mktemp("roles404")
    md = ["--metadata", f"sqlite:///{tmp}/metadata.db"]
    kafka = ["--kafka", kafka_bootstrap, "--topic",
             f"{kafka_topic_prefix}.notfound.{uuid.uuid4().hex[:8]}"]
    started: dict[str, Role] = {}
    try:
        started["registry"] = Role(["registry", *md], tmp / "registry.log")
        started["ingest"] = Role(["ingest", *md, *kafka], tmp / "ingest.log")
        started["writer"] = Role(["writer", *kafka, "--group", f"g-{uuid.uuid4().hex[:8]}",
                                  "--clickhouse", f"chdb://{tmp}/ch"], tmp / "writer.log")
        yield started
    finally:
        for r in started.values():
            r.stop()


def error(resp: httpx.Response) -> str:
    assert resp.status_code == 404, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == "ENDPOINT_NOT_FOUND"
    return str(body["message"])


def test_embedded_server_unknown_path(embedded_server) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{embedded_server.server.http_port}"
    assert error(httpx.get(base + "/nope")) == ("no endpoint GET /nope on this server; `/` "
                                                "lists what this port serves")
    assert error(httpx.post(base + "/api/v1/nope")) == (
        "no endpoint POST /api/v1/nope on this server; `/` lists what this port serves")
    # A route's own 404 (a missing object) keeps its own code.
    r = httpx.get(base + "/api/v1/runs/" + "0" * 32)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert httpx.get(base + "/").json()["ui"] == (
        "web UI: open / in a browser; or use /docs, /api/v1 or the mlflow client")


def test_registry_role(roles: dict[str, Role]) -> None:
    base = roles["registry"].base
    assert error(httpx.post(base + "/api/2.0/mlflow/runs/search", json={})) == (
        f"/api/2.0/mlflow/runs/search is not served by the registry role's HTTP port; "
        f"{QUERY_ELSEWHERE}")
    assert error(httpx.post(base + "/api/v1/runs/search", json={})) == (
        f"/api/v1/runs/search is not served by the registry role's HTTP port; "
        f"{QUERY_ELSEWHERE}")
    for path in ("/api/2.0/mlflow-artifacts/artifacts/x", "/api/3.0/mlflow/traces/x"):
        assert error(httpx.get(base + path)) == (
            f"{path} is not served by the registry role's HTTP port; {QUERY_ELSEWHERE}")
    assert error(httpx.get(base + "/nope")) == (
        "no endpoint GET /nope on the registry role's HTTP port; `/` lists what this port "
        "serves")
    assert httpx.get(base + "/docs").status_code == 200  # its own API's docs
    assert httpx.get(base + "/").json()["ui"] == (
        "no web UI on this port; it serves /docs and /api/v1 (experiments and the model "
        f"registry): {QUERY_ELSEWHERE}")


@pytest.mark.parametrize("role", ["ingest", "writer"])
def test_ops_ports(roles: dict[str, Role], role: str) -> None:
    base = roles[role].base
    doc = httpx.get(base + "/").json()
    assert doc["ui"] == f"no web UI on this port; it serves ops endpoints only: {QUERY_ELSEWHERE}"
    assert "docs" not in doc["http"] and "api_v1" not in doc["http"]
    assert error(httpx.get(base + "/docs")) == (
        f"/docs is not served by the {role} role's HTTP port; {QUERY_ELSEWHERE}")
    assert error(httpx.get(base + "/nope")) == (
        f"no endpoint GET /nope on the {role} role's HTTP port; `/` lists what this port "
        "serves")
    assert "is not served by the" in error(httpx.get(base + "/api/v1/runs/x"))
