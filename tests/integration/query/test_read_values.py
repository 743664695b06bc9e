"""What the read API hands to users, on the embedded server, on every surface:

- a searched run's metric `count` is unknown (gRPC field unset, JSON null, client
  None), never a `0` for a metric that holds 1,000 points; `get_run` counts;
- MLflow REST search responses are unchanged (MLflow's Metric has no count);
- `downsample_history` returns numpy columns, not packed bytes.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

POINTS = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from metricflow.app import ServerConfig, ServerThread

    data_dir = tmp_path_factory.mktemp("mf-read-values")
    with ServerThread(ServerConfig(data_dir=str(data_dir), grpc_port=0, http_port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    import metricflow as mf

    c = mf.Client(f"grpc://{server.target}", linger_ms=5)
    yield c
    c.close()


@pytest.fixture(scope="module")
def runs(client) -> tuple[str, list[str]]:
    exp = client.get_or_create_experiment("read-values")
    ids = []
    for i in range(2):
        r = client.create_run(exp, run_name=f"r{i}").run_id
        for s in range(POINTS):
            client.log_metric(r, "loss", (i + 1) / (s + 1), step=s)
        ids.append(r)
    client.flush()
    return exp, ids


@pytest.fixture(scope="module")
def http(server) -> str:
    return f"http://127.0.0.1:{server.server.http_port}"


def test_grpc_search_says_count_unknown(client, runs) -> None:
    exp, ids = runs
    found, _ = client.search_runs([exp], order_by=["attributes.run_name"])
    assert [r.run_id for r in found] == ids
    assert [r.metrics["loss"].count for r in found] == [None, None]
    assert [client.get_run(r).metrics["loss"].count for r in ids] == [POINTS, POINTS]


def test_grpc_wire_has_no_count_in_search(client, runs) -> None:
    from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb

    exp, ids = runs
    resp = client._call("/metricflow.query.v1.QueryService/SearchRuns",
                        qpb.SearchRunsRequest(experiment_ids=[exp]), qpb.SearchRunsResponse)
    assert [m.HasField("count") for r in resp.runs for m in r.metrics] == [False, False]
    one = client._call("/metricflow.query.v1.QueryService/GetRun",
                       qpb.GetRunRequest(run_id=ids[0]), qpb.Run)
    assert one.metrics[0].HasField("count") and one.metrics[0].count == POINTS


def test_http_search_count_is_null(http, runs) -> None:
    exp, ids = runs
    body = httpx.post(f"{http}/api/v1/runs/search", json={
        "experiment_ids": [exp], "order_by": ["attributes.run_name"]}).json()
    assert [r["info"]["run_id"] for r in body["runs"]] == ids
    assert [r["metrics"]["loss"]["count"] for r in body["runs"]] == [None, None]
    assert [r["metrics"]["loss"]["last_step"] for r in body["runs"]] == [POINTS - 1] * 2
    one = httpx.get(f"{http}/api/v1/runs/{ids[0]}").json()
    assert one["metrics"]["loss"]["count"] == POINTS


def test_mlflow_search_metrics_unchanged(http, runs) -> None:
    exp, ids = runs
    body = httpx.post(f"{http}/api/2.0/mlflow/runs/search",
                      json={"experiment_ids": [exp]}).json()
    assert sorted(r["info"]["run_id"] for r in body["runs"]) == sorted(ids)
    for r in body["runs"]:
        (m,) = r["data"]["metrics"]
        assert set(m) == {"key", "value", "timestamp", "step"}
        assert m["key"] == "loss" and m["step"] == POINTS - 1


def test_downsample_history_gives_numpy_columns(client, runs) -> None:
    from metricflow.client import DownsampledSeries, series_columns

    _, ids = runs
    series = {s.run_id: s for s in client.downsample_history(ids, "loss", buckets=10)}
    assert sorted(series) == sorted(ids)
    for i, s in enumerate(series[r] for r in ids):  # run i logged (i + 1) / (step + 1)
        assert isinstance(s, DownsampledSeries)
        assert len(s) == 10
        assert all(len(c) == 10 for c in (s.bucket, s.count, s.step_first, s.step_last,
                                          s.min, s.max, s.avg, s.last, s.nan_count,
                                          s.inf_count))
        assert s.bucket.dtype == np.int64 and s.min.dtype == np.float64
        assert s.bucket.tolist() == list(range(10)) and s.count.sum() == POINTS
        assert s.step_first[0] == 0 and s.step_last[-1] == POINTS - 1
        assert s.max[0] == pytest.approx(i + 1) and s.min[-1] == pytest.approx((i + 1) / POINTS)
        assert (s.step_lo, s.step_hi) == (0, POINTS - 1)
        assert (s.first_point.step, s.first_point.value) == (0, pytest.approx(i + 1))
        assert s.last_point.step == POINTS - 1
        cols = series_columns(s)  # the dict form still works
        assert cols["count"].tolist() == s.count.tolist()


def test_downsample_with_extreme_step_bounds_is_a_400_not_a_500(http, runs) -> None:
    """The bucket width is an Int64: a range of 2^64 steps divided by zero (a 500), and a
    bound past int64 failed inside the engine. The server answers after it too."""
    import requests

    _, ids = runs
    url = f"{http}/api/v1/metrics/downsample"
    lo, hi = -(2**63), 2**63 - 1
    for body, field in (({"step_min": lo, "step_max": hi}, "step_max"),
                        ({"step_min": 2**63}, "step_min"),
                        ({"step_min": lo}, "step_max")):  # one bound, the data's other
        r = requests.post(url, json={"run_ids": ids, "key": "loss", "buckets": 10, **body},
                          timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and field in r.text
    ok = requests.post(url, json={"run_ids": ids, "key": "loss", "buckets": 10,
                                  "step_min": 0, "step_max": 2**62}, timeout=30)
    assert ok.status_code == 200, ok.text
