"""metricflow.integrations.optuna against the embedded server (issue 15 item 3).

Each test reads back what the server stored and compares it with what Optuna itself
recorded for the study: trial runs, params, values, states, intermediate values by
step, and the study run's best-trial summary.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest

from metricflow.integrations.optuna import MetricflowCallback, study_run_id_for
from metricflow.integrations.optuna._study_run import safe_key

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def uri(embedded_server) -> str:
    return f"grpc://{embedded_server.target}"


def _children(client, exp: str, parent: str) -> dict[int, object]:
    runs, token = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'",
                                     max_results=1000)
    assert token == ""
    by_number = {int(r.tags["optuna.trial_number"]): r for r in runs}
    assert len(by_number) == len(runs), "two runs for one trial"
    return by_number


def _study_runs(client, exp: str, study_name: str) -> list:
    """The study's study runs (its trial runs carry the study name too)."""
    runs, _ = client.search_runs([exp], f"tags.optuna.study_name = '{study_name}' AND "
                                 "tags.optuna.kind = 'study'", max_results=1000)
    return runs


def _check_trials(client, exp: str, study: optuna.Study, names: list[str]) -> dict:
    """Every finished trial is one child run of the one study run, as Optuna recorded it."""
    [parent] = _study_runs(client, exp, study.study_name)
    assert parent.run_id == study_run_id_for(exp, study)
    assert parent.info.parent_run_id is None
    kids = _children(client, exp, parent.run_id)
    assert {r.tags["optuna.kind"] for r in kids.values()} == {"trial"}
    trials = study.get_trials()
    assert sorted(kids) == [t.number for t in trials]
    status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
    for t in trials:
        run = kids[t.number]
        assert run.info.status == status[t.state.name], t.number
        assert run.tags["optuna.state"] == t.state.name
        assert run.params == {safe_key(k): str(v) for k, v in t.params.items()}
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert {n: run.metrics[n].last_value for n in names} == dict(zip(names, t.values))
        else:
            assert not set(names) & set(run.metrics), "only completed trials carry values"
    return {"parent": parent, "kids": kids}


def _best(client, run_id: str) -> tuple[dict, dict]:
    run = client.get_run(run_id)
    return ({k: v for k, v in run.tags.items() if k.startswith("optuna.best")
             or k == "optuna.pareto_front_size"},
            {k: m.last_value for k, m in run.metrics.items()})


def test_parallel_trials_n_jobs_4(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-parallel")
    study = optuna.create_study(study_name="parallel", sampler=optuna.samplers.RandomSampler(0))
    with MetricflowCallback(uri, experiment_name="optuna-parallel", metric_name="loss") as mfc:
        study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2
                       + t.suggest_int("k", 0, 3), n_trials=16, n_jobs=4, callbacks=[mfc])
    got = _check_trials(client, exp, study, ["loss"])
    assert len(got["kids"]) == 16
    assert all(r.info.experiment_id == exp for r in got["kids"].values())
    best = study.best_trial
    tags, metrics = _best(client, got["parent"].run_id)
    assert tags == {"optuna.best_trial_number": str(best.number),
                    "optuna.best_value": repr(best.value),
                    "optuna.best_params": f'{{"k": "{best.params["k"]}", '
                                          f'"x": "{best.params["x"]!r}"}}',
                    "optuna.best_param.x": repr(best.params["x"]),
                    "optuna.best_param.k": str(best.params["k"])}
    assert metrics == {"best_loss": best.value}
    assert got["parent"].tags["optuna.directions"] == "MINIMIZE"


