"""Query API end to end on the embedded server: gRPC client, live tail, HTTP/OpenAPI."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from metricflow.app import ServerConfig, ServerThread

    data_dir = tmp_path_factory.mktemp("mf-query")
    with ServerThread(ServerConfig(data_dir=str(data_dir), grpc_port=0, http_port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    import metricflow as mf

    c = mf.Client(f"grpc://{server.target}", linger_ms=5)
    yield c
    c.close()


@pytest.fixture(scope="module")
def runs(client):
    exp = client.get_or_create_experiment("query-it")
    ids = []
    for i in range(6):
        r = client.create_run(exp, run_name=f"r{i}").run_id
        client.log_params(r, {"lr": ["0.1", "0.01"][i % 2]})
        client.set_tags(r, {"team": "vision" if i < 3 else "nlp"})
        for s in range(5):
            client.log_metric(r, "acc", i + s / 10, step=s)
        ids.append(r)
    client.flush()
    return exp, ids


def test_search_over_grpc(client, runs) -> None:
    exp, ids = runs
    got, token = client.search_runs([exp], "metrics.acc > 2 AND tags.team LIKE 'n%'",
                                    ["metrics.acc DESC"], 2)
    assert [r.run_id for r in got] == [ids[5], ids[4]] and token
    more, token = client.search_runs([exp], "metrics.acc > 2 AND tags.team LIKE 'n%'",
                                     ["metrics.acc DESC"], 2, token)
    assert [r.run_id for r in more] == [ids[3]] and token == ""
    df = client.search_runs_df([exp], "params.lr = '0.1'", ["attributes.run_name"])
    assert list(df["run_name"]) == ["r0", "r2", "r4"]
    assert df["metrics.acc"].tolist() == pytest.approx([0.4, 2.4, 4.4])


def test_downsample_compare_group_over_grpc(client, runs) -> None:
    from metricflow.client._reads import series_columns

    exp, ids = runs
    series = client.downsample_history(ids, "acc", 2)
    assert len(series) == 6
    cols = series_columns(series[0])
    assert cols["count"].tolist() == [3, 2]
    cmp = client.compare_runs(ids[:2], ["acc"], ["lr"])
    assert np.frombuffer(cmp.metrics[0].last, "<f8").tolist() == pytest.approx([0.4, 1.4])
    groups = client.group_by_param("lr", "acc", [exp])
    assert [(g.param_value, g.run_count) for g in groups] == [("0.01", 3), ("0.1", 3)]


def _log_and_wait(client, rid: str, steps, seen: dict[int, float], value) -> list[float]:
    """Log each step of "acc", wait for a tail subscriber to record it in `seen`;
    the seconds from commit to delivery of each."""
    lat = []
    for s in steps:
        client.log_metric(rid, "acc", value(s), step=s)
        client.flush()  # returns once the batch is committed
        committed = time.monotonic()
        deadline = committed + 5
        while s not in seen and time.monotonic() < deadline:
            time.sleep(0.005)
        assert s in seen, f"step {s} never arrived"
        lat.append(seen[s] - committed)
    return lat


def test_live_tail_over_grpc_within_one_second(client, runs) -> None:
    _, ids = runs
    rid = ids[0]
    seen: dict[int, float] = {}
    stream = client.tail_metrics([rid], ["acc"], poll_interval_ms=100, timeout=20)

    def consume() -> None:
        try:
            for chunk in stream:
                for s in chunk.points.steps.tolist():
                    seen[s] = time.monotonic()
                if 104 in seen:
                    return
        except Exception:  # cancelled at the end
            pass

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    time.sleep(0.5)
    lat = _log_and_wait(client, rid, range(100, 105), seen, lambda s: 9.0)
    th.join(timeout=5)
    stream.close()
    assert sorted(seen) == [100, 101, 102, 103, 104]  # only new points
    assert max(lat) < 1.0, lat


def test_http_downsample_of_several_keys(server, client, runs) -> None:
    import httpx

    _, ids = runs
    for s in range(5):
        client.log_metric(ids[0], "loss", 10 - s, step=s)
    client.flush()
    base = f"http://127.0.0.1:{server.server.http_port}/api/v1/metrics/downsample"
    one = {k: httpx.post(base, json={"run_ids": ids[:1], "key": k, "buckets": 2,
                                     "ends": False}).json()["series"] for k in ("acc", "loss")}
    both = httpx.post(base, json={"run_ids": ids[:1], "keys": ["loss", "acc", "loss", "nope"],
                                  "buckets": 2, "ends": False})
    assert both.status_code == 200
    got = both.json()["series"]
    assert [s["key"] for s in got] == ["loss", "acc"]  # in the asked order, each once
    assert got == one["loss"] + one["acc"]
    assert got[0]["max"] == [10, 7] and got[0]["first_point"] is None
    for body, field in (({"keys": ["acc"], "key": "acc"}, "keys"),
                        ({"keys": [f"k{i}" for i in range(101)]}, "keys"), ({}, "key")):
        bad = httpx.post(base, json={"run_ids": ids[:1], "buckets": 2, **body})
        assert bad.status_code == 400 and field in bad.json()["message"], bad.json()


def test_http_downsample_sized_for_a_chart_width(server, client, runs) -> None:
    """`px` + `run_keys` (the run page's early request, ui/src/boot.ts): the run's first
    keys, each with the bucket count the UI picks for that width, said in `buckets`."""
    import httpx

    from metricflow.query._rollup_read import buckets_for_px

    _, ids = runs
    rid = ids[2]
    for s in range(3000):
        client.log_metrics(rid, {"zz": float(s % 7), "aa": float(s)}, step=s)
    client.flush()
    base = f"http://127.0.0.1:{server.server.http_port}/api/v1/metrics/downsample"
    r = httpx.post(base, json={"run_ids": [rid], "run_keys": 2, "px": 377, "ends": False})
    assert r.status_code == 200, r.text
    got = r.json()
    # the run's keys are aa, acc and zz: its first two in the run page's order
    assert list(got["buckets"]) == ["aa", "acc"]
    assert [s["key"] for s in got["series"]] == ["aa", "acc"]
    # 3,000 steps at 377 px: 12 blocks are too coarse, so one bucket per pixel
    assert got["buckets"]["aa"] == buckets_for_px(377, 3000) == 377
    same = httpx.post(base, json={"run_ids": [rid], "key": "aa", "buckets": 377,
                                  "ends": False}).json()["series"]
    assert got["series"][0] == same[0]
    # a named key and a zoomed range: its span is the range's
    z = httpx.post(base, json={"run_ids": [rid], "keys": ["zz"], "px": 100, "step_min": 0,
                               "step_max": 2047}).json()
    assert z["buckets"] == {"zz": buckets_for_px(100, 2048)} and z["buckets"]["zz"] == 100
    assert z["series"][0]["step_hi"] <= 2047
    for body, field in (({"run_keys": 2}, "px"), ({"run_keys": 0, "px": 10}, "run_keys"),
                        ({"run_keys": 101, "px": 10}, "run_keys"),
                        ({"run_keys": 1, "key": "aa", "px": 10}, "run_keys"),
                        ({"px": 0, "key": "aa"}, "px"), ({"px": 200_000, "key": "aa"}, "px"),
                        ({"px": 10, "key": "aa", "run_ids": ids[:2]}, "run_ids")):
        bad = httpx.post(base, json={"run_ids": [rid], **body})
        assert bad.status_code == 400 and field in bad.json()["message"], (body, bad.json())


def test_http_routes_and_openapi(server, runs) -> None:
    import httpx

    exp, ids = runs
    base = f"http://127.0.0.1:{server.server.http_port}"
    r = httpx.post(f"{base}/api/v1/runs/search", json={
        "experiment_ids": [exp], "filter": "params.lr = '0.01'", "order_by": ["metrics.acc"]})
    assert r.status_code == 200
    assert [x["info"]["run_id"] for x in r.json()["runs"]] == [ids[1], ids[3], ids[5]]
    bad = httpx.post(f"{base}/api/v1/runs/search", json={"filter": "metrics.acc >> 1"})
    assert bad.status_code == 400 and "position 13" in bad.json()["message"]
    ds = httpx.post(f"{base}/api/v1/metrics/downsample",
                    json={"run_ids": ids[:2], "key": "acc", "buckets": 1}).json()
    assert [s["count"] for s in ds["series"]] == [[5], [5]] or len(ds["series"]) == 2
    g = httpx.post(f"{base}/api/v1/runs/group-by-param",
                   json={"experiment_ids": [exp], "param_key": "lr", "metric_key": "acc"})
    assert g.status_code == 200 and len(g.json()["groups"]) == 2
    c = httpx.post(f"{base}/api/v1/runs/compare", json={"run_ids": ids[:2]})
    assert c.json()["params"]["lr"]["values"] == ["0.1", "0.01"]
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    for p in ("/api/v1/runs/search", "/api/v1/metrics/downsample", "/api/v1/runs/compare",
              "/api/v1/runs/group-by-param"):
        assert p in paths


def test_live_tail_over_http_within_one_second(server, client, runs) -> None:
    import json

    import httpx

    _, ids = runs
    rid = ids[1]
    base = f"http://127.0.0.1:{server.server.http_port}"
    seen: dict[int, float] = {}
    lines: list[dict] = []
    opened = threading.Event()

    def consume() -> None:
        body = {"run_ids": [rid], "keys": ["acc"], "poll_interval_ms": 100}
        with httpx.stream("POST", f"{base}/api/v1/metrics/tail", json=body,
                          timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/x-ndjson")
            opened.set()
            for line in r.iter_lines():
                msg = json.loads(line)
                lines.append(msg)
                for s in msg.get("steps", []):
                    seen[s] = time.monotonic()
                if 204 in seen:
                    return

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    # The status line is sent only once the server has read the starting cursor.
    assert opened.wait(10), "the tail stream did not open"
    lat = _log_and_wait(client, rid, range(200, 205), seen,
                        lambda s: float("nan") if s == 202 else s / 10)
    th.join(timeout=5)
    assert sorted(seen) == [200, 201, 202, 203, 204]  # only new points, each once
    data = [m for m in lines if "steps" in m]
    assert {m["run_id"] for m in data} == {rid} and {m["key"] for m in data} == {"acc"}
    values = {s: v for m in data for s, v in zip(m["steps"], m["values"])}
    assert values[202] == "nan" and values[203] == pytest.approx(20.3)
    assert max(lat) < 1.0, lat


def test_http_tail_rejects_bad_requests_and_is_in_the_spec(server) -> None:
    import httpx

    base = f"http://127.0.0.1:{server.server.http_port}"
    r = httpx.post(f"{base}/api/v1/metrics/tail", json={"run_ids": []})
    assert r.status_code == 400 and "run_ids must hold 1 to 100 runs, got 0" in r.json()["message"]
    r = httpx.post(f"{base}/api/v1/metrics/tail",
                   json={"run_ids": ["0" * 32], "poll_interval_ms": 5})
    assert r.status_code == 400 and "poll_interval_ms" in r.json()["message"]
    spec = httpx.get(f"{base}/openapi.json").json()["paths"]["/api/v1/metrics/tail"]["post"]
    assert "application/x-ndjson" in spec["responses"]["200"]["content"]
