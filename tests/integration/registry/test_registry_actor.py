"""With auth off, runs, model versions and the audit log name the same caller (issue 22 item 7).

The rule (`metricflow.auth._context.caller`): the authenticated user with auth on;
with auth off, the name the client sent, else the OS user running the server.
Before, runs showed the OS user while versions had `user_id=''` and the audit
log said `unknown`.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import metricflow as mf


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-actor")), grpc_port=0,
                       http_port=0, security=SecurityConfig(auth_mode="off"))
    with ServerThread(cfg) as srv:
        yield srv


def test_runs_versions_and_audit_name_the_same_caller_with_auth_off(server: Any) -> None:
    me = getpass.getuser()
    http = f"http://127.0.0.1:{server.server.http_port}"
    c = mf.Client(f"grpc://{server.target}", linger_ms=5)
    try:
        run = c.create_run(c.get_or_create_experiment("actor"))
        assert run.info.user_id == me
        c.registry.create_registered_model("actor-model")
        v1 = c.registry.create_model_version("actor-model", "s3://bucket/one")  # gRPC
        r = httpx.post(f"{http}/api/2.0/mlflow/model-versions/create", timeout=30,
                       json={"name": "actor-model", "source": "s3://bucket/two"})  # MLflow
        assert r.status_code == 200, r.text
        r3 = httpx.post(f"{http}/api/v1/model-versions/create", timeout=30,
                        json={"name": "actor-model", "source": "s3://bucket/three"})  # /api/v1
        assert r3.status_code == 200, r3.text
        httpx.post(f"{http}/api/2.0/mlflow/registered-models/set-tag", timeout=30,
                   json={"name": "actor-model", "key": "k", "value": "v"}).raise_for_status()
        assert v1.user_id == me
        assert r.json()["model_version"]["user_id"] == me
        assert r3.json()["model_version"]["user_id"] == me
        entries = c.registry.search_audit_log(model_name="actor-model")
        assert {e.action for e in entries} >= {"create_registered_model",
                                               "create_model_version"}
        assert {e.actor for e in entries} == {me}, [(e.action, e.actor) for e in entries]
    finally:
        c.close()


def test_a_claimed_actor_is_kept_with_auth_off(server: Any) -> None:
    # The documented way to name the caller without auth (the registry's header).
    http = f"http://127.0.0.1:{server.server.http_port}"
    httpx.post(f"{http}/api/v1/registered-models/create", json={"name": "claimed"},
               headers={"X-Metricflow-Actor": "ann"}, timeout=30).raise_for_status()
    r = httpx.post(f"{http}/api/v1/model-versions/create", timeout=30,
                   json={"name": "claimed", "source": "s3://bucket/x"},
                   headers={"X-Metricflow-Actor": "ann"})
    assert r.status_code == 200 and r.json()["model_version"]["user_id"] == "ann", r.text
