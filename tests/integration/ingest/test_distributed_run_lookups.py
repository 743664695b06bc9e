"""Calls on a run the writer has not applied yet, in the distributed quickstart setup.

Kafka + `metricflow writer --serve-query` (chDB) + `metricflow ingest --query-upstream`
(no --clickhouse): the node that takes a call only appends to Kafka, so what it knows
of a run comes from its own memory, from the store (the writer) or from its upstream.

- lifecycle calls (update, delete, restore) on a just-created run work at once, through
  the MLflow REST API and through gRPC UpdateRun;
- a changed param is refused at the call by an ingest node that has no memory of the
  first value (another node, or its memory expired), through its query upstream;
- a child run inherits a parent created through another node, or is refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_roles import wait_for
from test_kafka_pipeline import Pipeline

import metricflow as mf
from metricflow.errors import ErrorCode, InvalidArgument, NotFound

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def pipeline(tmp_path: Path, kafka_bootstrap: str, kafka_topic_prefix: str) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path, kafka_bootstrap, f"{kafka_topic_prefix}{uuid.uuid4().hex[:8]}")
    yield p
    p.close()


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _stored(reads: mf.Client, run_id: str) -> Any:
    try:
        return reads.get_run(run_id)
    except NotFound:
        return None


def test_short_mlflow_runs_end_finished(pipeline: Pipeline) -> None:
    """`with mlflow.start_run(): mlflow.log_param(...)` on the writer's MLflow API: the
    end-of-run update is taken although the writer has not applied the run yet (the
    quickstart's writer lingers up to 200 ms before it applies records; 500 here)."""
    import mlflow

    writer = pipeline.writer("--linger-ms", "500")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"http://127.0.0.1:{writer.http_port}")
    ids = []
    try:
        for i in range(5):
            with mlflow.start_run() as run:
                mlflow.log_param("a", i)
            ids.append(run.info.run_id)
    finally:
        mlflow.set_tracking_uri(before)
    reads = pipeline.client(writer.uri)

    def all_finished() -> bool:
        runs = [_stored(reads, r) for r in ids]
        return all(r is not None and r.info.status == "FINISHED" for r in runs)

    wait_for(all_finished, 60, "the five runs to be stored FINISHED")
    assert [reads.get_run(r).params for r in ids] == [{"a": str(i)} for i in range(5)]
    assert all(reads.get_run(r).info.end_time > 0 for r in ids)
    assert writer.metric("metricflow_writer_record_errors_total") == 0


def test_rest_lifecycle_calls_right_after_create(pipeline: Pipeline) -> None:
    """runs/get, runs/update (status, name), delete and restore on a run younger than the
    writer's lag answer 200 with the new state; an unknown run is still 404 (after a
    bounded wait)."""
    writer = pipeline.writer("--auth-run-wait-s", "1", "--linger-ms", "500")
    base = f"http://127.0.0.1:{writer.http_port}/api/2.0/mlflow"
    status, body = _post(f"{base}/runs/create", {"experiment_id": "0", "run_name": "r"})
    assert status == 200, body
    rid = body["run"]["info"]["run_id"]
    # MLflow's end_run reads the run first (runs/get), then updates it
    with urllib.request.urlopen(f"{base}/runs/get?run_id={rid}", timeout=30) as r:
        assert json.loads(r.read())["run"]["info"]["run_id"] == rid
    status, body = _post(f"{base}/runs/update", {"run_id": rid, "status": "FINISHED",
                                                 "run_name": "renamed"})
    assert status == 200, body
    info = body["run_info"]
    assert (info["run_id"], info["status"], info["run_name"]) == (rid, "FINISHED", "renamed")
    assert info["end_time"] > 0
    assert _post(f"{base}/runs/delete", {"run_id": rid}) == (200, {})
    # this node knows at once that the run is deleted
    status, body = _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "k", "value": "1"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert _post(f"{base}/runs/restore", {"run_id": rid}) == (200, {})
    assert _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "k", "value": "1"}) \
        == (200, {})

    unknown = uuid.uuid4().hex
    for route, extra in (("update", {"status": "FINISHED"}), ("delete", {}), ("restore", {})):
        status, body = _post(f"{base}/runs/{route}", {"run_id": unknown, **extra})
        assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST", (route, body)
        assert unknown in body["message"]

    reads = pipeline.client(writer.uri)
    wait_for(lambda: (r := _stored(reads, rid)) is not None and r.params == {"k": "1"}, 60,
             "the writer to apply the run")
    run = reads.get_run(rid)
    assert (run.info.status, run.info.run_name, run.info.lifecycle_stage) == \
        ("FINISHED", "renamed", "active")
    assert writer.metric("metricflow_writer_record_errors_total") == 0


