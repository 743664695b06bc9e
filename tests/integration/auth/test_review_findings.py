"""Regression tests for the outside review's findings 2, 3, 6 and 7 (issue 13).

2. malformed protobuf: refused after authentication, INVALID_ARGUMENT, no traceback logs;
3. out-of-range ids: 400 naming the field and the limit, never a 500;
6. existence oracles: an unreadable object is answered exactly like a missing one;
7. lenient metric types: 400 naming the field, the expected type and what was sent.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from rawgrpc import grpc_methods

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow._proto.metricflow.registry.v1 import registry_pb2 as rpb

API = "/api/2.0/mlflow"
MALFORMED = b"\xff\xff\xff"  # a field tag whose varint never ends: no message decodes it
WRITE = "/metricflow.ingest.v1.IngestService/Write"
METHODS = [m for m in grpc_methods() if m[0] != WRITE]  # Write answers per batch (below)


def _call(channel: grpc.Channel, method: str, cs: bool, ss: bool, payload: bytes,
          md: tuple[tuple[str, str], ...]) -> tuple[grpc.StatusCode, str]:
    ident = bytes
    try:
        if not cs and not ss:
            channel.unary_unary(method, ident, ident)(payload, metadata=md, timeout=20)
        elif not cs and ss:
            list(channel.unary_stream(method, ident, ident)(payload, metadata=md, timeout=20))
        elif cs and not ss:
            channel.stream_unary(method, ident, ident)(iter([payload]), metadata=md, timeout=20)
        else:
            list(channel.stream_stream(method, ident, ident)(iter([payload]), metadata=md,
                                                             timeout=20))
    except grpc.RpcError as e:
        return e.code(), e.details() or ""  # type: ignore[no-any-return]
    return grpc.StatusCode.OK, ""


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_log() -> Iterator[_Records]:
    """Every log record of the (in-process) server while the test runs."""
    h, root = _Records(), logging.getLogger()
    old = root.level
    root.addHandler(h)
    root.setLevel(logging.DEBUG)
    try:
        yield h
    finally:
        root.removeHandler(h)
        root.setLevel(old)


# ----------------------------------------------------------------- finding 2
def test_malformed_protobuf_from_anonymous_callers_is_unauthenticated(secured, channel,
                                                                      server_log) -> None:
    got = {m: _call(channel, m, cs, ss, MALFORMED, ())[0] for m, cs, ss in METHODS}
    got[WRITE] = _call(channel, WRITE, True, True, MALFORMED, ())[0]
    for health_method, ss in (("/grpc.health.v1.Health/Check", False),
                              ("/grpc.health.v1.Health/Watch", True)):
        got[health_method] = _call(channel, health_method, False, ss, MALFORMED, ())[0]
    health = {m for m in got if m.startswith("/grpc.health")}
    wrong = {m: c for m, c in got.items()
             if m not in health and c != grpc.StatusCode.UNAUTHENTICATED}
    assert not wrong
    # The probes need no credentials; a malformed probe is still just a bad argument
    # (the embedded server serves the health service too, since e2bce5f).
    assert {got[m] for m in health} == {grpc.StatusCode.INVALID_ARGUMENT}
    assert not [r for r in server_log.records if r.exc_info], "no traceback per request"
    noisy = [r.getMessage() for r in server_log.records if r.levelno >= logging.WARNING]
    assert sum(len(m) for m in noisy) < 40 * len(got), noisy  # was ~740 bytes per request


def test_malformed_protobuf_from_a_caller_is_invalid_argument(secured, channel,
                                                              server_log) -> None:
    md = secured.md("admin")
    got = {m: _call(channel, m, cs, ss, MALFORMED, md) for m, cs, ss in METHODS}
    wrong = {m: c for m, (c, _) in got.items() if c != grpc.StatusCode.INVALID_ARGUMENT}
    assert not wrong
    details = got["/metricflow.query.v1.QueryService/GetRun"][1]
    assert "GetRunRequest" in details and "malformed" in details
    # The ingest stream answers each batch: a malformed one gets a failed ack.
    write = channel.stream_stream(WRITE, bytes, ipb.WriteAck.FromString)
    acks = list(write(iter([MALFORMED]), metadata=md, timeout=20))
    assert [(a.ok, a.error_code) for a in acks] == [(False, "INVALID_PARAMETER_VALUE")]
    # At most a rate-limited one-liner per burst; never a traceback per request.
    assert not [r for r in server_log.records if r.exc_info]
    noisy = [r for r in server_log.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= 2, [r.getMessage() for r in noisy]
    assert sum(len(r.getMessage()) for r in noisy) < 1000


def test_a_well_formed_request_still_works_after_the_decode_moved(secured, channel) -> None:
    md = secured.md("admin")
    get = channel.unary_unary("/metricflow.registry.v1.ExperimentService/GetExperiment",
                              rpb.ExperimentRef.SerializeToString, rpb.Experiment.FromString)
    assert get(rpb.ExperimentRef(experiment_id="0"), metadata=md, timeout=20).name == "Default"
    search = channel.unary_unary("/metricflow.query.v1.QueryService/SearchRuns",
                                 qpb.SearchRunsRequest.SerializeToString,
                                 qpb.SearchRunsResponse.FromString)
    search(qpb.SearchRunsRequest(experiment_ids=["0"]), metadata=md, timeout=20)


# ----------------------------------------------------------------- finding 3
BIG = "99999999999999999999"
ID_LIMIT = "2147483647"


def _bad_id(r: httpx.Response, field: str = "experiment_id", json_number: bool = False) -> None:
    """400 naming the field and the id limit; a JSON number where MLflow's schema wants a
    string may instead be refused for its type, with MLflow's message (also naming the field)."""
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    expect = (ID_LIMIT, "expected a string") if json_number else (ID_LIMIT,)
    assert field in body["message"] and any(e in body["message"] for e in expect), body