def _pruned_objective(mfc: MetricflowCallback):
    @mfc.track_in_metricflow()
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -100, 100)
        if x < 0:
            return math.nan  # Optuna marks the trial FAIL and still calls the callback
        for step in range(5):
            value = x * (5 - step)
            if step % 2:  # some steps only through Optuna: the callback adds them at the end
                trial.report(value, step)
            else:
                mfc.report(trial, value, step)
            mfc.log_metrics(trial, {"lr": 0.1 / (step + 1)}, step=step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x
    return objective


def test_pruning_marks_trials_and_keeps_intermediate_values(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-pruning")
    study = optuna.create_study(
        study_name="pruning", pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                  n_warmup_steps=2))
    for x in (1.0, 2.0, 10.0, 0.5, 20.0, -1.0):
        study.enqueue_trial({"x": x})
    with MetricflowCallback(uri, experiment_name="optuna-pruning") as mfc:
        study.optimize(_pruned_objective(mfc), n_trials=6, callbacks=[mfc])
    states = [t.state.name for t in study.get_trials()]
    # at step 2 the median of the completed trials is 4.5: x=10 (30) and x=20 (60) go
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "PRUNED", "FAIL"]
    got = _check_trials(client, exp, study, ["value"])
    for t in study.get_trials():
        h = client.get_metric_history(got["kids"][t.number].run_id, "intermediate_value")
        assert h.steps.tolist() == sorted(t.intermediate_values)  # each step once
        assert h.values.tolist() == [t.intermediate_values[s] for s in sorted(h.steps)]
        assert len(client.get_metric_history(got["kids"][t.number].run_id, "lr")) \
            == len(t.intermediate_values)
    assert [len(study.trials[n].intermediate_values) for n in (2, 4)] == [3, 3]
    # what a user filtering runs gets
    parent = got["parent"].run_id
    finished, _ = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}' AND "
                                     "attributes.status = 'FINISHED'")
    pruned, _ = client.search_runs([exp], "tags.optuna.state = 'PRUNED'")
    assert sorted(int(r.tags["optuna.trial_number"]) for r in finished) == [0, 1, 3]
    assert sorted((int(r.tags["optuna.trial_number"]), r.info.status) for r in pruned) \
        == [(2, "KILLED"), (4, "KILLED")]
    tags, metrics = _best(client, parent)
    assert tags["optuna.best_trial_number"] == "3" and tags["optuna.best_param.x"] == "0.5"
    assert metrics == {"best_value": 0.5}