def test_grpc_update_run_through_an_ingest_node(pipeline: Pipeline) -> None:
    """UpdateRun through an ingest node without --clickhouse: a run created through the
    writer's MLflow API a moment ago is found through --query-upstream; an unknown run
    is NOT_FOUND instead of being accepted and dropped by the writer."""
    writer = pipeline.writer()
    ingest = pipeline.ingest("--query-upstream", f"127.0.0.1:{writer.grpc_port}",
                             "--auth-run-wait-s", "1")
    base = f"http://127.0.0.1:{writer.http_port}/api/2.0/mlflow"
    status, body = _post(f"{base}/runs/create", {"experiment_id": "0"})
    assert status == 200, body
    rid = body["run"]["info"]["run_id"]
    c = pipeline.client(ingest.uri)
    c.set_terminated(rid, "FAILED")
    c.delete_run(rid)
    with pytest.raises(NotFound) as e:
        c.delete_run(uuid.uuid4().hex)
    assert "does not exist" in e.value.message
    reads = pipeline.client(writer.uri)
    wait_for(lambda: (r := _stored(reads, rid)) is not None
             and r.info.lifecycle_stage == "deleted", 60, "the writer to apply the delete")
    assert reads.get_run(rid).info.status == "FAILED"


def test_a_changed_param_is_refused_by_an_ingest_node_without_memory_of_it(
        pipeline: Pipeline) -> None:
    """The quickstart's ingest node has no --clickhouse: once its memory of a param is
    gone (here after 0 s; 5 minutes by default), or on another ingest node, the run's
    stored params are read through --query-upstream."""
    writer = pipeline.writer()
    upstream = ["--query-upstream", f"127.0.0.1:{writer.grpc_port}"]
    pipeline.env["METRICFLOW_PARAM_MEMORY_S"] = "0"
    forgetful = pipeline.ingest(*upstream)
    del pipeline.env["METRICFLOW_PARAM_MEMORY_S"]
    other = pipeline.ingest(*upstream)
    a, b = pipeline.client(forgetful.uri), pipeline.client(other.uri)
    rid = a.create_run("0").run_id
    a.log_params(rid, {"lr": "0.01", "layers": "4"})
    reads = pipeline.client(writer.uri)
    wait_for(lambda: (r := _stored(reads, rid)) is not None
             and r.params == {"lr": "0.01", "layers": "4"}, 60, "the writer to apply the params")
    for c in (a, b):
        with pytest.raises(InvalidArgument) as e:
            c.log_params(rid, {"lr": "0.02"})
        assert e.value.code is ErrorCode.INVALID_PARAMETER_VALUE
        assert "'lr'" in e.value.message and "'0.01'" in e.value.message
        c.log_params(rid, {"lr": "0.01", "layers": "4"})  # the same values are fine
    wait_for(lambda: writer.stats()["consumer_lag"] == 0, 30, "the writer to catch up")
    assert reads.get_run(rid).params == {"lr": "0.01", "layers": "4"}
    assert writer.metric("metricflow_writer_record_errors_total") == 0


def test_a_child_run_inherits_a_parent_created_through_another_node(
        pipeline: Pipeline) -> None:
    """Parent created through the writer's MLflow API, child through the ingest node
    without an experiment: the child lands in the parent's experiment; an unknown parent
    is NOT_FOUND naming it (never the Default experiment)."""
    writer = pipeline.writer()
    ingest = pipeline.ingest("--query-upstream", f"127.0.0.1:{writer.grpc_port}",
                             "--auth-run-wait-s", "1")
    base = f"http://127.0.0.1:{writer.http_port}/api/2.0/mlflow"
    status, body = _post(f"{base}/experiments/create", {"name": "parents"})
    assert status == 200, body
    eid = body["experiment_id"]
    assert eid != "0"
    status, body = _post(f"{base}/runs/create", {"experiment_id": eid})
    assert status == 200, body
    parent = body["run"]["info"]["run_id"]

    before = mf.get_tracking_uri()
    mf.set_tracking_uri(ingest.uri)
    try:
        with mf.start_run(parent_run_id=parent) as child:
            mf.log_params({"lr": 0.1})
        assert child.run.info.experiment_id == eid
    finally:
        mf.set_tracking_uri(before)
    c = pipeline.client(ingest.uri)
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound) as e:
        c.create_run("", parent_run_id=missing)
    assert missing in e.value.message and "experiment_id" in e.value.message
    reads = pipeline.client(writer.uri)
    wait_for(lambda: _stored(reads, child.run.run_id) is not None, 60,
             "the writer to apply the child")
    assert reads.get_run(child.run.run_id).info.experiment_id == eid
