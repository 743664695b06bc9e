"""A child run goes into its parent's experiment unless told otherwise (issue 22 item 2)."""

from __future__ import annotations

import threading

import pytest

import metricflow as mf
from metricflow.client import _fluent
from metricflow.errors import NotFound


def test_create_run_without_experiment_inherits_the_parents(client) -> None:
    exp = client.get_or_create_experiment("child-runs-a")
    parent = client.create_run(exp).run_id
    child = client.create_run("", parent_run_id=parent)
    assert child.info.experiment_id == exp
    stored = client.get_run(child.run_id)
    assert stored.info.experiment_id == exp
    assert stored.tags["mlflow.parentRunId"] == parent
    # told otherwise: the request's experiment wins
    assert client.create_run("0", parent_run_id=parent).info.experiment_id == "0"
    # no parent, no experiment: Default, as before
    assert client.create_run("").info.experiment_id == "0"


def test_create_run_with_an_unknown_parent_and_no_experiment_says_what_to_pass(client) -> None:
    with pytest.raises(NotFound, match="pass experiment_id"):
        client.create_run("", parent_run_id="f" * 32)


@pytest.fixture
def fluent(embedded_server):
    """The fluent API pointed at the test server, restored afterwards."""
    before = mf.get_tracking_uri()
    mf.set_tracking_uri(f"grpc://{embedded_server.target}")
    yield
    mf.set_tracking_uri(before)


def test_fluent_worker_given_a_parent_run_id_lands_in_the_parents_experiment(
        fluent, client, monkeypatch) -> None:
    # as examples/quickstart.py: the parent sets the experiment; a worker (here a thread
    # with no active experiment, as a spawned process has none) only gets the parent id.
    monkeypatch.delenv("METRICFLOW_EXPERIMENT_NAME", raising=False)
    exp = client.get_or_create_experiment("child-runs-b")
    parent = client.create_run(exp).run_id
    got: list[str] = []

    def worker() -> None:
        monkeypatch.setattr(_fluent, "_experiment_id", None)
        with mf.start_run(parent_run_id=parent) as run:
            got.append(run.info.experiment_id)
        with mf.start_run(parent_run_id=parent, experiment_id="0") as run:
            got.append(run.info.experiment_id)

    t = threading.Thread(target=worker)
    t.start()
    t.join(60)
    assert got == [exp, "0"]


def test_fluent_nested_run_takes_the_active_runs_experiment(fluent, client) -> None:
    exp = client.get_or_create_experiment("child-runs-c")
    with mf.start_run(experiment_id=exp) as outer:
        with mf.start_run(nested=True) as inner:
            assert inner.info.experiment_id == exp
            assert client.get_run(inner.run.run_id).tags["mlflow.parentRunId"] \
                == outer.run.run_id
