"""Follow-ups of the outside re-review of issue 13's fixes.

1. non-finite JSON numbers on /api/v1 (embedded server and the registry role):
   400 naming the field, never a 500 with a traceback;
2. JSON nested beyond MAX_JSON_DEPTH: 400 naming the limit on MLflow routes and
   /api/v1 alike, never 403 with a RecursionError traceback;
3. model-version sources: `..` (and encoded) segments are refused like an
   unreadable target; local filesystem sources are 400 on every front end;
4. MLflow param and tag values are JSON strings only (400 otherwise);
5. `/` and `/docs` are served, behind auth (docs/security.md).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from metricflow.auth._http_input import MAX_JSON_DEPTH
from metricflow.errors import InvalidArgument, MetricflowError, PermissionDenied

API = "/api/2.0/mlflow"
_MV = f"{API}/model-versions"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def loud(self) -> list[str]:
        """Records a bad request must not cause: warnings, errors, tracebacks."""
        return [f"{r.name}: {r.getMessage()[:200]}" for r in self.records
                if r.levelno >= logging.WARNING or r.exc_info]


@pytest.fixture
def server_log() -> Iterator[_Records]:
    h, root = _Records(), logging.getLogger()
    old = root.level
    root.addHandler(h)
    root.setLevel(logging.DEBUG)
    try:
        yield h
    finally:
        root.removeHandler(h)
        root.setLevel(old)


def _raw(secured: Any, user: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(secured.http + path, content=body, timeout=60,
                      headers={**secured.headers(user), "content-type": "application/json"})


def _is_400(r: httpx.Response, *needles: str) -> str:
    assert r.status_code == 400, r.text[:500]
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    for n in needles:
        assert n in body["message"], (n, body["message"])
    return str(body["message"])


@pytest.fixture(scope="module")
def world(secured: Any) -> dict[str, str]:
    """carol: experiment C with run RC and model-c; alice: EDIT on her experiment A and
    model-b, no grant on C; bob: no grant at all (a READ-less token)."""
    c = secured.client("carol")
    exp_c = c.get_or_create_experiment("fu-exp-c")
    run_c = c.create_run(exp_c).info.run_id
    c.close()
    a = secured.client("alice")
    exp_a = a.get_or_create_experiment("fu-exp-a")
    run_a = a.create_run(exp_a).info.run_id
    a.registry.create_registered_model("fu-model-b")
    a.close()
    root = secured.srv.server.config.artifact_root or secured.srv.server.config.data_dir
    return {"exp_c": exp_c, "run_c": run_c, "exp_a": exp_a, "run_a": run_a,
            "root": str(root).removeprefix("file://").rstrip("/")}


# ------------------------------------------------------- 1. non-finite numbers
NON_FINITE = [
    ("/api/v1/runs/search", b'{"max_results": NaN}', "max_results", "NaN"),
    ("/api/v1/runs/search", b'{"max_results": Infinity}', "max_results", "Infinity"),
    ("/api/v1/runs/search", b'{"max_results": -Infinity}', "max_results", "-Infinity"),
    ("/api/v1/runs/search", b'{"max_results": 1e400}', "max_results", "Infinity"),
    ("/api/v1/experiments/update", b'{"experiment_id": 1e400, "new_name": "x"}',
     "experiment_id", "Infinity"),
    ("/api/v1/experiments/create", b'{"name": 1e400}', "name", "Infinity"),
    ("/api/v1/registered-models/search", b'{"max_results": Infinity}', "max_results",
     "Infinity"),
]


@pytest.mark.parametrize("user", ["bob", "alice"])  # bob: a token without any grant
def test_non_finite_numbers_on_api_v1_are_400_naming_the_field(secured: Any, world: Any,
                                                               server_log: _Records,
                                                               user: str) -> None:
    for path, body, field, shown in NON_FINITE:
        r = _raw(secured, user, path, body)
        msg = _is_400(r, field)
        # Our handler says "Invalid value Infinity for parameter 'x': expected ..."; an id
        # the guard checks first is refused by the store's own rule ("... 'inf': ...").
        assert shown in msg or "'inf'" in msg or "'nan'" in msg, msg
    assert server_log.loud() == []


def test_validation_errors_keep_the_project_error_shape(secured: Any, world: Any) -> None:
    r = _raw(secured, "alice", "/api/v1/runs/search", b'{"max_results": "ten"}')
    _is_400(r, "'max_results'", '"ten"', "integer")
    r = _raw(secured, "alice", "/api/v1/metrics/downsample", b'{"key": "k"}')
    _is_400(r, "Missing value for required parameter 'run_ids'")
    r = _raw(secured, "alice", "/api/v1/runs/search", b'{"max_results": [NaN, 1]}')
    _is_400(r, "'max_results'", "array")
    r = _raw(secured, "alice", "/api/v1/runs/search", b'{"max_results": ')
    _is_400(r, "not valid JSON")


def _start_registry_role(tmp: Path) -> tuple[subprocess.Popen[str], int, str, Path]:
    from metricflow.auth._store import AuthStore
    from metricflow.store.metadata import open_metadata_store

    uri = f"sqlite:///{tmp}/meta.db"
    md = open_metadata_store(uri)
    try:
        store = AuthStore(md.engine)
        store.create_user("reader")
        token = store.create_token("reader")[1]
    finally:
        md.close()
    log = tmp / "registry.log"
    env = {**os.environ, "METRICFLOW_DATA_DIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "metricflow.server.cli", "registry", "--grpc-port", "0",
         "--http-port", "0", "--no-uvloop", "--auth", "on", "--metadata", uri,
         "--default-permission", "READ"],
        stdout=subprocess.PIPE, stderr=open(log, "ab"), env=env, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"registry exited: {log.read_text()[-2000:]}")
        if line.startswith("{") and json.loads(line).get("event") == "ready":
            return proc, int(json.loads(line)["http_port"]), token, log
    proc.kill()
    raise RuntimeError("registry role did not become ready")


def test_non_finite_numbers_on_the_registry_role(tmp_path: Path) -> None:
    proc, port, token, log = _start_registry_role(tmp_path)
    try:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        before = log.stat().st_size
        for path, body, field, _ in NON_FINITE:
            if not path.startswith(("/api/v1/experiments", "/api/v1/registered-models")):
                continue  # the registry role serves the control plane only
            for _ in range(5):
                r = httpx.post(f"http://127.0.0.1:{port}{path}", content=body,
                               headers=headers, timeout=30)
                _is_400(r, field)
        deep = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/experiments/create", content=deep,
                       headers=headers, timeout=30)
        _is_400(r, str(MAX_JSON_DEPTH))
        time.sleep(0.5)
        grown = log.stat().st_size - before
        assert grown < 200, log.read_text()[-3000:]  # was ~5 KB of traceback per request
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------ 2. deep nesting
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("path", [f"{API}/runs/search", f"{API}/runs/log-batch",
                                  "/ajax-api/2.0/mlflow/runs/search", "/api/v1/runs/search"])
def test_deeply_nested_json_is_400_naming_the_limit(secured: Any, world: Any,
                                                    server_log: _Records, path: str) -> None:
    field = "params" if path.endswith("log-batch") else "experiment_ids"
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        body = b'{"run_id": "%s", "%s": %s}' % (world["run_a"].encode(), field.encode(),
                                                  _nested(depth))
        for user in ("alice", "bob"):
            r = _raw(secured, user, path, body)
            _is_400(r, "nested", str(MAX_JSON_DEPTH))
    assert server_log.loud() == []


def test_nesting_within_the_limit_and_brackets_in_strings_are_not_refused(
        secured: Any, world: Any, server_log: _Records) -> None:
    # Depth exactly MAX_JSON_DEPTH (the outer object counts): read by the handler.
    body = b'{"experiment_ids": %s}' % _nested(MAX_JSON_DEPTH - 1)
    r = _raw(secured, "alice", f"{API}/runs/search", body)
    assert "nested" not in r.text, r.text[:300]
    assert r.status_code < 500, r.text[:300]
    # A string full of brackets is not nesting.
    body = json.dumps({"run_id": world["run_a"], "key": "brackets",
                       "value": "[" * 3000 + "{" * 3000}).encode()
    r = _raw(secured, "alice", f"{API}/runs/set-tag", body)
    assert r.status_code == 200, r.text[:300]
    # ...nor an escaped quote followed by brackets inside a string.
    body = b'{"experiment_ids": ["\\"' + b"[" * 500 + b'"]}'
    r = _raw(secured, "alice", f"{API}/runs/search", body)
    assert "nested" not in r.text and r.status_code < 500, r.text[:300]
    assert server_log.loud() == []


# --------------------------------------------------- 3. model-version sources
def _dotted(w: dict[str, str]) -> list[str]:
    a, c, rc = w["exp_a"], w["exp_c"], w["run_c"]
    return [f"mlflow-artifacts:/{a}/../{c}/{rc}/artifacts/model",
            f"mlflow-artifacts:/{a}/%2e%2e/{c}/{rc}/artifacts/model",
            f"mlflow-artifacts:/{a}/%2E%2E/{c}/{rc}/artifacts/model",
            f"mlflow-artifacts:/{a}/%252e%252e/{c}/{rc}/artifacts/model",
            f"mlflow-artifacts:/{a}/./../{c}/{rc}/artifacts/model",
            f"mlflow-artifacts:/{a}/x%2F..%2F..%2F{c}/{rc}/artifacts/model",
            f"runs:/{w['run_a']}/../../{c}/{rc}/artifacts/model"]


def _refusal(message: str, source: str) -> str:
    return message.replace(repr(source[:300]), "<source>")


def _unreadable_answer(secured: Any) -> str:
    src = "models:/no-such-model-anywhere/1"
    r = secured.post("alice", f"{_MV}/create", {"name": "fu-model-b", "source": src})
    assert r.status_code == 403, r.text
    return _refusal(r.json()["message"], src)


def test_dot_segments_in_sources_are_refused_like_unreadable_ones(secured: Any,
                                                                  world: Any) -> None:
    expected = _unreadable_answer(secured)
    g = secured.client("alice")
    try:
        for source in _dotted(world):
            r = secured.post("alice", f"{_MV}/create", {"name": "fu-model-b", "source": source})
            assert r.status_code == 403, (source, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
            assert _refusal(r.json()["message"], source) == expected
            r = secured.post("alice", "/api/v1/model-versions/create",
                             {"name": "fu-model-b", "source": source})
            assert r.status_code == 403, (source, r.text)
            with pytest.raises(MetricflowError) as ei:
                g.registry.create_model_version("fu-model-b", source)
            assert isinstance(ei.value, PermissionDenied), (source, ei.value)
    finally:
        g.close()
    # Her own experiment's files, spelled plainly, are still fine.
    own = f"mlflow-artifacts:/{world['exp_a']}/{world['run_a']}/artifacts/model/"
    r = secured.post("alice", f"{_MV}/create", {"name": "fu-model-b", "source": own})
    assert r.status_code == 200, r.text
    # Nothing pointing into C was registered.
    found = secured.get("admin", f"{_MV}/search?filter=name%3D%27fu-model-b%27").json()
    assert not [v for v in found.get("model_versions", []) if world["run_c"] in v["source"]]


def _local(w: dict[str, str]) -> list[str]:
    return [f"file://{w['root']}/{w['exp_c']}/{w['run_c']}/artifacts/model", "file:///etc",
            "file://localhost/etc/passwd", "FILE:///etc", "/etc/passwd", "relative/model",
            "./model", "../model", "C:\\models\\m", "%2Fetc%2Fpasswd"]


@pytest.mark.parametrize("user", ["alice", "admin"])
def test_local_filesystem_sources_are_400_on_every_front_end(secured: Any, world: Any,
                                                             user: str) -> None:
    from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb

    ch = grpc.insecure_channel(secured.target)
    fn = ch.unary_unary("/metricflow.registry.v1.RegistryService/CreateModelVersion",
                        request_serializer=pb.CreateModelVersionRequest.SerializeToString,
                        response_deserializer=pb.ModelVersion.FromString)
    g = secured.client(user)
    try:
        for source in _local(world):
            r = secured.post(user, f"{_MV}/create", {"name": "fu-model-b", "source": source})
            _is_400(r, "local filesystem path", "source")
            r = secured.post(user, "/api/v1/model-versions/create",
                             {"name": "fu-model-b", "source": source})
            _is_400(r, "local filesystem path")
            with pytest.raises(grpc.RpcError) as ei:
                fn(pb.CreateModelVersionRequest(name="fu-model-b", source=source),
                   metadata=secured.md(user), timeout=30)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (source, ei.value)
            with pytest.raises(InvalidArgument):
                g.registry.create_model_version("fu-model-b", source)
    finally:
        g.close()
        ch.close()
    found = secured.get("admin", f"{_MV}/search?filter=name%3D%27fu-model-b%27").json()
    assert not [v for v in found.get("model_versions", [])
                if v["source"].lower().startswith(("file:", "/", "."))]


def test_a_local_source_registered_before_the_check_resolves_for_admins_only(
        secured: Any, world: Any) -> None:
    # Straight into the store, as an older server would have accepted it.
    mv = secured.srv.server.metadata.create_model_version("fu-model-b", "file:///etc",
                                                          actor="alice")
    got = secured.get("alice", f"{_MV}/get-download-uri?name=fu-model-b&version={mv.version}")
    assert got.status_code == 403 and got.json()["error_code"] == "PERMISSION_DENIED", got.text
    res = secured.get("alice", "/api/v1/model-versions/resolve?model_uri=models:/fu-model-b/"
                               f"{mv.version}")
    assert res.status_code == 403, res.text
    a = secured.client("alice")
    try:
        with pytest.raises(PermissionDenied):
            a.registry.resolve_model_uri(f"models:/fu-model-b/{mv.version}")
    finally:
        a.close()
    ok = secured.get("admin", f"{_MV}/get-download-uri?name=fu-model-b&version={mv.version}")
    assert ok.status_code == 200, ok.text


# --------------------------------------------------- 4. string param/tag values
NOT_STRINGS: list[Any] = [[1], {"a": 1}, True, 1, 1.5]


def _mlflow_run(secured: Any, exp: str) -> str:
    r = secured.post("alice", f"{API}/runs/create", {"experiment_id": exp})
    assert r.status_code == 200, r.text
    return str(r.json()["run"]["info"]["run_id"])


def _stored(secured: Any, run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    data = secured.get("alice", f"{API}/runs/get?run_id={run_id}").json()["run"]["data"]
    return ({p["key"]: p["value"] for p in data.get("params", [])},
            {t["key"]: t["value"] for t in data.get("tags", [])})


def test_run_params_and_tags_must_be_strings(secured: Any, world: Any) -> None:
    run_id = _mlflow_run(secured, world["exp_a"])
    for bad in NOT_STRINGS:
        shown = json.dumps(bad)
        for body, field in (
                ({"params": [{"key": "p1", "value": "ok"}, {"key": "p2", "value": bad}]},
                 "params[1].value"),
                ({"tags": [{"key": "t", "value": bad}]}, "tags[0].value")):
            r = secured.post("alice", f"{API}/runs/log-batch", {"run_id": run_id, **body})
            _is_400(r, f"'{field}'", "expected a string", shown)
        r = secured.post("alice", f"{API}/runs/log-parameter",
                         {"run_id": run_id, "key": "p3", "value": bad})
        _is_400(r, "'value'", "expected a string", shown)
        r = secured.post("alice", f"{API}/runs/set-tag",
                         {"run_id": run_id, "key": "t2", "value": bad})
        _is_400(r, "'value'", "expected a string", shown)
        r = secured.post("alice", f"{API}/runs/create",
                         {"experiment_id": world["exp_a"], "tags": [{"key": "t", "value": bad}]})
        _is_400(r, "'tags[0].value'", "expected a string")
    params, tags = _stored(secured, run_id)
    # Refused batches are all-or-nothing: not even the good param went in.
    assert not {"p1", "p2", "p3"} & set(params), params
    assert "t" not in tags and "t2" not in tags, tags
    # Strings (and an explicit null, proto3's "unset") still work.
    r = secured.post("alice", f"{API}/runs/log-batch",
                     {"run_id": run_id, "params": [{"key": "p1", "value": "[1]"}],
                      "tags": [{"key": "t", "value": None}]})
    assert r.status_code == 200, r.text
    params, tags = _stored(secured, run_id)
    assert params["p1"] == "[1]" and tags["t"] == "", (params, tags)


def test_experiment_and_registry_tags_must_be_strings(secured: Any, world: Any) -> None:
    for bad in NOT_STRINGS:
        shown = json.dumps(bad)
        cases = [
            (f"{API}/experiments/create",
             {"name": "fu-typed-exp", "tags": [{"key": "k", "value": bad}]}, "tags[0].value"),
            (f"{API}/experiments/set-experiment-tag",
             {"experiment_id": world["exp_a"], "key": "k", "value": bad}, "value"),
            (f"{API}/registered-models/create",
             {"name": "fu-typed-model", "tags": [{"key": "k", "value": bad}]},
             "tags[0].value"),
            (f"{API}/registered-models/set-tag",
             {"name": "fu-model-b", "key": "k", "value": bad}, "value"),
            (f"{_MV}/create", {"name": "fu-model-b", "source": "s3://b/typed",
                               "tags": [{"key": "k", "value": bad}]}, "tags[0].value"),
        ]
        for path, body, field in cases:
            r = secured.post("alice", path, body)
            _is_400(r, f"'{field}'", "expected a string", shown)
    # Nothing was created by the refused calls.
    r = secured.get("alice", f"{API}/experiments/get-by-name?experiment_name=fu-typed-exp")
    assert r.status_code == 404, r.text
    r = secured.get("alice", f"{API}/registered-models/get?name=fu-typed-model")
    assert r.status_code == 404, r.text
    found = secured.get("admin", f"{_MV}/search?filter=name%3D%27fu-model-b%27").json()
    assert not [v for v in found.get("model_versions", []) if v["source"] == "s3://b/typed"]
    r = secured.get("alice", f"{API}/experiments/get?experiment_id={world['exp_a']}")
    assert "k" not in {t["key"] for t in r.json()["experiment"].get("tags", [])}


def test_model_version_tags_must_be_strings(secured: Any, world: Any) -> None:
    r = secured.post("alice", f"{_MV}/create", {"name": "fu-model-b", "source": "s3://b/m"})
    assert r.status_code == 200, r.text
    version = r.json()["model_version"]["version"]
    for bad in NOT_STRINGS:
        r = httpx.post(secured.http + f"{_MV}/set-tag", json={
            "name": "fu-model-b", "version": version, "key": "k", "value": bad},
            headers=secured.headers("alice"), timeout=30)
        _is_400(r, "'value'", "expected a string", json.dumps(bad))
    r = secured.get("alice", f"{_MV}/get?name=fu-model-b&version={version}")
    assert "k" not in {t["key"] for t in r.json()["model_version"].get("tags", [])}


# ------------------------------------------------------------ 5. docs routes
def test_index_and_docs_are_served_behind_auth(secured: Any) -> None:
    for path in ("/", "/docs", "/openapi.json"):
        assert httpx.get(secured.http + path, timeout=30).status_code == 401, path
        assert secured.get("bob", path).status_code == 200, path
