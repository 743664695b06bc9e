"""The HTTP guard decides on exactly the parameters the handler acts on.

Regression tests for the security review's findings 1, 2, 3 and 7: bodies the
guard skipped (chunked, or larger than it peeked), query/body/path precedence,
JSON nulls, `experiment_name` vs `name`, the DELETE alias name, repeated query
parameters, model URIs the guard parsed differently from the store, and policy
resolvers crashing on unexpected JSON types. bob attacks alice's resources;
every request here is answered 200 by a guard that merges parameters its own way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from metricflow._proto.metricflow.registry.v1 import registry_pb2 as rpb


@pytest.fixture(scope="module")
def world(secured: Any) -> Iterator[dict[str, Any]]:
    with secured.client("alice") as a, secured.client("bob") as b:
        w: dict[str, Any] = {}
        w["alice_exp"] = a.get_or_create_experiment("alice-secret")
        w["alice_run"] = a.create_run(w["alice_exp"]).info.run_id
        a.registry.create_registered_model("victim-model")
        a.registry.create_model_version("victim-model", "s3://bucket/secret-model")
        a.registry.set_registered_model_alias("victim-model", "prod", "1")
        w["bob_exp"] = b.get_or_create_experiment("bob-exp")
        w["bob_run"] = b.create_run(w["bob_exp"]).info.run_id
        b.registry.create_registered_model("bob-model")
        yield w


# bob holds no grant on alice's objects: they are answered as missing (404), the way
# every object a caller may not READ is (docs/security.md, existence oracles).


def _send(secured: Any, user: str, method: str, path: str, *, params: Any = None,
          body: Any = None, chunked: bool = False, raw: bytes | None = None) -> httpx.Response:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    content: Any = data
    if chunked and data is not None:
        content = iter([data[: len(data) // 2], data[len(data) // 2:]])
    headers = {**secured.headers(user), "content-type": "application/json"}
    return httpx.request(method, secured.http + path, params=params, content=content,
                         headers=headers, timeout=60)


def _bob_cannot_read_alice_exp(secured: Any, w: dict[str, Any]) -> None:
    r = secured.get("bob", "/api/v1/experiments/get", params={"experiment_id": w["alice_exp"]})
    assert r.status_code == 404, r.text


# ------------------------------------------------------------------ finding 1
def test_chunked_bodies_are_checked_not_skipped(secured: Any, world: dict[str, Any]) -> None:
    w = world
    r = _send(secured, "bob", "POST", "/api/v1/auth/permissions/experiments/set",
              params={"experiment_id": w["bob_exp"]}, chunked=True,
              body={"experiment_id": w["alice_exp"], "username": "bob", "permission": "MANAGE"})
    assert r.status_code == 404, r.text
    _bob_cannot_read_alice_exp(secured, w)

    r = _send(secured, "bob", "POST", "/api/v1/auth/tokens/create",
              params={"username": "bob"}, body={"username": "admin", "name": "x"}, chunked=True)
    assert r.status_code == 403, r.text

    for path, body in (("/api/v1/runs/compare", {"run_ids": [w["alice_run"]]}),
                       ("/api/v1/metrics/downsample", {"run_ids": [w["alice_run"]], "key": "k"}),
                       ("/api/v1/metrics/tail", {"run_ids": [w["alice_run"]]})):
        r = _send(secured, "bob", "POST", path, params={"run_ids": w["bob_run"]}, body=body,
                  chunked=True)
        assert r.status_code == 404, (path, r.text)

    r = _send(secured, "bob", "POST", "/api/2.0/mlflow/runs/log-batch",
              params={"run_id": w["bob_run"]}, chunked=True,
              body={"run_id": w["alice_run"], "params": [{"key": "pwned", "value": "1"}]})
    assert r.status_code == 404, r.text
    got = secured.get("alice", "/api/2.0/mlflow/runs/get", params={"run_id": w["alice_run"]})
    assert got.status_code == 200, got.text
    assert "pwned" not in got.text


def test_large_bodies_are_checked_and_oversized_ones_refused(secured: Any,
                                                               world: dict[str, Any]) -> None:
    body = json.dumps({"name": "victim-model", "key": "k", "value": "v"}).encode()
    # 9 MiB: more than the old guard peeked at, less than the limit -> checked: denied.
    padded = body + b" " * (9 * 1024 * 1024)
    for chunked in (False, True):
        r = _send(secured, "bob", "POST", "/api/v1/registered-models/set-tag",
                  params={"name": "bob-model"}, raw=padded, chunked=chunked)
        assert r.status_code == 404, r.text
    limit = secured.srv.server.config.security.auth.max_body_bytes
    assert len(padded) < limit
    # Above the limit: 413 naming the limit, whether or not a length was declared.
    over = body + b" " * limit
    for chunked in (False, True):
        r = _send(secured, "bob", "POST", "/api/v1/registered-models/set-tag",
                  params={"name": "bob-model"}, raw=over, chunked=chunked)
        assert r.status_code == 413, r.text
        assert str(limit) in r.json()["message"]
    # MLflow routes too, including methods the MLflow catch-all route also answers
    for method, path in (("POST", "/api/2.0/mlflow/registered-models/set-tag"),
                         ("PATCH", "/api/2.0/mlflow/registered-models/update")):
        r = _send(secured, "bob", method, path, raw=over, chunked=True)
        assert r.status_code == 413, (path, r.text)
    got = secured.get("alice", "/api/v1/registered-models/get", params={"name": "victim-model"})
    assert got.status_code == 200 and '"k"' not in got.text, got.text
    # The body reached the handler intact: a legitimate request still works.
    r = _send(secured, "bob", "POST", "/api/v1/registered-models/set-tag",
              body={"name": "bob-model", "key": "k", "value": "v"}, chunked=True)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ finding 2
def test_json_nulls_fall_back_as_the_mlflow_handler_reads_them(secured: Any,
                                                                 world: dict[str, Any]) -> None:
    w = world
    r = _send(secured, "bob", "POST", "/api/2.0/mlflow/runs/log-metric",
              params={"run_id": w["alice_run"]},
              body={"run_id": None, "run_uuid": w["bob_run"], "key": "pwned", "value": 1,
                    "timestamp": 1, "step": 0})
    assert r.status_code == 404, r.text
    r = _send(secured, "bob", "POST", "/api/2.0/mlflow/runs/create",
              params={"experiment_id": w["alice_exp"]}, body={"experiment_id": None})
    assert r.status_code == 404, r.text
    got = secured.get("alice", "/api/2.0/mlflow/runs/get", params={"run_id": w["alice_run"]})
    assert got.status_code == 200 and "pwned" not in got.text, got.text
    # The same request on bob's own run is allowed (the guard is not just refusing nulls).
    r = _send(secured, "bob", "POST", "/api/2.0/mlflow/runs/log-metric",
              params={"run_id": w["bob_run"]},
              body={"run_id": None, "key": "ok", "value": 1, "timestamp": 1, "step": 0})
    assert r.status_code == 200, r.text


def test_get_by_name_checks_the_name_the_handler_reads(secured: Any,
                                                        world: dict[str, Any]) -> None:
    for prefix in ("/api/v1", "/api/2.0/mlflow"):
        r = secured.get("bob", prefix + "/experiments/get-by-name",
                        params={"experiment_name": "alice-secret", "name": "bob-exp"})
        # Answered as for a missing name: MLflow 404, /api/v1 null (re-review item 3).
        if prefix == "/api/v1":
            assert (r.status_code, r.json()) == (200, {"experiment": None}), r.text
        else:
            assert r.status_code == 404, (prefix, r.text)
        r = secured.get("bob", prefix + "/experiments/get-by-name",
                        params={"experiment_name": "bob-exp"})
        assert r.status_code == 200, (prefix, r.text)


def test_delete_alias_checks_the_query_name_the_handler_uses(secured: Any,
                                                              world: dict[str, Any]) -> None:
    r = _send(secured, "bob", "DELETE", "/api/v1/registered-models/alias",
              params={"name": "victim-model", "alias": "prod"}, body={"name": "bob-model"})
    assert r.status_code == 404, r.text
    got = secured.get("alice", "/api/v1/registered-models/alias",
                      params={"name": "victim-model", "alias": "prod"})
    assert got.status_code == 200, got.text


def test_repeated_scalar_query_parameters_are_refused(secured: Any,
                                                       world: dict[str, Any]) -> None:
    w = world
    cases = [
        ("/api/v1/experiments/get", [("experiment_id", w["bob_exp"])] * 2),
        ("/api/v1/registered-models/get", [("name", "bob-model"), ("name", "victim-model")]),
        ("/api/2.0/mlflow/experiments/get", [("experiment_id", w["bob_exp"])] * 2),
        ("/api/2.0/mlflow/runs/get", [("run_id", w["bob_run"]), ("run_id", w["alice_run"])]),
    ]
    for path, params in cases:
        r = secured.get("bob", path, params=params)
        assert r.status_code == 400, (path, r.text)
        assert params[0][0] in r.json()["message"], r.text
    # one value is fine
    assert secured.get("bob", cases[0][0], params=[cases[0][1][0]]).status_code == 200


# ------------------------------------------------------------------ finding 3
def test_model_uri_resolve_checks_the_model_the_store_resolves(
        secured: Any, world: dict[str, Any], channel: grpc.Channel) -> None:
    for uri in ("models:/victim-model/1", "models://victim-model/1", "models:/victim-model@prod",
                "models:///victim-model/latest"):
        r = secured.get("bob", "/api/v1/model-versions/resolve", params={"model_uri": uri})
        assert r.status_code == 404, (uri, r.text)
    r = secured.get("alice", "/api/v1/model-versions/resolve",
                    params={"model_uri": "models://victim-model/1"})
    assert r.status_code == 200, r.text
    for uri in ("models:/", "runs:/abc/model", "victim-model/1"):
        r = secured.get("bob", "/api/v1/model-versions/resolve", params={"model_uri": uri})
        assert r.status_code == 400, (uri, r.text)
    resolve = channel.unary_unary("/metricflow.registry.v1.RegistryService/ResolveModelUri",
                                  rpb.ResolveModelUriRequest.SerializeToString,
                                  rpb.ResolveModelUriResponse.FromString)
    # bob has no READ on victim-model: it is answered as a missing model (NOT_FOUND).
    for uri, code in (("models://victim-model/1", grpc.StatusCode.NOT_FOUND),
                      ("models:/victim-model/1", grpc.StatusCode.NOT_FOUND),
                      ("nonsense", grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as e:
            resolve(rpb.ResolveModelUriRequest(model_uri=uri), metadata=secured.md("bob"),
                    timeout=30)
        assert e.value.code() == code, (uri, e.value.details())
    ok = resolve(rpb.ResolveModelUriRequest(model_uri="models://victim-model/1"),
                 metadata=secured.md("alice"), timeout=30)
    assert ok.model_version.name == "victim-model"


# ------------------------------------------------------------------ finding 7
def test_unexpected_json_types_are_400_not_500(secured: Any, world: dict[str, Any]) -> None:
    cases = [
        ("/api/2.0/mlflow/logged-models/search", {"experiment_ids": 5}),
        ("/api/v1/runs/compare", {"run_ids": 5}),
        ("/api/v1/metrics/downsample", {"run_ids": {"a": 1}, "key": "k"}),
        ("/api/2.0/mlflow/runs/log-metric", {"run_id": ["x"], "key": "k", "value": 1,
                                             "timestamp": 1, "step": 0}),
        ("/api/v1/auth/tokens/create", {"username": {"$ne": ""}}),
        ("/api/2.0/mlflow/runs/create", {"experiment_id": True}),
    ]
    for path, body in cases:
        r = secured.post("bob", path, body)
        assert r.status_code == 400, (path, r.status_code, r.text)


# ----------------------------------------------------------------- finding 11
def test_a_created_run_belongs_to_the_authenticated_caller(secured: Any,
                                                            world: dict[str, Any]) -> None:
    with secured.client("bob") as b:
        run = b.create_run(world["bob_exp"], user_id="admin")
        assert run.info.user_id == "bob"
        assert b.get_run(run.info.run_id).info.user_id == "bob"
    r = secured.post("bob", "/api/2.0/mlflow/runs/create",
                     {"experiment_id": world["bob_exp"], "user_id": "admin"})
    assert r.status_code == 200, r.text
    assert r.json()["run"]["info"]["user_id"] == "bob"
    got = secured.get("bob", "/api/2.0/mlflow/runs/get",
                      params={"run_id": r.json()["run"]["info"]["run_id"]})
    assert got.json()["run"]["info"]["user_id"] == "bob", got.text
