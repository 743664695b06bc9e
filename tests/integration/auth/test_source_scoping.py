"""Model-version sources must not reach into what the creator cannot read (review finding 4).

carol owns experiment C (a run) and model `model-c` (version 1). alice owns
model B only. alice may not register, into B, a source that resolves into C
(`mlflow-artifacts:/<C>/<run>/artifacts/...`, `runs:/<run>/...`,
`models:/model-c/1`) through any front end (MLflow REST, /api/v1, gRPC), and
the refusal is the same for a source that does not exist. Her own run's
files are fine, and versions carry the creator's name.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from metricflow.errors import MetricflowError, PermissionDenied

_MV = "/api/2.0/mlflow/model-versions"


@pytest.fixture(scope="module")
def world(secured: Any) -> Any:
    c = secured.client("carol")
    exp_c = c.get_or_create_experiment("exp-c")
    run_c = c.create_run(exp_c).info.run_id
    c.registry.create_registered_model("model-c")
    c.registry.create_model_version("model-c", f"runs:/{run_c}/model")
    c.close()
    a = secured.client("alice")
    exp_a = a.get_or_create_experiment("exp-a")
    run_a = a.create_run(exp_a).info.run_id
    a.registry.create_registered_model("model-b")
    a.close()
    return {"exp_c": exp_c, "run_c": run_c, "exp_a": exp_a, "run_a": run_a}


def _into_c(w: dict[str, str]) -> list[str]:
    return [f"mlflow-artifacts:/{w['exp_c']}/{w['run_c']}/artifacts/model",
            f"runs:/{w['run_c']}/model", "models:/model-c/1", "models:/model-c@champion"]


def _missing() -> list[str]:
    ghost = uuid.uuid4().hex
    return [f"mlflow-artifacts:/424242/{ghost}/artifacts/model", f"runs:/{ghost}/model",
            "models:/no-such-model/1", f"models:/m-{ghost}"]


def _mlflow_create(secured: Any, user: str, source: str) -> Any:
    return secured.post(user, f"{_MV}/create", {"name": "model-b", "source": source})


def _refusal_text(message: str, source: str) -> str:
    return message.replace(repr(source[:300]), "<source>")


def test_mlflow_route_refuses_sources_into_another_experiment(secured: Any, world: Any) -> None:
    answers = set()
    for source in _into_c(world) + _missing():
        r = _mlflow_create(secured, "alice", source)
        assert r.status_code == 403, (source, r.text)
        body = r.json()
        assert body["error_code"] == "PERMISSION_DENIED", body
        answers.add(_refusal_text(body["message"], source))
    # One answer for "exists but unreadable" and "does not exist": no oracle on C.
    assert len(answers) == 1, answers
    assert "experiment" not in answers.pop()  # names no experiment
    # A run_id linking the version to C's run is refused the same way.
    r = secured.post("alice", f"{_MV}/create", {"name": "model-b", "source": "s3://b/model",
                                                "run_id": world["run_c"]})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text


def test_api_v1_refuses_sources_into_another_experiment(secured: Any, world: Any) -> None:
    answers = set()
    for source in _into_c(world) + _missing():
        r = secured.post("alice", "/api/v1/model-versions/create",
                         {"name": "model-b", "source": source})
        assert r.status_code == 403, (source, r.text)
        answers.add(_refusal_text(r.json()["message"], source))
    assert len(answers) == 1, answers


def test_grpc_refuses_sources_into_another_experiment(secured: Any, world: Any) -> None:
    a = secured.client("alice")
    answers = set()
    try:
        for source in _into_c(world) + _missing():
            with pytest.raises(MetricflowError) as ei:
                a.registry.create_model_version("model-b", source)
            assert isinstance(ei.value, PermissionDenied), (source, ei.value)
            answers.add(_refusal_text(ei.value.message, source))
    finally:
        a.close()
    assert len(answers) == 1, answers
    # Nothing was registered by the refused calls.
    versions = secured.get("admin", f"{_MV}/search?filter=name%3D%27model-b%27").json()
    assert not [v for v in versions.get("model_versions", [])
                if world["run_c"] in v["source"] or "model-c" in v["source"]]


def test_own_sources_work_and_versions_name_their_creator(secured: Any, world: Any) -> None:
    ok = [f"mlflow-artifacts:/{world['exp_a']}/{world['run_a']}/artifacts/model",
          "s3://outside-bucket/model"]  # storage outside the server: the reader's own fetch
    for source in ok:
        r = _mlflow_create(secured, "alice", source)
        assert r.status_code == 200, (source, r.text)
        assert r.json()["model_version"]["user_id"] == "alice"  # was '' on MLflow routes
    g = secured.client("alice")
    try:
        mv = g.registry.create_model_version("model-b", f"runs:/{world['run_a']}/model")
        assert mv.user_id == "alice"
    finally:
        g.close()
    # carol granted READ on C: alice may now point at it.
    secured.store.set_experiment_permission(world["exp_c"], "alice", "READ", actor="carol")
    try:
        r = _mlflow_create(secured, "alice", _into_c(world)[0])
        assert r.status_code == 200, r.text
    finally:
        secured.store.delete_experiment_permission(world["exp_c"], "alice", actor="carol")


def test_a_source_is_checked_again_for_the_reader(secured: Any, world: Any) -> None:
    # An admin (who reads everything) registers C's files in B; alice reads B but not C.
    r = _mlflow_create(secured, "admin", _into_c(world)[0])
    assert r.status_code == 200, r.text
    version = r.json()["model_version"]["version"]
    got = secured.get("alice", f"{_MV}/get-download-uri?name=model-b&version={version}")
    assert got.status_code == 403 and got.json()["error_code"] == "PERMISSION_DENIED", got.text
    assert f"experiment {world['exp_c']}" not in got.json()["message"]
    res = secured.get("alice", f"/api/v1/model-versions/resolve?model_uri=models:/model-b/"
                               f"{version}")
    assert res.status_code == 403, res.text
    a = secured.client("alice")
    try:
        with pytest.raises(MetricflowError) as ei:
            a.registry.resolve_model_uri(f"models:/model-b/{version}")
        assert isinstance(ei.value, PermissionDenied), ei.value
    finally:
        a.close()
    # The admin still resolves it.
    ok = secured.get("admin", f"{_MV}/get-download-uri?name=model-b&version={version}")
    assert ok.status_code == 200, ok.text


def test_raw_grpc_status_is_permission_denied(secured: Any, world: Any) -> None:
    from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb

    ch = grpc.insecure_channel(secured.target)
    try:
        fn = ch.unary_unary("/metricflow.registry.v1.RegistryService/CreateModelVersion",
                            request_serializer=pb.CreateModelVersionRequest.SerializeToString,
                            response_deserializer=pb.ModelVersion.FromString)
        with pytest.raises(grpc.RpcError) as ei:
            fn(pb.CreateModelVersionRequest(name="model-b", source="models:/model-c/1"),
               metadata=secured.md("alice"), timeout=30)
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        ch.close()