def test_an_objective_that_raises_ends_its_run_failed(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-raises")
    study = optuna.create_study(study_name="raises")
    with MetricflowCallback(uri, experiment_id=exp) as mfc:
        @mfc.track_in_metricflow()
        def objective(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", 0, 1)
            if trial.number in (1, 3):
                raise RuntimeError("diverged")
            return x

        with pytest.raises(RuntimeError, match="diverged"):
            study.optimize(objective, n_trials=3, callbacks=[mfc])
        # caught by Optuna: the callback runs too, and must not log the trial twice
        study.optimize(objective, n_trials=2, callbacks=[mfc], catch=(RuntimeError,))
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "FAIL", "COMPLETE",
                                                          "FAIL"]
    got = _check_trials(client, exp, study, ["value"])
    for n in (1, 3):
        assert got["kids"][n].tags["optuna.fail_reason"] == "RuntimeError: diverged"


def test_multi_objective(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-multi")
    study = optuna.create_study(study_name="multi", directions=["minimize", "maximize"])
    points = [(3.0, 0.5), (1.0, 0.2), (2.0, 0.9), (4.0, 0.95), (2.5, 0.8), (1.0, 0.1)]
    for loss, acc in points:
        study.enqueue_trial({"loss": loss, "acc": acc})
    with MetricflowCallback(uri, experiment_id=exp, metric_name=["loss", "acc"]) as mfc:
        study.optimize(lambda t: (t.suggest_float("loss", 0, 5), t.suggest_float("acc", 0, 1)),
                       n_trials=len(points), n_jobs=2, callbacks=[mfc])
    got = _check_trials(client, exp, study, ["loss", "acc"])
    # Pareto front (min loss, max acc): (1.0, 0.2), (2.0, 0.9), (4.0, 0.95)
    assert sorted(t.number for t in study.best_trials) == [1, 2, 3]
    tags, metrics = _best(client, got["parent"].run_id)
    assert tags == {"optuna.best_trial_numbers": "[1, 2, 3]", "optuna.pareto_front_size": "3"}
    assert metrics == {"best_loss": 1.0, "best_acc": 0.95}
    assert got["parent"].tags["optuna.directions"] == "MINIMIZE,MAXIMIZE"
    assert got["parent"].tags["optuna.metric_names"] == "loss,acc"


def test_many_callbacks_racing_find_one_study_run(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-race")
    study = optuna.create_study(study_name="race")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    callbacks = [MetricflowCallback(uri, experiment_id=exp) for _ in range(8)]
    barrier = threading.Barrier(len(callbacks))
    ids: list[str] = []

    def find(cb: MetricflowCallback) -> None:
        cb.client  # noqa: B018 - connect before the barrier, so the calls start together
        barrier.wait(30)
        ids.append(cb.study_run_id(study))

    threads = [threading.Thread(target=find, args=(cb,)) for cb in callbacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for cb in callbacks:
        cb.close()
    assert len(ids) == 8 and set(ids) == {study_run_id_for(exp, study)}
    runs, _ = client.search_runs([exp], "tags.optuna.study_name = 'race'")
    assert [r.run_id for r in runs] == ids[:1]


def test_no_study_run_before_trial_0_started(uri) -> None:
    study = optuna.create_study(study_name="not-yet")
    study.enqueue_trial({"x": 0.5})  # trial 0 exists, WAITING: no start time yet
    with MetricflowCallback(uri) as mfc, pytest.raises(ValueError, match="trial 0"):
        mfc.study_run_id(study)


def test_a_pickled_callback_logs_to_the_same_study_run(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-pickled")
    study = optuna.create_study(study_name="pickled")
    with MetricflowCallback(uri, experiment_name="optuna-pickled") as mfc:
        study.optimize(lambda t: t.suggest_float("x", 0, 1)
                       + (t.suggest_categorical("act(fn)", [None]) is None),
                       n_trials=2, callbacks=[mfc])
        first = mfc.study_run_id(study)
    # what joblib or dask do with a callback they hand to a worker
    with pickle.loads(pickle.dumps(mfc)) as copy:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[copy])
        assert copy.study_run_id(study) == first
    got = _check_trials(client, exp, study, ["value"])
    assert got["parent"].run_id == first and len(got["kids"]) == 4
    assert [got["kids"][n].params["act_fn_"] for n in (0, 1)] == ["None", "None"]


def test_a_deleted_study_run_is_restored_when_its_study_goes_on(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-deleted")
    study = optuna.create_study(study_name="deleted")
    objective = lambda t: t.suggest_float("x", 0, 1)  # noqa: E731
    with MetricflowCallback(uri, experiment_id=exp) as mfc:
        study.optimize(objective, n_trials=1, callbacks=[mfc])
        run_id = mfc.study_run_id(study)
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    with MetricflowCallback(uri, experiment_id=exp) as mfc:  # a new process, say
        study.optimize(objective, n_trials=1, callbacks=[mfc])
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert len(_check_trials(client, exp, study, ["value"])["kids"]) == 2


def test_a_recreated_study_of_the_same_name_gets_a_new_study_run(client, uri) -> None:
    exp = client.get_or_create_experiment("optuna-recreated")
    ids = []
    for _ in range(2):
        study = optuna.create_study(study_name="again")
        with MetricflowCallback(uri, experiment_id=exp) as mfc:
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[mfc])
            ids.append(mfc.study_run_id(study))
        time.sleep(1.05)  # trial 0's start, to the second, tells the two apart
    assert ids[0] != ids[1]
    for run_id in ids:
        assert len(_children(client, exp, run_id)) == 2


_WORKER = textwrap.dedent("""
    import os, sys, time
    import optuna
    from metricflow.integrations.optuna import MetricflowCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    uri, storage_url, go, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    storage = optuna.storages.RDBStorage(storage_url,
                                         engine_kwargs={"connect_args": {"timeout": 60}})
    study = optuna.load_study(study_name="shared", storage=storage)
    open(f"{go}.ready.{os.getpid()}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)

    def objective(trial):
        x = trial.suggest_float("x", -5, 5)
        trial.set_user_attr("pid", os.getpid())
        for step in range(3):
            trial.report(abs(x) + 1 / (step + 1), step)
        return x * x

    with MetricflowCallback(uri, experiment_name="optuna-processes") as mfc:
        study.optimize(objective, n_trials=n, callbacks=[mfc])
        print(mfc.study_run_id(study))
""")


def test_two_processes_share_one_study_through_rdb_storage(client, uri, tmp_path: Path) -> None:
    exp = client.get_or_create_experiment("optuna-processes")
    storage_url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="shared", storage=storage_url,
                        sampler=optuna.samplers.RandomSampler(1))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, uri, storage_url, str(go), "4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready.*"))) < 2:  # imports done, at the start line
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.05)
    go.touch()  # both start together, so both look for the study run at once
    outs = [p.communicate(timeout=150) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="shared", storage=storage_url)
    assert len(study.trials) == 8
    got = _check_trials(client, exp, study, ["value"])
    assert {out.strip() for out, _ in outs} == {got["parent"].run_id}
    assert len(got["kids"]) == 8
    pids = {r.tags["optuna.user_attr.pid"] for r in got["kids"].values()}
    assert pids == {str(p.pid) for p in procs}  # both processes ran trials
    for t in study.trials:
        h = client.get_metric_history(got["kids"][t.number].run_id, "intermediate_value")
        assert h.steps.tolist() == [0, 1, 2]
        assert h.values.tolist() == [t.intermediate_values[s] for s in (0, 1, 2)]
    best = study.best_trial
    tags, metrics = _best(client, got["parent"].run_id)
    assert tags["optuna.best_trial_number"] == str(best.number)
    assert tags["optuna.best_value"] == repr(best.value)
    assert tags["optuna.best_param.x"] == repr(best.params["x"])
    assert metrics == {"best_value": best.value}
