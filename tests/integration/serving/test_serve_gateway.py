"""`metricflow serve` end to end, all on real processes: a `metricflow server`, sklearn and
pyfunc models registered through the official `mlflow` client, deployments made through
/api/v1, and `metricflow serve` subprocesses answering real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from serving_stack import (
    FAIL_TO_LOAD,
    RAISE_ALWAYS,
    RAISE_ON_NEGATIVE,
    Stack,
    api,
    iris,
    register_code_model,
    register_sklearn,
    set_alias,
    unique,
)

from loadtests._http_load import LoadResult, closed_loop, request_bytes

# Model registration and serve-process start-up are slow on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(900)

COLS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"dataframe_split": {"columns": COLS, "data": [ROW]}}).encode()


@pytest.fixture(scope="module")
def models(stack: Stack) -> dict[str, Any]:
    """One registered model with versions for every scenario (registered once)."""
    name = unique("iris")
    v = {
        "a": register_sklearn(name, 1.0),
        "b": register_sklearn(name, 0.01),
        "c": register_sklearn(name, 0.1),
        "raise": register_code_model(name, RAISE_ALWAYS, stack.tmp),
        "negative": register_code_model(name, RAISE_ON_NEGATIVE, stack.tmp),
        "noload": register_code_model(name, FAIL_TO_LOAD, stack.tmp),
    }
    return {"name": name, "v": v}


def _deploy(stack: Stack, models: dict[str, Any], variants: list[dict[str, Any]],
            **kw: Any) -> str:
    name = unique("dep")
    api(stack, "create", {"name": name, "model_name": models["name"], "variants": variants,
                          **kw})
    return name


def _post(url: str, body: bytes = BODY, **headers: str) -> requests.Response:
    return requests.post(f"{url}/invocations", data=body,
                         headers={"Content-Type": "application/json", **headers}, timeout=30)


def _load(port: int, seconds: float, conns: int = 8,
          watch: str = "X-Metricflow-Version") -> LoadResult:
    req = request_bytes("/invocations", BODY)
    return asyncio.run(closed_loop("127.0.0.1", port, lambda i: req, conns=conns,
                                   duration_s=seconds, watch_header=watch))


def _metric(url: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus sample over series whose labels include `labels`."""
    total = 0.0
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if not line.startswith(name + "{"):
            continue
        lab = line[len(name) + 1:line.rindex("}")]
        got = dict(p.split("=", 1) for p in lab.split(",") if "=" in p)
        if all(got.get(k) == f'"{v}"' for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_split_90_10_shadow_mirror_and_bad_input(stack, models, serve):
    v = models["v"]
    dep = _deploy(stack, models, [
        {"name": "champion", "version": v["a"], "weight": 90},
        {"name": "challenger", "version": v["b"], "weight": 10},
        {"name": "mirror", "version": v["raise"], "weight": 1.0, "shadow": True}])
    sp = serve(dep)
    ok = _post(sp.url)
    assert ok.status_code == 200, ok.text
    assert ok.headers["X-Metricflow-Variant"] in ("champion", "challenger")
    assert json.loads(ok.content)["predictions"] == [0]

    res = _load(sp.port, 0, watch="X-Metricflow-Variant")  # warm the connections
    req = request_bytes("/invocations", BODY)
    res = asyncio.run(_n_requests(sp.port, req, 10_000))
    assert res.failed == 0, (res.statuses, res.conn_errors)
    n = sum(res.headers.values())
    assert n == 10_000
    share = res.headers["challenger"] / n
    assert abs(share - 0.10) < 0.015, res.headers  # 5 standard deviations of a binomial

    # The shadow got the mirror of every request (or counted it as skipped when it fell
    # 256 behind) and failed every one, invisibly.
    def mirrored() -> bool:
        failed = _metric(sp.url, "metricflow_serve_shadow_requests_total", variant="mirror",
                         outcome="500")
        skipped = _metric(sp.url, "metricflow_serve_shadow_requests_total", variant="mirror",
                          outcome="skipped")
        return failed + skipped >= 10_001 and failed >= 5_000  # + the first request
    _wait(mirrored, 60, "the shadow's failures to be counted")
    assert _metric(sp.url, "metricflow_serve_shadow_requests_total", variant="mirror",
                   outcome="ok") == 0
    assert _metric(sp.url, "metricflow_serve_errors_total") == 0

    # A payload off the signature: 400 naming the column and type; the server stays up.
    bad = _post(sp.url, json.dumps({"dataframe_records": [
        {**dict(zip(COLS, ROW)), "petal width (cm)": "wide"}]}).encode())
    assert bad.status_code == 400
    err = bad.json()
    assert err["column"] == "petal width (cm)" and err["expected_type"] == "double"
    assert "'wide'" in err["message"]
    missing = _post(sp.url, json.dumps({"inputs": [{"sepal length (cm)": 1.0}]}).encode())
    assert missing.status_code == 400 and missing.json()["column"] == "sepal width (cm)"
    assert _post(sp.url, b"{not json").status_code == 400
    assert _post(sp.url).status_code == 200
    assert _metric(sp.url, "metricflow_serve_bad_input_total") >= 2
    assert requests.get(f"{sp.url}/ping", timeout=5).status_code == 200
    info = requests.get(f"{sp.url}/version", timeout=5).json()
    assert {x["name"]: x["version"] for x in info["variants"]} == {
        "champion": v["a"], "challenger": v["b"], "mirror": v["raise"]}


async def _n_requests(port: int, req: bytes, n: int, conns: int = 16) -> LoadResult:
    """Exactly n requests over `conns` connections (closed loop)."""
    from loadtests._http_load import _connect

    res = LoadResult()
    left = [n]
    done = asyncio.get_running_loop().create_future()

    def next_req(c: Any) -> None:
        if left[0] <= 0:
            if sum(res.statuses.values()) + res.conn_errors >= n and not done.done():
                done.set_result(None)
            return
        left[0] -= 1
        c.send(req, time.perf_counter())

    cs = [await _connect("127.0.0.1", port, res, b"x-metricflow-variant:", next_req)
          for _ in range(conns)]
    t0 = time.perf_counter()
    for c in cs:
        next_req(c)
    await asyncio.wait_for(done, 600)
    res.elapsed_s = time.perf_counter() - t0
    for c in cs:
        c.transport.close()
    return res


def test_a_model_that_raises_is_a_500_with_variant_and_request_id(stack, models, serve):
    dep = _deploy(stack, models, [{"name": "only", "version": models["v"]["negative"],
                                   "weight": 1}])
    sp = serve(dep)
    neg = _post(sp.url, json.dumps({"dataframe_split": {"columns": COLS,
                                                        "data": [[-1.0, 3.5, 1.4, 0.2]]}}).encode())
    assert neg.status_code == 500
    body = neg.json()
    assert body["variant"] == "only" and body["version"] == models["v"]["negative"]
    assert body["request_id"] == neg.headers["X-Request-Id"]
    assert "negative sepal length" in body["message"]
    # Concurrent good requests batched with a bad one still succeed; only the bad one fails.
    out: list[int] = []
    bodies = [BODY] * 20 + [neg.request.body] * 2  # type: ignore[list-item]
    threads = [threading.Thread(target=lambda b=b: out.append(_post(sp.url, b).status_code))
               for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(out) == {200: 20, 500: 2}
    assert _post(sp.url).json()["predictions"] == [7]
    assert _metric(sp.url, "metricflow_serve_errors_total", variant="only") == 3


def test_sticky_keys_are_stable_across_processes(stack, models, serve):
    v = models["v"]
    dep = _deploy(stack, models, [{"name": "champion", "version": v["a"], "weight": 50},
                                  {"name": "challenger", "version": v["b"], "weight": 50}],
                  sticky_key="header:X-User")
    p1, p2 = serve(dep), serve(dep)
    seen: dict[str, set[str]] = {}
    with requests.Session() as s:
        for rnd in range(3):
            for u in range(60):
                url = (p1 if (u + rnd) % 2 else p2).url
                r = s.post(f"{url}/invocations", data=BODY, timeout=30,
                           headers={"Content-Type": "application/json", "X-User": f"user-{u}"})
                assert r.status_code == 200
                seen.setdefault(f"user-{u}", set()).add(r.headers["X-Metricflow-Variant"])
    assert all(len(vs) == 1 for vs in seen.values()), seen
    assert Counter(next(iter(vs)) for vs in seen.values()).keys() == {"champion", "challenger"}

    # A variant that proxies to an external /invocations (here: the first serve process).
    remote = _deploy(stack, models, [{"name": "remote", "endpoint": f"{p1.url}/invocations",
                                      "weight": 1}])
    p3 = serve(remote, "--allow-private-endpoints")
    r = _post(p3.url)
    assert r.status_code == 200, r.text
    assert r.headers["X-Metricflow-Variant"] == "remote"
    assert r.json()["predictions"] == [0]
    bad = _post(p3.url, json.dumps({"dataframe_records": [
        {**dict(zip(COLS, ROW)), "sepal length (cm)": "x"}]}).encode())
    assert bad.status_code == 400 and bad.json()["column"] == "sepal length (cm)"
    p1.stop()  # the endpoint goes away: a 502 naming it, and the gateway stays up
    down = _post(p3.url)
    assert down.status_code == 502 and p1.url in down.json()["message"]
    assert requests.get(f"{p3.url}/health", timeout=5).status_code == 200


def test_alias_change_under_load_then_a_failed_load_keeps_the_old_version(stack, models, serve):
    v = models["v"]
    name = models["name"]
    alias = unique("live")
    set_alias(name, alias, v["a"])
    dep = _deploy(stack, models, [{"name": "champion", "alias": alias, "weight": 1}])
    sp = serve(dep)
    got: list[LoadResult] = []
    t = threading.Thread(target=lambda: got.append(_load(sp.port, 14)))
    t.start()
    time.sleep(2)  # the load is running before the alias moves
    moved = time.monotonic()
    set_alias(name, alias, v["c"])
    _wait(lambda: requests.get(f"{sp.url}/version", timeout=5).json()["variants"][0]["version"]
          == v["c"], 30, "the serve process to switch to the new version")
    switch_s = time.monotonic() - moved
    t.join()
    res = got[0]
    assert res.failed == 0, (res.statuses, res.conn_errors)
    assert res.headers[v["a"]] > 0 and res.headers[v["c"]] > 0, res.headers
    assert switch_s < 15, switch_s  # picked up within 5 s (poll 2 s) plus loading the model

    # Now a version that cannot load: traffic stays on the old one, and it is reported.
    got.clear()
    t = threading.Thread(target=lambda: got.append(_load(sp.port, 8)))
    t.start()
    time.sleep(1)
    set_alias(name, alias, v["noload"])
    st = _wait(lambda: next((s for s in api(stack, f"get?name={dep}")["deployment"]["statuses"]
                             if s["state"] == "load_failed"), None), 30,
               "the load failure to be reported to the control plane")
    t.join()
    res = got[0]
    assert res.failed == 0, (res.statuses, res.conn_errors)
    assert set(res.headers) == {v["c"]}, res.headers
    assert st["variant"] == "champion" and st["version"] == v["noload"]
    assert "cannot be loaded" in st["reason"]
    assert _metric(sp.url, "metricflow_serve_load_failures_total", variant="champion") >= 1
    hist = api(stack, f"history?name={dep}")["entries"]
    assert any(e["action"] == "deployment_variant_load_failed" for e in hist), hist[:3]


def test_guardrail_trips_a_failing_canary_and_rolls_back(stack, models, serve):
    v = models["v"]
    dep = _deploy(stack, models, [{"name": "champion", "version": v["a"], "weight": 80},
                                  {"name": "canary", "version": v["raise"], "weight": 20}],
                  guardrails={"max_error_rate": 0.2, "window_s": 10, "min_requests": 20})
    sp = serve(dep)
    t0 = time.monotonic()
    tripped_at = None
    with requests.Session() as s:
        while time.monotonic() - t0 < 60:
            r = s.post(f"{sp.url}/invocations", data=BODY, timeout=30,
                       headers={"Content-Type": "application/json"})
            if r.status_code == 500:
                assert r.json()["variant"] == "canary"
            info = requests.get(f"{sp.url}/version", timeout=5).json()
            if any(x["name"] == "canary" and x["out_of_rotation"] for x in info["variants"]):
                tripped_at = time.monotonic() - t0
                break
            time.sleep(0.02)
        assert tripped_at is not None and tripped_at < 30, tripped_at
        after = [s.post(f"{sp.url}/invocations", data=BODY, timeout=30,
                        headers={"Content-Type": "application/json"}) for _ in range(100)]
    assert {r.status_code for r in after} == {200}
    assert {r.headers["X-Metricflow-Variant"] for r in after} == {"champion"}
    st = _wait(lambda: next((s for s in api(stack, f"get?name={dep}")["deployment"]["statuses"]
                             if s["state"] == "out_of_rotation"), None), 15, "the rollback report")
    assert st["variant"] == "canary" and "error rate" in st["reason"]
    hist = api(stack, f"history?name={dep}")["entries"]
    assert any(e["action"] == "deployment_variant_out_of_rotation" for e in hist)
    assert _metric(sp.url, "metricflow_serve_variant_out_of_rotation", variant="canary") == 1


def test_feedback_joins_its_request(stack, models, serve):
    from metricflow import Client

    dep = _deploy(stack, models, [{"name": "champion", "version": models["v"]["a"],
                                   "weight": 1}])
    sp = serve(dep)
    r = _post(sp.url)
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    run_id, step = rid.rsplit("-", 1)
    fb = requests.post(f"{sp.url}/feedback", json={"request_id": rid,
                                                   "outcomes": {"converted": 1, "revenue": 2.5}},
                       timeout=30)
    assert fb.status_code == 200, fb.text
    assert fb.json()["run_id"] == run_id
    bad = requests.post(f"{sp.url}/feedback", json={"request_id": "f" * 32 + "-1",
                                                    "label": 1}, timeout=30)
    assert bad.status_code == 404
    assert requests.post(f"{sp.url}/feedback", json={"request_id": rid, "label": "yes"},
                         timeout=30).status_code == 400
    with Client(stack.grpc) as c:
        def joined() -> bool:
            conv = c.get_metric_history(run_id, "outcome.converted")
            lat = c.get_metric_history(run_id, "latency_ms")
            return (list(conv.steps) == [int(step)] and int(step) in set(lat.steps.tolist()))
        _wait(joined, 30, "the outcome to land at its request's step")
        run = c.get_run(run_id)
        assert run.tags["mf.serving.deployment"] == dep
        assert run.tags["mf.serving.variant"] == "champion"
        assert run.tags["mf.serving.version"] == models["v"]["a"]
        assert list(c.get_metric_history(run_id, "outcome.revenue").values) == [2.5]
        assert list(c.get_metric_history(run_id, "status").values)[:1] == [200.0]


def test_csv_scoring_input_like_mlflows_scoring_server(stack, models, serve):
    """text/csv (a header row, as DataFrame.to_csv writes it) is scored like the same rows
    as JSON; a bad CSV is a 400 naming what is wrong, one over --max-csv-rows a 413, and
    an endpoint variant gets the CSV as it came."""
    v = models["v"]
    dep = _deploy(stack, models, [{"name": "champion", "version": v["a"], "weight": 1}])
    sp = serve(dep, "--max-csv-rows", "20")
    X, _ = iris()
    rows = X.iloc[[0, 60, 120]]
    as_json = _post(sp.url, json.dumps({"dataframe_split": {
        "columns": list(rows.columns), "data": rows.values.tolist()}}).encode())
    assert as_json.status_code == 200, as_json.text
    csv_body = rows.to_csv().encode()  # with pandas' unnamed index column, dropped
    as_csv = _post(sp.url, csv_body, **{"Content-Type": "text/csv; charset=utf-8"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json() == as_json.json() and len(as_csv.json()["predictions"]) == 3
    assert as_csv.headers["X-Metricflow-Variant"] == "champion" and as_csv.headers["X-Request-Id"]
    # columns in another order, no index: the same answer
    shuffled = rows[list(reversed(rows.columns))].to_csv(index=False).encode()
    assert _post(sp.url, shuffled, **{"Content-Type": "text/csv"}).json() == as_json.json()

    def csv_post(body: bytes) -> requests.Response:
        return _post(sp.url, body, **{"Content-Type": "text/csv"})

    header = ",".join(f'"{c}"' for c in COLS).encode()
    bad_type = csv_post(header + b"\n5.1,3.5,wide,0.2\n")
    assert bad_type.status_code == 400
    assert bad_type.json()["column"] == "petal length (cm)"
    assert bad_type.json()["expected_type"] == "double"
    assert "'wide' on CSV line 2" in bad_type.json()["message"]
    short = csv_post(header + b"\n5.1,3.5,1.4\n")
    assert short.status_code == 400 and "line 2 has 3 fields; the header has 4" in short.text
    missing = csv_post(b"sepal length (cm)\n5.1\n")
    assert missing.status_code == 400 and missing.json()["column"] == "sepal width (cm)"
    assert "no data rows" in csv_post(header + b"\n").json()["message"]
    assert "malformed at line 2" in csv_post(header + b'\n"5.1,3.5,1.4,0.2\n').text
    too_big = csv_post(header + b"\n" + b"5.1,3.5,1.4,0.2\n" * 20)
    assert too_big.status_code == 413 and "more than 20 lines" in too_big.json()["message"]
    assert too_big.json()["error_code"] == "REQUEST_TOO_LARGE"
    assert len(csv_post(header + b"\n" + b"5.1,3.5,1.4,0.2\n" * 19).json()["predictions"]) == 19
    other = _post(sp.url, b"x", **{"Content-Type": "text/plain"})
    assert other.status_code == 415 and "text/csv" in other.json()["message"]
    assert _metric(sp.url, "metricflow_serve_bad_input_total") >= 4  # routed 400s counted
    assert _post(sp.url).status_code == 200  # still serving JSON

    # An endpoint variant forwards the CSV body as it came, with its Content-Type.
    remote = _deploy(stack, models, [{"name": "remote", "endpoint": f"{sp.url}/invocations",
                                      "weight": 1}])
    proxy = serve(remote, "--allow-private-endpoints")
    via = _post(proxy.url, csv_body, **{"Content-Type": "text/csv"})
    assert via.status_code == 200, via.text
    assert via.json() == as_json.json() and via.headers["X-Metricflow-Variant"] == "remote"
