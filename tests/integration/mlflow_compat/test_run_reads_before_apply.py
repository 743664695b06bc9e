"""MLflow's client reads a run before it ends it (set_terminated -> GET runs/get): a run
created through this server is answered from what was acknowledged, without waiting
for the embedded sink to apply its records to the store (ingest/_hot_runs.py)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from mlflow.entities import Metric, Param, RunTag


def _hold_applier(live: Any) -> tuple[threading.Event, Any]:
    sink = live.server.components.sink
    gate = threading.Event()
    real = sink.applier.apply

    def held(*a: Any, **k: Any) -> Any:
        gate.wait(60)
        return real(*a, **k)

    sink.applier.apply = held
    return gate, lambda: setattr(sink.applier, "apply", real)


def test_a_run_is_read_whole_while_the_store_has_not_applied_it(mf_live: Any,
                                                                 mlclient: Any) -> None:
    exp = mlclient.create_experiment(f"unapplied-{time.time_ns()}")
    sink = mf_live.server.components.sink
    gate, restore = _hold_applier(mf_live)
    try:
        t0 = time.monotonic()
        rid = mlclient.create_run(exp, run_name="held", tags={"team": "a"}).info.run_id
        mlclient.log_batch(rid, params=[Param("lr", "0.1")],
                           tags=[RunTag("stage", "x")],
                           metrics=[Metric("loss", 0.5, 1000, 0), Metric("loss", 0.25, 1001, 1)])
        run = mlclient.get_run(rid)
        assert run.info.run_name == "held" and run.info.status == "RUNNING"
        assert run.data.params == {"lr": "0.1"}
        assert run.data.tags["team"] == "a" and run.data.tags["stage"] == "x"
        assert run.data.tags["mlflow.runName"] == "held"
        assert run.data.metrics == {"loss": 0.25}
        mlclient.set_terminated(rid, "FINISHED")  # reads the run first (its URL line)
        ended = mlclient.get_run(rid)
        assert ended.info.status == "FINISHED" and ended.info.end_time
        # Params stay immutable while nothing is applied: a second value is refused.
        try:
            mlclient.log_param(rid, "lr", "0.2")
            raise AssertionError("a changed param was accepted")
        except Exception as e:
            assert "lr" in str(e)
        assert mlclient.get_run(rid).data.params == {"lr": "0.1"}
        took = time.monotonic() - t0
        assert sink._applied_seq < sink._logged_seq  # still held: nothing applied
    finally:
        gate.set()
        restore()
    assert took < 20  # no read waited for the held apply (30 s barrier timeout)
    # Once applied, the store answers the same (a search reads the store).
    found = mlclient.search_runs([exp], filter_string="params.lr = '0.1'")
    assert [r.info.run_id for r in found] == [rid]
    assert found[0].info.status == "FINISHED" and found[0].data.metrics == {"loss": 0.25}
    assert found[0].data.tags == ended.data.tags


def test_runs_get_from_memory_equals_runs_get_from_the_store(mf_live: Any,
                                                              mlclient: Any) -> None:
    """The same run answered from memory and, once forgotten there, from the store."""
    exp = mlclient.create_experiment(f"hot-vs-store-{time.time_ns()}")
    sink = mf_live.server.components.sink
    parent = mlclient.create_run(exp).info.run_id
    rid = mlclient.create_run(exp, run_name="twin", tags={"mlflow.parentRunId": parent,
                                                          "team": "b"}).info.run_id
    mlclient.log_batch(rid, params=[Param(f"p{i}", str(i)) for i in range(5)],
                       tags=[RunTag("t", "1"), RunTag("u", "2")],
                       metrics=[Metric("m", float(s), 1000 + s, s) for s in range(10)]
                       + [Metric("n", float("nan"), 5, 3), Metric("m", -1.0, 2000, 9)])
    mlclient.delete_tag(rid, "u")
    mlclient.set_tag(rid, "mlflow.runName", "twin2")
    mlclient.set_terminated(rid, "KILLED")
    assert sink.hot_run(rid) is not None
    from_memory = mlclient.get_run(rid).to_dictionary()
    sink.hot.forget([rid])
    from_store = mlclient.get_run(rid).to_dictionary()
    # (as text: NaN != NaN)
    assert json.dumps(from_memory, sort_keys=True) == json.dumps(from_store, sort_keys=True)
    assert from_memory["info"]["run_name"] == "twin2"
    assert from_memory["info"]["status"] == "KILLED"
    assert "u" not in from_memory["data"]["tags"]