@pytest.mark.parametrize("value", [BIG, 2**64, "-1", 2**31])
def test_out_of_range_experiment_ids_are_400_on_every_mlflow_route(secured, value) -> None:
    _bad_id(secured.get("admin", f"{API}/experiments/get", params={"experiment_id": value}))
    for path, body in (("/experiments/update", {"new_name": "x"}), ("/experiments/delete", {}),
                       ("/experiments/restore", {}),
                       ("/experiments/set-experiment-tag", {"key": "k", "value": "v"}),
                       ("/experiments/delete-experiment-tag", {"key": "k"}),
                       ("/runs/create", {}), ("/logged-models", {"name": "m"})):
        for user in ("admin", "alice"):  # the guard (non-admins) and the store (admins) agree
            _bad_id(secured.post(user, API + path, {"experiment_id": value, **body}),
                    json_number=isinstance(value, int))


def test_malformed_and_absent_experiment_ids(secured) -> None:
    r = secured.get("admin", f"{API}/experiments/get", params={"experiment_id": "abc"})
    _bad_id(r)
    r = secured.get("admin", f"{API}/experiments/get", params={"experiment_id": "123456"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_out_of_range_ids_on_api_v1_and_grpc(secured, channel) -> None:
    _bad_id(secured.get("admin", "/api/v1/experiments/get", params={"experiment_id": BIG}))
    _bad_id(secured.post("admin", "/api/v1/experiments/delete", {"experiment_id": BIG}))
    md = secured.md("admin")
    for name in ("GetExperiment", "DeleteExperiment"):
        rpc = channel.unary_unary(f"/metricflow.registry.v1.ExperimentService/{name}",
                                  rpb.ExperimentRef.SerializeToString, lambda b: b)
        with pytest.raises(grpc.RpcError) as ei:
            rpc(rpb.ExperimentRef(experiment_id=BIG), metadata=md, timeout=20)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert ID_LIMIT in (ei.value.details() or "")
    create = channel.unary_unary("/metricflow.ingest.v1.IngestService/CreateRun",
                                 ipb.CreateRunRequest.SerializeToString, lambda b: b)
    with pytest.raises(grpc.RpcError) as ei:
        create(ipb.CreateRunRequest(experiment_id=BIG), metadata=md, timeout=20)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_other_out_of_range_integers_are_400(secured) -> None:
    for r, field in (
            (secured.post("admin", f"{API}/runs/create",
                          {"experiment_id": "0", "start_time": 2**64}), "start_time"),
            (secured.get("admin", f"{API}/experiments/search",
                         params={"max_results": str(2**64)}), "max_results"),
            (secured.get("admin", f"{API}/model-versions/get",
                         params={"name": "m", "version": BIG}), "version"),
            (secured.post("admin", f"{API}/experiments/search",
                          {"filter": f"creation_time > {BIG}"}), "creation_time")):
        assert r.status_code == 400, (field, r.status_code, r.text)
        assert field in r.json()["message"], r.text


# ----------------------------------------------------------------- finding 6
@pytest.fixture(scope="module")
def hidden(secured) -> dict[str, Any]:
    """admin's experiment, run, registered model and logged model; carol has no grant."""
    a = secured.client("admin")
    eid = a.get_or_create_experiment(f"hidden-{uuid.uuid4().hex[:6]}")
    rid = a.create_run(eid).info.run_id
    a.log_metric(rid, "loss", 1.0, step=0)
    a.flush()
    model = f"hidden-model-{uuid.uuid4().hex[:6]}"
    a.registry.create_registered_model(model)
    a.close()
    lm = secured.post("admin", f"{API}/logged-models", {"experiment_id": eid, "name": "lm"})
    assert lm.status_code == 200, lm.text
    return {"eid": eid, "run_id": rid, "model": model,
            "logged_model": lm.json()["model"]["info"]["model_id"]}


@pytest.fixture(params=["NO_PERMISSIONS", "READ"])
def default_permission(request, secured, hidden) -> Iterator[str]:
    """Run each oracle test with the server's default permission set both ways; with READ,
    carol holds an explicit NO_PERMISSIONS grant on the hidden experiment and model."""
    authz = secured.srv.server.auth.guard.authz
    old = authz.config
    authz.config = dataclasses.replace(old, default_permission=request.param)
    if request.param == "READ":
        secured.store.set_experiment_permission(hidden["eid"], "carol", "NO_PERMISSIONS",
                                                actor="admin")
        secured.store.set_model_permission(hidden["model"], "carol", "NO_PERMISSIONS",
                                           actor="admin")
    try:
        yield request.param
    finally:
        authz.config = old
        if request.param == "READ":
            secured.store.delete_experiment_permission(hidden["eid"], "carol", actor="admin")
            secured.store.delete_model_permission(hidden["model"], "carol", actor="admin")


def _shape(r: httpx.Response, secret: str, stand_in: str) -> tuple[int, str, str]:
    body, msg = r.json(), r.json().get("message", "")
    for ident in sorted((secret, stand_in), key=len, reverse=True):  # "1" is in "1999999"
        msg = msg.replace(ident, "<id>")
    return r.status_code, body.get("error_code", ""), msg


def _same(secured, hidden_req: tuple[str, str, Any], absent_req: tuple[str, str, Any],
          secret: str, stand_in: str) -> tuple[int, str, str]:
    out = []
    for method, path, arg in (hidden_req, absent_req):
        r = secured.get("carol", path, params=arg) if method == "GET" else \
            httpx.request(method, secured.http + path, json=arg, headers=secured.headers("carol"),
                          timeout=30)
        out.append(_shape(r, secret, stand_in))
    assert out[0] == out[1], out
    assert out[0][0] == 404 and secret not in out[0][2], out
    return out[0]


def test_unreadable_runs_look_like_missing_runs(secured, hidden, default_permission) -> None:
    rid, other = hidden["run_id"], uuid.uuid4().hex
    _same(secured, ("GET", f"/api/v1/runs/{rid}", None), ("GET", f"/api/v1/runs/{other}", None),
          rid, other)
    _same(secured, ("GET", f"/api/v1/runs/{rid}/metrics/loss/history", None),
          ("GET", f"/api/v1/runs/{other}/metrics/loss/history", None), rid, other)
    for path in ("/runs/get", "/metrics/get-history", "/artifacts/list"):
        _same(secured, ("GET", API + path, {"run_id": rid, "metric_key": "loss"}),
              ("GET", API + path, {"run_id": other, "metric_key": "loss"}), rid, other)
    _same(secured, ("POST", f"{API}/runs/delete", {"run_id": rid}),
          ("POST", f"{API}/runs/delete", {"run_id": other}), rid, other)
    for msg in (f"experiment {hidden['eid']}", "NO_PERMISSIONS"):
        r = secured.get("carol", f"/api/v1/runs/{rid}")
        assert msg not in r.text
    md = secured.md("carol")
    get = grpc.insecure_channel(secured.target)
    try:
        rpc = get.unary_unary("/metricflow.query.v1.QueryService/GetRun",
                              qpb.GetRunRequest.SerializeToString, lambda b: b)
        seen = []
        for run_id in (rid, other):
            with pytest.raises(grpc.RpcError) as ei:
                rpc(qpb.GetRunRequest(run_id=run_id), metadata=md, timeout=20)
            seen.append((ei.value.code(), (ei.value.details() or "").replace(run_id, "<id>")))
        assert seen[0] == seen[1] and seen[0][0] == grpc.StatusCode.NOT_FOUND, seen
    finally:
        get.close()


def test_unreadable_experiments_look_like_missing_ones(secured, hidden,
                                                       default_permission) -> None:
    eid, other = hidden["eid"], "1999999"
    for method, path, extra in (("GET", f"{API}/experiments/get", {}),
                                ("GET", "/api/v1/experiments/get", {}),
                                ("POST", f"{API}/experiments/delete", {}),
                                ("POST", f"{API}/experiments/update", {"new_name": "x"}),
                                ("POST", f"{API}/runs/create", {}),
                                ("POST", f"{API}/logged-models", {"name": "lm"})):
        _same(secured, (method, path, {"experiment_id": eid, **extra}),
              (method, path, {"experiment_id": other, **extra}), eid, other)
    md = secured.md("carol")
    ch = grpc.insecure_channel(secured.target)
    try:
        rpc = ch.unary_unary("/metricflow.registry.v1.ExperimentService/GetExperiment",
                             rpb.ExperimentRef.SerializeToString, lambda b: b)
        seen = []
        for e in (eid, other):
            with pytest.raises(grpc.RpcError) as ei:
                rpc(rpb.ExperimentRef(experiment_id=e), metadata=md, timeout=20)
            seen.append((ei.value.code(), (ei.value.details() or "").replace(f"'{e}'", "<id>")))
        assert seen[0] == seen[1] and seen[0][0] == grpc.StatusCode.NOT_FOUND, seen
    finally:
        ch.close()


def test_unreadable_models_look_like_missing_ones(secured, hidden, default_permission) -> None:
    name, other = hidden["model"], f"no-such-model-{uuid.uuid4().hex[:6]}"
    for path in (f"{API}/registered-models/get", "/api/v1/registered-models/get"):
        _same(secured, ("GET", path, {"name": name}), ("GET", path, {"name": other}),
              name, other)
    lm, lm_other = hidden["logged_model"], f"m-{uuid.uuid4().hex}"
    _same(secured, ("GET", f"{API}/logged-models/{lm}", None),
          ("GET", f"{API}/logged-models/{lm_other}", None), lm, lm_other)


def test_a_taken_experiment_name_does_not_reveal_its_id(secured, hidden, channel) -> None:
    a = secured.client("admin")
    try:
        name = a.registry.get_experiment(hidden["eid"]).name
    finally:
        a.close()
    create = channel.unary_unary("/metricflow.registry.v1.ExperimentService/CreateExperiment",
                                 rpb.CreateExperimentRequest.SerializeToString, lambda b: b)
    with pytest.raises(grpc.RpcError) as ei:
        create(rpb.CreateExperimentRequest(name=name), metadata=secured.md("carol"), timeout=20)
    assert ei.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert not re.search(rf"\b{hidden['eid']}\b", ei.value.details() or ""), ei.value.details()
    r = secured.post("carol", f"{API}/experiments/create", {"name": name})
    assert r.status_code == 400 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert not re.search(rf"\b{hidden['eid']}\b", r.json()["message"])
    # Looked up by name, a hidden experiment is a missing one, and its id is not shown.
    other = f"no-such-experiment-{uuid.uuid4().hex[:6]}"
    _same(secured, ("GET", f"{API}/experiments/get-by-name", {"experiment_name": name}),
          ("GET", f"{API}/experiments/get-by-name", {"experiment_name": other}), name, other)
    get_or_create = channel.unary_unary(
        "/metricflow.registry.v1.ExperimentService/GetOrCreateExperiment",
        rpb.ExperimentNameRef.SerializeToString, lambda b: b)
    with pytest.raises(grpc.RpcError) as ei:
        get_or_create(rpb.ExperimentNameRef(name=name), metadata=secured.md("carol"),
                      timeout=20)
    assert not re.search(rf"\b{hidden['eid']}\b", ei.value.details() or ""), \
        ei.value.details()


# ----------------------------------------------------------------- finding 7
@pytest.fixture(scope="module")
def mlrun(secured) -> str:
    r = secured.post("admin", f"{API}/runs/create", {"experiment_id": "0"})
    assert r.status_code == 200, r.text
    return str(r.json()["run"]["info"]["run_id"])


@pytest.mark.parametrize("field,value,expected", [
    ("value", [1], "number"), ("value", True, "number"), ("value", {"a": 1}, "number"),
    ("value", "abc", "number"), ("step", 1.5, "integer"), ("step", True, "integer"),
    ("step", "x", "integer"), ("step", 2**63, "integer"), ("timestamp", 1.5, "integer"),
    ("timestamp", False, "integer"), ("timestamp", [1], "integer"),
    ("timestamp", -5, "integer"), ("timestamp", 2**64, "integer"),
])
def test_log_metric_refuses_values_of_the_wrong_type(secured, mlrun, field, value,
                                                     expected) -> None:
    m = {"key": f"typed_{field}", "value": 1.0, "timestamp": 1, "step": 0, field: value}
    for path, body in (("/runs/log-metric", {"run_id": mlrun, **m}),
                       ("/runs/log-batch", {"run_id": mlrun, "metrics": [m]})):
        r = secured.post("admin", API + path, body)
        assert r.status_code == 400, (path, r.status_code, r.text)
        msg = r.json()["message"]
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert field in msg and expected in msg, msg
        assert type(value).__name__ in msg or repr(value)[:20] in msg, msg
    h = secured.get("admin", f"{API}/metrics/get-history",
                    params={"run_id": mlrun, "metric_key": f"typed_{field}"})
    assert h.json() == {}, h.text  # nothing stored


def test_log_metric_accepts_what_protobuf_json_accepts(secured, mlrun) -> None:
    ok = [("1.5", 1.5), ("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf),
          (7, 7.0)]
    for i, (value, _) in enumerate(ok):
        body = {"run_id": mlrun, "key": "lenient_ok", "value": value, "timestamp": "5",
                "step": str(i)}
        r = secured.post("admin", f"{API}/runs/log-metric", body)
        assert r.status_code == 200, (value, r.text)
    h = secured.get("admin", f"{API}/metrics/get-history",
                    params={"run_id": mlrun, "metric_key": "lenient_ok"}).json()["metrics"]
    assert [m["step"] for m in h] == list(range(len(ok)))
    assert [m["timestamp"] for m in h] == [5] * len(ok)


def test_negative_zero_round_trips(secured, mlrun) -> None:
    r = secured.post("admin", f"{API}/runs/log-metric",
                     {"run_id": mlrun, "key": "negzero", "value": -0.0, "timestamp": 1})
    assert r.status_code == 200, r.text
    h = secured.get("admin", f"{API}/metrics/get-history",
                    params={"run_id": mlrun, "metric_key": "negzero"})
    v = h.json()["metrics"][0]["value"]
    assert v == 0 and math.copysign(1.0, v) < 0, h.text
    run = secured.get("admin", f"{API}/runs/get", params={"run_id": mlrun}).json()["run"]
    (latest,) = [m for m in run["data"]["metrics"] if m["key"] == "negzero"]
    assert math.copysign(1.0, latest["value"]) < 0, latest


def test_a_malformed_health_probe_is_invalid_argument_and_a_good_one_is_served() -> None:
    """The credential-free health methods decode through the interceptor too (the roles
    serve them; the embedded server does not)."""
    import asyncio

    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from metricflow.auth._grpc import AuthInterceptor
    from metricflow.auth._guard import Guard
    from metricflow.auth._types import AuthConfig

    async def probe() -> tuple[grpc.StatusCode, str, int]:
        server = grpc.aio.server(interceptors=[AuthInterceptor(Guard(AuthConfig(), None, None))])
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                check = "/grpc.health.v1.Health/Check"
                with pytest.raises(grpc.aio.AioRpcError) as ei:
                    await ch.unary_unary(check, bytes, bytes)(MALFORMED, timeout=10)
                ok = await ch.unary_unary(check, health_pb2.HealthCheckRequest.SerializeToString,
                                          health_pb2.HealthCheckResponse.FromString)(
                    health_pb2.HealthCheckRequest(), timeout=10)
        finally:
            await server.stop(0)
        return ei.value.code(), ei.value.details() or "", ok.status

    code, details, status = asyncio.run(probe())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "HealthCheckRequest" in details
    assert status == 1  # SERVING
