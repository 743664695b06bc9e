"""METRICFLOW_TLS_CA: the fluent API trusts a private CA for grpcs:// tracking URIs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "_support"))  # certs
from certs import issue_pki

pytestmark = pytest.mark.timeout(180)
FLUENT = ("import metricflow as mf\n"
          "mf.set_experiment('tls-ca')\n"
          "with mf.start_run() as run:\n"
          "    mf.log_param('ca', 'private')\n"
          "print(mf.get_run(run.info.run_id).params['ca'])\n")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict]]:
    tmp = tmp_path_factory.mktemp("tlsca")
    pki = issue_pki(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "metricflow.server.cli", "server",
                             "--data-dir", str(tmp / "data"), "--grpc-port", "0",
                             "--http-port", "-1", "--tls-cert", str(pki["cert"]),
                             "--tls-key", str(pki["key"]), "--no-uvloop"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["grpc_port"], pki
    finally:
        proc.terminate()
        proc.wait(60)


def fluent(port: int, ca: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, METRICFLOW_TRACKING_URI=f"grpcs://127.0.0.1:{port}")
    env.pop("METRICFLOW_TLS_CA", None)
    env.pop("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", None)
    if ca is not None:
        env["METRICFLOW_TLS_CA"] = ca
    return subprocess.run([sys.executable, "-c", FLUENT], capture_output=True, text=True,
                          timeout=120, env=env)


def test_fluent_api_with_the_private_ca(tls_server: tuple[int, dict]) -> None:
    port, pki = tls_server
    res = fluent(port, str(pki["ca_file"]))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "private"


def test_without_it_the_system_roots_refuse_the_server(tls_server: tuple[int, dict]) -> None:
    port, _ = tls_server
    res = fluent(port, None)
    assert res.returncode != 0


def test_an_unreadable_ca_file_says_which_variable(tls_server: tuple[int, dict],
                                                   tmp_path: Path) -> None:
    port, _ = tls_server
    res = fluent(port, str(tmp_path / "missing.pem"))
    assert res.returncode != 0
    assert (f"METRICFLOW_TLS_CA={tmp_path / 'missing.pem'} cannot be read (No such file or "
            "directory); set it to the PEM file of the server's CA") in res.stderr, res.stderr
