"""MetricflowCallback: each Optuna trial as a child run of the study's run.

Thread-safe for `study.optimize(..., n_jobs=N)`: it never touches the fluent API's
thread-local active run; every call names its run id on one explicit Client.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, Trial

from metricflow import _env
from metricflow.client import Client
from metricflow.errors import InvalidState
from metricflow.integrations.optuna._study_run import (
    STATE_TO_STATUS,
    Summary,
    best_summary,
    find_or_create,
    ms,
    objective_names,
    safe_key,
    study_run_id_for,
    write_summary,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
_SUMMARY_ROUNDS = 5
_MAX_TAG_VALUE = 8000


@dataclass
class _Live:
    """A trial run opened by track_in_metricflow() before the trial ended."""

    run_id: str
    steps: set[int] = field(default_factory=set)  # intermediate steps already logged


class MetricflowCallback:
    """Optuna callback: logs each finished trial as a child run of one run per study.

    Pass it to `study.optimize(callbacks=[...])`. Optionally wrap the objective with
    `track_in_metricflow()` so its run exists while it runs (live intermediate values
    through `report`, other metrics through `log_metrics`).

    Args:
        tracking_uri: grpc://host:port; default: the fluent API's tracking URI
            (`metricflow.set_tracking_uri`, else METRICFLOW_TRACKING_URI).
        client: a Client to use instead of creating one (close() leaves it open).
        experiment_name: experiment of the runs, created if missing.
        experiment_id: experiment of the runs, by id (wins over experiment_name).
            Neither: METRICFLOW_EXPERIMENT_NAME if set, else the Default experiment.
        metric_name: metric of the objective value, or one name per objective; one
            name with several objectives becomes `<name>_0`, `<name>_1`, ...
        intermediate_metric_name: metric of `trial.report(value, step)` values.
        tags: extra tags on the study run and on every trial run.
    """

    def __init__(self, tracking_uri: str | None = None, *, client: Client | None = None,
                 experiment_name: str | None = None, experiment_id: str | None = None,
                 metric_name: str | Sequence[str] = "value",
                 intermediate_metric_name: str = "intermediate_value",
                 tags: Mapping[str, str] | None = None) -> None:
        self._config = dict(tracking_uri=tracking_uri, experiment_name=experiment_name,
                            experiment_id=experiment_id, metric_name=metric_name,
                            intermediate_metric_name=intermediate_metric_name,
                            tags=dict(tags or {}))
        self._tracking_uri = tracking_uri
        self._given_client = client
        self._experiment_name = experiment_name
        self._experiment_id = str(experiment_id) if experiment_id is not None else None
        self._metric_name = metric_name
        self._intermediate = intermediate_metric_name
        self._tags = {k: str(v) for k, v in (tags or {}).items()}
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._study_lock = threading.Lock()
        self._client: Client | None = None
        self._client_pid = 0
        self._study_runs: weakref.WeakKeyDictionary[optuna.Study, str] = \
            weakref.WeakKeyDictionary()
        self._live: dict[tuple[str, int], _Live] = {}
        self._finalized: set[tuple[str, int]] = set()
        self._summary_locks: dict[str, threading.Lock] = {}
        self._summary_step: dict[str, int] = {}
        self._written: dict[str, Summary] = {}

    # A callback handed to worker processes (joblib, dask) is rebuilt there with its own
    # client: a Client (threads, sockets) does not survive pickling or fork.
    def __getstate__(self) -> dict[str, Any]:
        return {"config": self._config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])  # type: ignore[misc]  # rebuild from the arguments

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> Client:
        """The Client the callback writes through (one per process)."""
        if self._given_client is not None:
            return self._given_client
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                from metricflow.client import get_tracking_uri

                # Each trial ends with a flush (its run is FINISHED only once its points
                # are durable); a short linger keeps that wait short, and a trial logs
                # too few points for a longer one to batch more.
                self._client = Client(self._tracking_uri or get_tracking_uri(), linger_ms=10)
                self._client_pid = os.getpid()
            return self._client

    @property
    def experiment_id(self) -> str:
        """The experiment the runs go to (resolved, and created, on first use)."""
        if self._experiment_id is None:
            name = self._experiment_name or _env.EXPERIMENT_NAME.get()
            self._experiment_id = self.client.get_or_create_experiment(name) if name else "0"
        return self._experiment_id

    def study_run_id(self, study: optuna.Study) -> str:
        """The run of `study`, found or created (the same run in every process).

        Raises:
            ValueError: no trial of the study has started yet.
        """
        with self._study_lock:
            run_id = self._study_runs.get(study)
            if run_id is None:
                run_id = study_run_id_for(self.experiment_id, study)
                tags = {**self._tags, "optuna.kind": "study", "optuna.study_name": study.study_name,
                        "optuna.directions": ",".join(d.name for d in study.directions),
                        "optuna.metric_names": ",".join(self._names(study))}
                find_or_create(self.client, run_id, self.experiment_id, study.study_name, tags)
                self._study_runs[study] = run_id
            return run_id

    def _names(self, study: optuna.Study) -> list[str]:
        return objective_names(self._metric_name, len(study.directions))

    # ------------------------------------------------------------------ callback
    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Log a finished trial (Optuna calls this after each trial in this process)."""
        status = STATE_TO_STATUS.get(trial.state.name)
        if status is None:
            return  # RUNNING or WAITING: nothing final to log yet
        key = (study.study_name, trial.number)
        with self._lock:
            live = self._live.pop(key, None)
            done = key in self._finalized
            self._finalized.discard(key)
        if not done:
            run_id = live.run_id if live is not None else self._create_trial_run(
                study, trial.number, ms(trial.datetime_start))
            client = self.client
            intermediate = {s: v for s, v in trial.intermediate_values.items()
                            if live is None or s not in live.steps}
            for step in sorted(intermediate):
                client.log_metrics(run_id, {self._intermediate: intermediate[step]}, step=step)
            # A pruned trial's value is only its last intermediate value (Optuna copies
            # it); logging it as the objective would rank it with the completed trials.
            if trial.state.name == "COMPLETE" and trial.values is not None:
                client.log_metrics(run_id, dict(zip(self._names(study), trial.values)), step=0)
            self._end_trial_run(run_id, trial.params, trial.user_attrs, trial.state.name,
                                None, ms(trial.datetime_complete))
        if trial.state.name == "COMPLETE":
            self._refresh_summary(study, trial.number)

    def _create_trial_run(self, study: optuna.Study, number: int,
                          start_time: int | None) -> str:
        tags = {**self._tags, "optuna.kind": "trial", "optuna.study_name": study.study_name,
                "optuna.trial_number": str(number)}
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{number}", tags=tags,
                                     parent_run_id=self.study_run_id(study),
                                     start_time=start_time)
        return run.run_id

    def _end_trial_run(self, run_id: str, params: Mapping[str, Any],
                       user_attrs: Mapping[str, Any], state: str, fail_reason: str | None,
                       end_time: int | None) -> None:
        tags = {"optuna.state": state}
        tags.update({"optuna.user_attr." + safe_key(k, 233): str(v)[:_MAX_TAG_VALUE]
                     for k, v in user_attrs.items()})
        if fail_reason:
            tags["optuna.fail_reason"] = str(fail_reason)[:_MAX_TAG_VALUE]
        self.client.log_batch(run_id, params={safe_key(k): v for k, v in params.items()},
                              tags=tags)
        self.client.set_terminated(run_id, STATE_TO_STATUS[state], end_time=end_time)

    def _refresh_summary(self, study: optuna.Study, step: int) -> None:
        # Recompute from the storage after each write until it stops changing: a writer
        # that read the best before another process told a better trial rewrites it, so
        # the last write to the study run is always the storage's best (docs/integrations.md).
        run_id = self.study_run_id(study)
        with self._lock:
            lock = self._summary_locks.setdefault(run_id, threading.Lock())
        with lock:
            for _ in range(_SUMMARY_ROUNDS):
                summary = best_summary(study, self._names(study))
                if summary is None or summary == self._written.get(run_id):
                    return
                # the summary's step only grows: with parallel trials a later trial number
                # may have written an older best first, and the latest value is by step
                step = max(step, self._summary_step.get(run_id, -1) + 1)
                write_summary(self.client, run_id, summary, step)
                self._written[run_id] = summary
                self._summary_step[run_id] = step

    # ------------------------------------------------- inside the objective
    def track_in_metricflow(self) -> Callable[[F], F]:
        """Decorator for the objective: its trial run is created when the trial starts.

        Inside, `report`, `log_metrics` and `run_id` reach that run. An objective that
        raises (other than TrialPruned) ends its run FAILED at once, since Optuna calls
        no callback for an exception it re-raises.
        """
        def decorate(func: F) -> F:
            @functools.wraps(func)
            def objective(trial: Trial, *args: Any, **kwargs: Any) -> Any:
                key = (trial.study.study_name, trial.number)
                run_id = self._create_trial_run(trial.study, trial.number, None)
                with self._lock:
                    self._live[key] = _Live(run_id)
                try:
                    return func(trial, *args, **kwargs)
                except optuna.TrialPruned:
                    raise
                except BaseException as e:
                    with self._lock:
                        self._live.pop(key, None)
                        self._finalized.add(key)
                    self._end_trial_run(run_id, trial.params, trial.user_attrs, "FAIL",
                                        f"{type(e).__name__}: {e}", None)
                    raise
            return objective  # type: ignore[return-value]
        return decorate

    def _live_run(self, trial: Trial) -> _Live:
        with self._lock:
            live = self._live.get((trial.study.study_name, trial.number))
        if live is None:
            raise InvalidState(f"trial {trial.number} has no open run: wrap the objective "
                               "with @callback.track_in_metricflow()")
        return live

    def run_id(self, trial: Trial) -> str:
        """The run of a trial that is running (inside a track_in_metricflow objective)."""
        return self._live_run(trial).run_id

    def report(self, trial: Trial, value: float, step: int) -> None:
        """`trial.report(value, step)`, and the point logged to the trial's run now.

        Without track_in_metricflow() it is only trial.report: the callback logs the
        trial's intermediate values when the trial ends.
        """
        trial.report(value, step)
        with self._lock:
            live = self._live.get((trial.study.study_name, trial.number))
            if live is None or step in live.steps:  # Optuna keeps the first value of a step
                return
            live.steps.add(step)
        self.client.log_metrics(live.run_id, {self._intermediate: float(value)}, step=step)

    def log_metrics(self, trial: Trial, metrics: Mapping[str, float],
                    step: int | None = None) -> None:
        """Log other metrics of a running trial to its run."""
        self.client.log_metrics(self._live_run(trial).run_id, metrics, step=step)

    # ------------------------------------------------------------------ ending
    def end_study_run(self, study: optuna.Study, status: str = "FINISHED") -> None:
        """Mark the study run ended (after the last process is done with the study)."""
        self.client.set_terminated(self.study_run_id(study), status)

    def close(self) -> None:
        """Deliver what is buffered and close the client the callback created."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._client_pid == os.getpid():
            client.close()

    def __enter__(self) -> MetricflowCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MetricflowCallback"]
