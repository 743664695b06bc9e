"""Fluent API, nested runs, and several processes logging under one parent run."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import metricflow as mf
from metricflow.errors import InvalidState


@pytest.fixture()
def fluent(embedded_server):
    mf.set_tracking_uri(f"grpc://{embedded_server.target}")
    yield mf
    while mf.active_run() is not None:
        mf.end_run()


def test_fluent_nested_runs_and_experiment(fluent, embedded_server):
    exp_id = mf.set_experiment("fluent-demo")
    assert mf.set_experiment("fluent-demo") == exp_id  # get-or-create is idempotent
    with mf.start_run(run_name="parent") as parent:
        mf.log_param("lr", 0.1)
        mf.set_tag("kind", "sweep")
        with mf.start_run(run_name="child", nested=True) as child:
            mf.log_metrics({"loss": 0.5, "acc": 0.9}, step=3)
            assert mf.active_run().run_id == child.run.run_id
        assert mf.active_run().run_id == parent.run.run_id
        with pytest.raises(InvalidState, match="already active"):
            mf.start_run()
    p, c = mf.get_run(parent.run.run_id), mf.get_run(child.run.run_id)
    assert p.info.experiment_id == exp_id and p.info.status == "FINISHED"
    assert c.info.parent_run_id == p.info.run_id and c.tags["mlflow.parentRunId"] == p.run_id
    assert c.metrics["acc"].last_value == 0.9 and p.params == {"lr": "0.1"}
    assert mf.get_client().get_experiment_by_name("fluent-demo").experiment_id == exp_id


def test_failed_block_marks_run_failed(fluent):
    with pytest.raises(RuntimeError):
        with mf.start_run() as run:
            raise RuntimeError("boom")
    assert mf.get_run(run.run.run_id).info.status == "FAILED"


def _worker(uri: str, parent_id: str, idx: int, steps: int, q: mp.Queue) -> None:
    import metricflow as mf

    mf.set_tracking_uri(uri)
    rng = np.random.default_rng(idx)
    total = 0.0
    with mf.start_run(run_name=f"w{idx}", parent_run_id=parent_id) as run:
        mf.log_params({"worker": idx})
        for step in range(steps):
            vals = rng.random(20)
            total += float(vals.sum())
            mf.log_metrics({f"m{k}": float(v) for k, v in enumerate(vals)}, step=step)
    q.put((run.run.run_id, steps * 20, total))


def test_parallel_child_runs_lose_nothing(fluent, embedded_server):
    uri = f"grpc://{embedded_server.target}"
    with mf.start_run(run_name="parallel-parent") as parent:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(uri, parent.run.run_id, i, 2000, q))
                 for i in range(4)]
        for p in procs:
            p.start()
        results = [q.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
    store = embedded_server.server.store
    for run_id, n, total in results:
        count, s = store.count_points([run_id])
        assert count == n and s == pytest.approx(total, rel=1e-12)
        info = store.get_run_info(run_id)
        assert info.parent_run_id == parent.run.run_id and info.status == "FINISHED"


def test_fluent_search_and_history(fluent):
    exp = mf.set_experiment("fluent-search")
    with mf.start_run(run_name="s1") as r1:
        for step in range(10):
            mf.log_metric("loss", 1.0 / (step + 1), step=step)
    mf.flush()
    runs = mf.search_runs([exp])
    assert [r.run_id for r in runs] == [r1.run.run_id]
    h = mf.get_metric_history(r1.run.run_id, "loss")
    assert h.steps.tolist() == list(range(10))
    assert mf.get_tracking_uri().startswith("grpc://")
