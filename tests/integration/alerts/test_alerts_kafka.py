"""The `metricflow alerts` role on real Kafka: its own consumer group on the ingest topic
fires on points produced through an ingest node, and the writers keep their group.

Processes: writer (chDB, --serve-query: /api/v1 for rules and webhooks), ingest, alerts
(no data plane: runs are known from the log's run records); one SQLite control plane.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from alerts_support import Proc, Receiver, wait_for

import metricflow as mf
from metricflow.alerts import EvaluatorConfig, verify


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str,
          kafka_topic_prefix: str) -> Iterator[dict[str, Proc]]:
    tmp = tmp_path_factory.mktemp("alerts-kafka")
    env = dict(os.environ)
    env["METRICFLOW_METADATA_URI"] = f"sqlite:///{tmp}/metadata.db"
    env.pop("METRICFLOW_ALERTS_NICE", None)  # the role's default is under test
    kafka = ["--kafka", kafka_bootstrap, "--topic",
             f"{kafka_topic_prefix}alerts-{uuid.uuid4().hex[:8]}", "--partitions", "2"]
    out: dict[str, Proc] = {}
    try:
        out["writer"] = Proc("writer", [*kafka, "--clickhouse", f"chdb://{tmp}/ch",
                                        "--serve-query", "--linger-ms", "50"],
                             tmp / "writer.log", env)
        out["ingest"] = Proc("ingest", kafka, tmp / "ingest.log", env)
        out["alerts"] = Proc("alerts", kafka, tmp / "alerts.log", env)
        wait_for(out["alerts"].ready, 60, "the alerts role's partitions")
        yield out
    finally:
        for p in reversed(list(out.values())):
            p.stop()


def test_alerts_role_fires_and_resolves_on_points_through_an_ingest_node(
        roles: dict[str, Proc]) -> None:
    api = roles["writer"]
    rcv = Receiver()
    try:
        hook = api.api("POST", "/webhooks/create", {
            "url": rcv.url, "events": ["alert.firing", "alert.resolved"], "secret": "kk" * 8})
        api.api("POST", "/alerts/rules/create", {
            "name": "diverging", "experiment_ids": ["0"], "severity": "error",
            "condition": {"type": "threshold", "metric": "loss", "op": ">", "value": 100},
            "channels": [hook["webhook"]["webhook_id"]]})
        api.api("POST", "/alerts/rules/create", {
            "name": "nan", "experiment_ids": ["0"],
            "condition": {"type": "nonfinite", "metric": "loss"}})
        with mf.Client(roles["ingest"].uri, linger_ms=10) as c:
            run = c.create_run("0").info.run_id
            # the alerts role asks whether rules changed every rules_poll_s (on its tick)
            time.sleep(EvaluatorConfig().rules_poll_s + EvaluatorConfig().tick_s + 1.0)
            for s in range(50):
                c.log_metrics(run, {"loss": 1.0 / (s + 1)}, step=s)
            c.flush()
            c.log_metrics(run, {"loss": 1e6}, step=50)
            c.flush()
            fired = wait_for(lambda: rcv.events("alert.firing"), 30, "alert.firing")
            assert fired[0]["data"]["run_id"] == run
            assert fired[0]["data"]["title"] == "diverging"
            c.log_metrics(run, {"loss": float("nan")}, step=51)
            c.flush()
            wait_for(lambda: len(rcv.events("alert.firing")) == 2, 30, "NaN firing")
            c.log_metrics(run, {"loss": 0.5}, step=52)
            c.flush()
            wait_for(lambda: len(rcv.events("alert.resolved")) == 2, 30, "both resolved")
        assert all(verify("kk" * 8, g["headers"], g["body"]) for g in rcv.got)
        # exactly once each, though three processes deliver from the same outbox
        ids = [g["json"]["delivery_id"] for g in rcv.got]
        assert len(ids) == len(set(ids)) == 4
    finally:
        rcv.close()


def test_writers_keep_their_group(roles: dict[str, Proc]) -> None:
    # The writer still applies what the alerts role also read: the run is queryable.
    api = roles["writer"]
    with mf.Client(roles["ingest"].uri, linger_ms=10) as c:
        run = c.create_run("0").info.run_id
        c.log_metrics(run, {"x": 1.0}, step=0)
        c.flush()
    with mf.Client(api.uri) as q:
        got = wait_for(lambda: q.get_run(run), 30, "the run through the writer")
    assert got.info.run_id == run


def _nice_of_threads(pid: int) -> set[int]:
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        out.add(int(fields[16]))  # stat field 19, nice: the 17th after the name's ")"
    return out


def test_the_alerts_role_yields_the_cpu_to_the_writers(roles: dict[str, Proc]) -> None:
    """Every thread of the alerts role runs at nice 19 (METRICFLOW_ALERTS_NICE, --nice);
    the writer and the ingest node keep this process's value (chDB sets some of its own
    threads' values in the writer)."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert ours < 19, "the tests run at nice 19: this test cannot tell the role's value"
    assert _nice_of_threads(roles["alerts"].proc.pid) == {19}
    for role in ("writer", "ingest"):
        nices = _nice_of_threads(roles[role].proc.pid)
        assert ours in nices and 19 not in nices, (role, nices)
