"""End to end through the real gRPC server, chDB store and SQLite control plane."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from metricflow.errors import InvalidArgument, InvalidState, NotFound


def test_run_lifecycle_params_tags_metrics(client):
    run = client.create_run("0", run_name="lifecycle", tags={"team": "a"})
    rid = run.run_id
    assert run.info.status == "RUNNING" and run.info.run_name == "lifecycle"
    client.log_batch(rid, params={"lr": 0.01, "layers": 3}, tags={"stage": "dev"})
    for step in range(50):
        client.log_metrics(rid, {"loss": 1.0 / (step + 1), "acc": step / 50}, step=step)
    client.log_metric(rid, "extra", 7.0)
    client.set_terminated(rid, "FINISHED")
    got = client.get_run(rid)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.params == {"lr": "0.01", "layers": "3"}
    assert got.tags["team"] == "a" and got.tags["stage"] == "dev"
    assert got.tags["mlflow.runName"] == "lifecycle"
    loss = got.metrics["loss"]
    assert (loss.last_step, loss.count) == (49, 50)
    assert loss.last_value == pytest.approx(1 / 50)
    assert loss.min_value == pytest.approx(1 / 50) and loss.max_value == 1.0
    assert got.metrics["extra"].last_step == 0


def test_params_are_immutable_but_relogging_same_value_is_fine(client):
    rid = client.create_run("0").run_id
    client.log_param(rid, "lr", "0.1")
    client.log_param(rid, "lr", "0.1")
    with pytest.raises(InvalidArgument, match="immutable"):
        client.log_params(rid, {"lr": "0.2", "other": "x"})
    # the failed call stored nothing, not even its valid part
    assert client.get_run(rid).params == {"lr": "0.1"}


def test_tags_last_write_wins_and_delete(client):
    rid = client.create_run("0").run_id
    client.set_tag(rid, "t", "1")
    client.set_tag(rid, "t", "2")
    assert client.get_run(rid).tags["t"] == "2"
    client.delete_tag(rid, "t")
    assert "t" not in client.get_run(rid).tags


def test_nan_inf_stored_faithfully_and_history_pages(client):
    rid = client.create_run("0").run_id
    vals = [float("nan"), float("inf"), float("-inf"), 0.5]
    for i, v in enumerate(vals):
        client.log_metric(rid, "weird", v, step=i)
    for step in range(1000):
        client.log_metric(rid, "long", float(step), step=step)
    client.flush()
    h = client.get_metric_history(rid, "weird")
    assert math.isnan(h.values[0]) and h.values[1] == math.inf and h.values[2] == -math.inf
    paged = client.get_metric_history(rid, "long", page_size=128)
    assert paged.steps.tolist() == list(range(1000))
    assert np.array_equal(paged.values, np.arange(1000.0))


def test_bad_input_gets_clear_errors(client):
    rid = client.create_run("0").run_id
    with pytest.raises(InvalidArgument, match="limit is 250"):
        client.log_metric(rid, "k" * 251, 1.0)
    with pytest.raises(InvalidArgument, match="limit is 6000"):
        client.log_param(rid, "p", "x" * 6001)
    with pytest.raises(NotFound):
        client.log_param("0" * 32, "p", "1")
    with pytest.raises(NotFound):
        client.get_run("f" * 32)
    with pytest.raises(NotFound):
        client.create_run("424242")
    with pytest.raises(InvalidArgument, match="run_id"):
        client.get_run("not-a-run-id")


def test_deleted_run_refuses_logging_until_restored(client):
    rid = client.create_run("0").run_id
    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidState):
        client.log_param(rid, "a", "1")
    client.restore_run(rid)
    client.log_param(rid, "a", "1")
    assert client.get_run(rid).params == {"a": "1"}


def test_deleted_experiment_refuses_new_runs(client, embedded_server):
    meta = embedded_server.server.metadata
    exp_id = meta.create_experiment(f"doomed-{time.time_ns()}")
    client.create_run(exp_id)
    meta.delete_experiment(exp_id)
    with pytest.raises(InvalidState, match="deleted"):
        client.create_run(exp_id)


def test_search_lists_runs_of_experiment(client, embedded_server):
    exp_id = embedded_server.server.metadata.create_experiment(f"search-{time.time_ns()}")
    ids = {client.create_run(exp_id).run_id for _ in range(5)}
    runs, token = client.search_runs([exp_id], max_results=3)
    runs2, token2 = client.search_runs([exp_id], max_results=3, page_token=token)
    assert len(runs) == 3 and token and not token2
    assert {r.run_id for r in runs + runs2} == ids


def test_rename_and_status_updates(client):
    rid = client.create_run("0", run_name="before").run_id
    client.update_run(rid, run_name="after")
    got = client.get_run(rid)
    assert got.info.run_name == "after" and got.tags["mlflow.runName"] == "after"
    client.update_run(rid, status="KILLED")
    got = client.get_run(rid)
    assert got.info.status == "KILLED" and got.info.end_time is not None
    client.update_run(rid, status="RUNNING")  # resuming clears the end time
    assert client.get_run(rid).info.end_time is None


def test_unknown_status_is_a_clear_error(client):
    rid = client.create_run("0").run_id
    with pytest.raises(InvalidArgument, match="status must be one of"):
        client.update_run(rid, status="PAUSED")
