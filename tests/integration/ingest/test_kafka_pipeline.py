"""The distributed write path against a real Apache Kafka broker.

clients -> `metricflow ingest` (KafkaSink) -> Kafka -> `metricflow writer` -> chDB

The writer owns the chDB directory (one process per data dir), so it runs as a
subprocess with `--serve-query`, and the tests read through that query API:
an exact, deduplicated count and the sum of values (`count_points`).
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from kafka_roles import Plan, RoleProc, child_env, log_plan, wait_for

import metricflow as mf
from metricflow.client._accumulator import POINT_BYTES

pytestmark = pytest.mark.timeout(180)


class Pipeline:
    """A topic, a chDB dir, and the role processes of one test."""

    def __init__(self, tmp: Path, bootstrap: str, topic: str) -> None:
        self.tmp, self.bootstrap, self.topic = tmp, bootstrap, topic
        self.control = tmp / "control"
        self.control.mkdir()
        self.env = child_env(tmp)
        self.procs: list[RoleProc] = []
        self.clients: list[mf.Client] = []

    def kafka_args(self) -> list[str]:
        return ["--kafka", self.bootstrap, "--topic", self.topic, "--partitions", "4"]

    def writer(self, *extra: str, ch: str = "ch") -> RoleProc:
        p = RoleProc("writer", [*self.kafka_args(), "--clickhouse", f"chdb://{self.tmp}/{ch}",
                                "--serve-query", "--linger-ms", "50", "--max-rows", "20000",
                                *extra], self.control, self.env, self.tmp / f"writer-{ch}.log")
        self.procs.append(p)
        return p

    def ingest(self, *extra: str) -> RoleProc:
        p = RoleProc("ingest", [*self.kafka_args(), *extra], self.control, self.env,
                     self.tmp / "ingest.log")
        self.procs.append(p)
        return p

    def client(self, uri: str, **kw: object) -> mf.Client:
        c = mf.Client(uri, linger_ms=20, **kw)  # type: ignore[arg-type]
        self.clients.append(c)
        return c

    def create_runs(self, client: mf.Client, plan: Plan) -> None:
        plan.run_ids = [client.create_run("0", run_name=f"r{i}").run_id
                        for i in range(plan.runs)]

    def close(self) -> None:
        for c in self.clients:
            c.close(timeout=5)
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def pipeline(tmp_path: Path, kafka_bootstrap: str, kafka_topic_prefix: str) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path, kafka_bootstrap, f"{kafka_topic_prefix}{uuid.uuid4().hex[:8]}")
    yield p
    p.close()


def assert_exact(reads: mf.Client, plan: Plan) -> None:
    count, total = reads.count_points(plan.run_ids)
    assert count == plan.points, f"stored {count} points, sent {plan.points}"
    assert total == pytest.approx(plan.checksum, rel=1e-12), "sum of values differs"


def test_writer_sigkill_then_full_replay_shows_every_point_once(pipeline: Pipeline) -> None:
    # Inserts of 0.3 s each from a quarter to all points: the poll below always sees the
    # writer mid-stream, even when it starts late and works through a backlog at once.
    (pipeline.control / "slow").write_text("0.3")
    writer = pipeline.writer()
    ingest = pipeline.ingest()
    c = pipeline.client(ingest.uri)
    plan = Plan(runs=4, steps=4000, keys=10)  # 160k points
    pipeline.create_runs(c, plan)
    c.log_params(plan.run_ids[0], {"lr": "0.01", "layers": "4"})
    logger = threading.Thread(target=log_plan, args=(c, plan, 200, 0.05))
    logger.start()
    wait_for(lambda: writer.stats()["points_written"] >= plan.points // 4, 60,
             "the writer to insert a quarter of the points")
    before_kill = writer.stats()["points_written"]
    writer.kill()  # SIGKILL mid-stream: the last insert may be in ClickHouse, uncommitted
    assert before_kill < plan.points, "the kill must happen mid-stream"
    (pipeline.control / "slow").unlink()
    logger.join(120)
    assert not logger.is_alive()
    for rid in plan.run_ids:
        c.set_terminated(rid)  # acked by Kafka while no writer runs

    writer = pipeline.writer()  # same group, same chDB dir: resumes at the committed offsets
    reads = pipeline.client(writer.uri)
    wait_for(lambda: reads.count_points(plan.run_ids)[0] >= plan.points, 60, "all points")
    wait_for(lambda: writer.stats()["consumer_lag"] == 0, 30, "the writer to catch up")
    assert_exact(reads, plan)
    replayed = before_kill + writer.stats()["points_written"] - plan.points
    writer.stop()

    # Replay the whole log into the same tables under a new group: every point,
    # run update and param is delivered a second time.
    writer = pipeline.writer("--group", "replay-everything")
    reads = pipeline.client(writer.uri)
    wait_for(lambda: writer.stats()["points_written"] >= plan.points, 60, "the full replay")
    assert_exact(reads, plan)
    run = reads.get_run(plan.run_ids[0])
    assert run.params == {"lr": "0.01", "layers": "4"}
    assert all(reads.get_run(r).info.status == "FINISHED" for r in plan.run_ids)
    assert writer.metric("metricflow_writer_record_errors_total") == 0
    print(f"points inserted twice before dedup: {replayed} after the kill, "
          f"{plan.points} in the full replay")


def test_a_writer_joining_the_group_mid_stream_loses_no_point(pipeline: Pipeline) -> None:
    # Two writers of one group, each on its own chDB dir (a dir belongs to one process).
    # The join moves partitions while the first writer has messages pending and inserts
    # running; a point may then be in both stores (inserted, not yet committed, replayed
    # by the new owner) but must be in at least one, with the value logged.
    (pipeline.control / "slow").write_text("0.2")
    first = pipeline.writer()
    ingest = pipeline.ingest()
    c = pipeline.client(ingest.uri)
    plan = Plan(runs=4, steps=3000, keys=5)  # 60k points, logged over about 12 s
    # One run per partition, so whichever partitions the join moves carry points (random
    # run ids left both of a writer's partitions empty in about 1 of 8 runs).
    plan.run_ids = runs_covering_partitions(c, 4)
    logger = threading.Thread(target=log_plan, args=(c, plan, 25, 0.1))
    logger.start()
    wait_for(lambda: first.stats()["points_written"] > 0, 60, "the first writer's inserts")
    second = pipeline.writer(ch="ch_b")
    assert first.stats()["points_written"] < plan.points, "the join must happen mid-stream"
    wait_for(lambda: first.metric("metricflow_writer_rebalances_total", 'event="revoked"') > 0,
             60, "the first writer to give up partitions")
    assert logger.is_alive(), "the rebalance must happen while clients log"
    logger.join(120)
    assert not logger.is_alive()
    (pipeline.control / "slow").unlink()
    stores = [pipeline.client(w.uri) for w in (first, second)]
    caught_up_since = None  # both committed all: then a lost point stays lost
    deadline = time.monotonic() + 90
    while sum(r.count_points(plan.run_ids)[0] for r in stores) < plan.points:
        if all(w.stats()["consumer_lag"] == 0 for w in (first, second)):
            caught_up_since = caught_up_since or time.monotonic()
            if time.monotonic() - caught_up_since > 3:
                break  # the check below names the points that are in no store
        else:
            caught_up_since = None
        assert time.monotonic() < deadline, "the writers did not catch up"
        time.sleep(0.2)
    assert all(r.count_points(plan.run_ids)[0] > 0 for r in stores), "no partition moved"
    for r, run_id in enumerate(plan.run_ids):
        want = plan.values(r)
        for k in range(plan.keys):
            seen = np.full(plan.steps, np.nan)
            for reads in stores:
                h = reads.get_metric_history(run_id, f"m{k}")
                seen[h.steps] = h.values
            missing = np.flatnonzero(np.isnan(seen))
            assert missing.size == 0, f"run {r} m{k}: steps {missing[:10]} in no store"
            np.testing.assert_array_equal(seen, want[:, k])


def runs_covering_partitions(client: mf.Client, partitions: int) -> list[str]:
    """Create runs until each partition holds one (the ingest node keys by run id, and
    Kafka's default partitioner picks murmur2(key) mod partitions); one run id per partition."""
    from aiokafka.partitioner import murmur2

    by_partition: dict[int, str] = {}
    for i in range(200):
        run_id = client.create_run("0", run_name=f"r{i}").run_id
        by_partition.setdefault((murmur2(run_id.encode()) & 0x7FFFFFFF) % partitions, run_id)
        if len(by_partition) == partitions:
            return [by_partition[p] for p in range(partitions)]
    raise AssertionError(f"200 runs did not cover {partitions} partitions")


def test_broker_restart_while_clients_log_loses_nothing(tmp_path: Path,
                                                        kafka_topic_prefix: str) -> None:
    if not shutil.which("java"):
        pytest.skip("needs java to run a restartable local broker")
    from metricflow.devservices import KafkaBroker

    with KafkaBroker() as broker:
        pipeline = Pipeline(tmp_path, broker.bootstrap, f"{kafka_topic_prefix}restart")
        try:
            writer = pipeline.writer()
            # aiokafka holds unacked batches across the outage; a 1 MiB in-flight bound
            # makes ingest push back (RESOURCE_EXHAUSTED), so client retries are exercised.
            ingest = pipeline.ingest("--inflight-mb", "1")
            c = pipeline.client(ingest.uri, block_timeout_s=120.0)
            plan = Plan(runs=3, steps=6000, keys=10)  # 180k points over several seconds
            pipeline.create_runs(c, plan)
            logger = threading.Thread(target=log_plan, args=(c, plan, 100, 0.05))
            logger.start()
            wait_for(lambda: writer.stats()["points_written"] > 0, 60, "first inserts")
            broker.stop(signal.SIGKILL)
            time.sleep(4.0)  # clients keep logging into their buffers; ingest acks fail
            broker.start()
            logger.join(150)
            assert not logger.is_alive(), "clients did not finish after the broker came back"
            reads = pipeline.client(writer.uri)
            wait_for(lambda: reads.count_points(plan.run_ids)[0] >= plan.points, 90,
                     "all points after the restart")
            assert_exact(reads, plan)
            assert c.dropped_points == 0
            assert ingest.metric("metricflow_ingest_rejected_total",
                                 'reason="kafka_inflight_full"') > 0, "no client was pushed back"
            slow = ingest.metric("metricflow_kafka_produce_seconds_count") - ingest.metric(
                "metricflow_kafka_produce_seconds_bucket", 'le="2.5"')
            assert slow > 0, "no produce waited out the broker restart"
        finally:
            pipeline.close()


def test_log_batch_with_metrics_reaches_the_store(pipeline: Pipeline) -> None:
    """The unary LogBatch RPC (params, tags and metric columns at once) in Kafka mode."""
    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb
    from metricflow._wire import encode_metrics

    writer = pipeline.writer()
    c = pipeline.client(pipeline.ingest().uri)
    run = c.create_run("0", run_name="unary").run_id
    req = ipb.LogBatchRequest(run_id=run, params=[ipb.Param(key="lr", value="0.1")],
                              client_id="unary-test", seq=1)
    steps = np.arange(500, dtype=np.int64)
    encode_metrics(req.metrics, ["loss", "acc"], np.tile([0, 1], 250).astype(np.int32),
                   steps, steps + 1_000, np.arange(500, dtype=np.float64))
    c._call("/metricflow.ingest.v1.IngestService/LogBatch", req, ipb.LogBatchResponse)
    reads = pipeline.client(writer.uri)
    wait_for(lambda: reads.count_points([run])[0] >= 500, 60, "the LogBatch points")
    assert reads.count_points([run]) == (500, pytest.approx(float(sum(range(500)))))
    assert reads.get_run(run).params == {"lr": "0.1"}


def test_clickhouse_outage_lag_grows_then_drains(pipeline: Pipeline) -> None:
    writer = pipeline.writer()
    ingest = pipeline.ingest()
    c = pipeline.client(ingest.uri)
    plan = Plan(runs=2, steps=3000, keys=10)
    pipeline.create_runs(c, plan)
    # lag 0 alone can hold before the writer consumed anything: wait for its commit
    wait_for(lambda: writer.metric("metricflow_writer_commits_total") >= 1
             and writer.stats()["consumer_lag"] == 0, 30, "run records inserted")
    (pipeline.control / "outage").touch()  # every ClickHouse call now fails
    log_plan(c, plan)  # acked: the data is in Kafka even though ClickHouse is down
    wait_for(lambda: writer.stats()["consumer_lag"] > 0, 20, "lag to appear")
    wait_for(lambda: writer.metric("metricflow_writer_insert_failures_total") >= 2, 20,
             "failed inserts with backoff")
    lag = writer.stats()["consumer_lag"]
    time.sleep(1.5)
    st = writer.stats()
    assert st["in_backoff"] and st["consumer_lag"] >= lag, "lag must hold while CH is down"
    assert writer.metric("metricflow_writer_commits_total") >= 1
    (pipeline.control / "outage").unlink()
    reads = pipeline.client(writer.uri)
    wait_for(lambda: writer.stats()["consumer_lag"] == 0
             and not writer.stats()["in_backoff"], 60, "lag to drain")
    assert_exact(reads, plan)


def test_overload_keeps_every_buffer_bounded_and_loses_nothing(pipeline: Pipeline) -> None:
    # Writer drains far slower than clients: 0.5 s per insert of at most 1 MB. And the
    # broker acks each message 0.2 s late, so the ingest node's 1 MiB in-flight bound
    # fills whatever this machine's speed (without it, a fast producer kept up in CI).
    (pipeline.control / "slow").write_text("0.5")
    (pipeline.control / "slow_kafka").write_text("0.2")
    writer = pipeline.writer("--max-mb", "1")
    ingest = pipeline.ingest("--inflight-mb", "1")
    buffer_bytes = 1 << 20
    clients = [pipeline.client(ingest.uri, buffer_bytes=buffer_bytes, batch_points=4096)
               for _ in range(3)]
    plans = [Plan(runs=2, steps=5000, keys=10, seed=100 + i) for i in range(3)]
    for cl, plan in zip(clients, plans):
        pipeline.create_runs(cl, plan)
    rss: dict[str, float] = {"ingest": 0.0, "writer": 0.0}
    threads = [threading.Thread(target=log_plan, args=(cl, p)) for cl, p in zip(clients, plans)]
    for t in threads:
        t.start()
    max_lag = 0  # the writer measures lag once a second: keep the largest sample
    while any(t.is_alive() for t in threads):
        rss["ingest"] = max(rss["ingest"], ingest.rss_mb())
        rss["writer"] = max(rss["writer"], writer.rss_mb())
        max_lag = max(max_lag, writer.stats()["consumer_lag"])
        time.sleep(0.2)
    for _ in range(10):  # and for a moment after the last ack
        max_lag = max(max_lag, writer.stats()["consumer_lag"])
        time.sleep(0.2)
    (pipeline.control / "slow").unlink()
    (pipeline.control / "slow_kafka").unlink()
    reads = pipeline.client(writer.uri)
    all_ids = [r for p in plans for r in p.run_ids]
    total = sum(p.points for p in plans)
    wait_for(lambda: reads.count_points(all_ids)[0] >= total, 90, "the backlog to drain")
    for p in plans:
        assert_exact(reads, p)
    # Client: its buffer never exceeded the bound, nothing was dropped.
    for cl in clients:
        assert cl._acc.peak_used_bytes <= buffer_bytes
        assert cl.dropped_points == 0
    # Ingest: in-flight bytes stayed under the bound, except that an idle node always
    # takes one batch: at most one client buffer of points, 28 wire bytes per point for
    # every POINT_BYTES the client counts, plus its key dictionary.
    one_batch = buffer_bytes * 28 // POINT_BYTES + (64 << 10)
    assert ingest.metric("metricflow_kafka_inflight_peak_bytes") <= max(1 << 20, one_batch)
    assert ingest.metric("metricflow_ingest_rejected_total", 'reason="kafka_inflight_full"') > 0
    # Writer: pending bytes bounded by max_bytes plus one fetch; the backlog waited in Kafka.
    assert writer.stats()["peak_pending_bytes"] <= 1 * 2**20 + 32 * 2**20
    assert max_lag > 0, "the writer should have been behind while clients logged"
    assert rss["ingest"] < 600 and rss["writer"] < 1500, rss


def _post(url: str, body: dict) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _params(reads: mf.Client, run_id: str) -> dict[str, str] | None:
    """The run's stored params; None while the writer has not applied the run."""
    from metricflow.errors import NotFound

    try:
        return reads.get_run(run_id).params
    except NotFound:
        return None


def test_a_changed_param_is_refused_at_the_call_through_an_ingest_node(
        pipeline: Pipeline) -> None:
    """Issue 22 item 1: the fluent client learns of the conflict in distributed mode."""
    from metricflow.errors import ErrorCode, InvalidArgument

    writer = pipeline.writer()
    ingest = pipeline.ingest()
    before = mf.get_tracking_uri()
    mf.set_tracking_uri(ingest.uri)
    try:
        with mf.start_run() as run:
            mf.log_params({"lr": 0.01, "layers": 4})
            mf.log_params({"lr": 0.01})  # the same value again is fine
            with pytest.raises(InvalidArgument) as e:
                mf.log_params({"lr": 0.02, "extra": 1})
            assert e.value.code is ErrorCode.INVALID_PARAMETER_VALUE
            assert "'lr'" in e.value.message and "'0.01'" in e.value.message
        rid = run.run.run_id
    finally:
        mf.set_tracking_uri(before)
    reads = pipeline.client(writer.uri)
    wait_for(lambda: _params(reads, rid) == {"lr": "0.01", "layers": "4"}, 60,
             "the writer to apply the params")
    wait_for(lambda: writer.stats()["consumer_lag"] == 0, 30, "the writer to catch up")
    # the refused call never reached the log ("extra" neither: all or nothing)
    assert reads.get_run(rid).params == {"lr": "0.01", "layers": "4"}
    assert writer.metric("metricflow_writer_record_errors_total") == 0
    # issue 22 item 8: a normal writer start logs no ERROR (GroupCoordinatorNotAvailable)
    # and no alembic INFO lines
    log = (pipeline.tmp / "writer-ch.log").read_text()
    assert " ERROR " not in log and "alembic" not in log, log


def test_a_changed_param_is_refused_by_the_mlflow_api_of_a_writer(pipeline: Pipeline) -> None:
    """Issue 22 item 1: `runs/log-parameter` with another value answers 400
    INVALID_PARAMETER_VALUE, before and after the writer applied the first value."""
    writer = pipeline.writer()
    base = f"http://127.0.0.1:{writer.http_port}/api/2.0/mlflow"
    status, body = _post(f"{base}/runs/create", {"experiment_id": "0"})
    assert status == 200, body
    rid = body["run"]["info"]["run_id"]
    assert _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "a", "value": "1"}) \
        == (200, {})
    assert _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "a", "value": "1"}) \
        == (200, {})
    status, body = _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "a", "value": "2"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    status, body = _post(f"{base}/runs/log-batch",
                         {"run_id": rid, "params": [{"key": "a", "value": "3"}]})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body

    # A new process remembers nothing: the stored value decides.
    reads = pipeline.client(writer.uri)
    wait_for(lambda: _params(reads, rid) == {"a": "1"}, 60, "the writer to apply a=1")
    writer.stop()
    writer = pipeline.writer()
    base = f"http://127.0.0.1:{writer.http_port}/api/2.0/mlflow"
    status, body = _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "a", "value": "2"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert "'1'" in body["message"]
    assert _post(f"{base}/runs/log-parameter", {"run_id": rid, "key": "a", "value": "1"}) \
        == (200, {})
    assert writer.metric("metricflow_writer_record_errors_total") == 0


def test_a_child_run_through_an_ingest_node_lands_in_its_parents_experiment(
        pipeline: Pipeline) -> None:
    """Issue 22 item 2 in distributed mode: the node knows the parent it created (the
    writer may not have applied it yet)."""
    writer = pipeline.writer()
    ingest = pipeline.ingest()
    c = pipeline.client(ingest.uri)
    reads = pipeline.client(writer.uri)
    eid = reads.get_or_create_experiment("children")
    parent = c.create_run(eid).run_id
    child = c.create_run("", parent_run_id=parent)
    assert child.info.experiment_id == eid
    wait_for(lambda: reads.search_runs([eid])[0] and len(reads.search_runs([eid])[0]) == 2,
             30, "both runs in the parent's experiment")
