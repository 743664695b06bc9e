"""Fixtures: a live metricflow server for the `mlflow` client, and a reference `mlflow server`.

Both are session-scoped (mlflow imports and server start-up are slow). The
reference server (SQLite backend, proxied artifacts, 127.0.0.1, free port)
starts on first use: starting it early to overlap other tests was tried, but
its start-up (migrations, worker processes) slowed those tests several-fold
on a 2-core machine. chDB allows one data directory per process, so every
metricflow-side test shares one embedded server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mlflow  # pinned in the dev extra; missing must fail, not skip
import pytest
import sklearn  # noqa: F401

# Quiet, fast-failing client: no telemetry, no 5-minute retry loops on a 500.
for _k, _v in {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}.items():
    os.environ.setdefault(_k, _v)


@dataclass
class Live:
    """A running server the mlflow client can talk to."""

    uri: str
    grpc_target: str = ""
    process: subprocess.Popen[bytes] | None = None
    server: Any = None
    """The EmbeddedServer (metricflow only), for server-side assertions."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class _Reference:
    """A real `mlflow server` subprocess, started early and awaited lazily."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="mlflow-ref-")
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "server", "--backend-store-uri", f"sqlite:///{self.dir}/mlflow.db",
             "--artifacts-destination", f"{self.dir}/artifacts", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)

    def wait(self, timeout: float = 120.0) -> Live:
        deadline = time.monotonic() + timeout
        while not _healthy(self.uri):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.flush()
                with open(os.path.join(self.dir, "server.log"), "rb") as f:
                    tail = f.read()[-3000:].decode(errors="replace")
                pytest.fail(f"reference mlflow server did not start:\n{tail}")
            time.sleep(0.25)
        return Live(self.uri, process=self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_reference: _Reference | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _reference is not None:
        _reference.stop()


def _start_metricflow(data_dir: str) -> object:
    from metricflow.app import ServerConfig, ServerThread
    from metricflow.ingest._direct import DirectSinkConfig

    # A short group-commit linger: MLflow clients make one synchronous call at a time.
    cfg = ServerConfig(data_dir=data_dir, grpc_port=0, http_port=0,
                       sink=DirectSinkConfig(linger_s=0.005))
    return ServerThread(cfg).start()


@pytest.fixture(scope="module")
def mf_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A metricflow server shared by one module's compatibility tests.

    Module scope, not session: chDB allows one data path per process at a time,
    and other suites in the same pytest process start servers of their own.
    """
    srv = _start_metricflow(str(tmp_path_factory.mktemp("mf-mlflow")))
    yield Live(f"http://127.0.0.1:{srv.server.http_port}", srv.target,  # type: ignore[attr-defined]
               server=srv.server)  # type: ignore[attr-defined]
    srv.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def reference() -> Live:
    """The reference `mlflow server` (skipped if it cannot be started here)."""
    global _reference
    if _reference is None:
        _reference = _Reference()
    return _reference.wait()


@pytest.fixture()
def tracking(mf_live: Live) -> Iterator[str]:
    """Point the fluent mlflow API at the shared metricflow server for one test."""

    mlflow.set_tracking_uri(mf_live.uri)
    mlflow.set_registry_uri(mf_live.uri)
    yield mf_live.uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture()
def mlclient(tracking: str):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking, registry_uri=tracking)
