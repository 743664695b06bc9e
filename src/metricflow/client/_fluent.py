"""MLflow-style fluent API: start_run(), log_metric(), ... on one per-process Client.

The active-run stack is thread-local: the only process-global mutable state in
metricflow lives here (the default client and the tracking URI).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from metricflow import _env
from metricflow.client._client import Client
from metricflow.client._types import MetricHistory, Run
from metricflow.errors import InvalidArgument, InvalidState

_state_lock = threading.Lock()
_client: Client | None = None
_tracking_uri: str | None = None
_experiment_id: str | None = None
_local = threading.local()
_samplers: dict[str, Any] = {}  # run id -> its SystemMetricsSampler


def _reset_after_fork() -> None:
    global _client, _state_lock
    _client = None
    _state_lock = threading.Lock()
    _local.__dict__.clear()
    _samplers.clear()  # their threads did not survive the fork


os.register_at_fork(after_in_child=_reset_after_fork)


def set_tracking_uri(uri: str) -> None:
    """Point the fluent API at a server: grpc://host:port."""
    global _tracking_uri, _client, _experiment_id
    with _state_lock:
        old, _client = _client, None
        if uri != _tracking_uri:
            _experiment_id = None  # experiment ids belong to a server
        _tracking_uri = uri
    if old is not None:
        old.close()


def get_tracking_uri() -> str:
    return _tracking_uri or _env.TRACKING_URI.get()


def get_client() -> Client:
    """The process's default Client (created on first use)."""
    global _client
    with _state_lock:
        if _client is None:
            _client = Client(get_tracking_uri())
        return _client


def set_experiment(name: str | None = None, experiment_id: str | None = None) -> str:
    """Make an experiment active (created by name if missing); returns its id."""
    global _experiment_id
    if experiment_id is None:
        if not name:
            raise InvalidState("set_experiment needs a name or an experiment_id")
        experiment_id = get_client().get_or_create_experiment(name)
    _experiment_id = str(experiment_id)
    return _experiment_id


def _stack() -> list[Run]:
    st = getattr(_local, "stack", None)
    if st is None:
        st = _local.stack = []
    return st


class ActiveRun:
    """Context manager returned by start_run(); ends the run on exit."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @property
    def info(self) -> Any:
        return self.run.info

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        end_run("FINISHED" if exc_type is None else "FAILED")


def start_run(run_name: str | None = None, nested: bool = False,
              tags: Mapping[str, str] | None = None, experiment_id: str | None = None,
              parent_run_id: str | None = None, run_id: str | None = None,
              resume: bool = False, fork_from: str | None = None,
              fork_step: int | None = None,
              log_system_metrics: bool | None = None) -> ActiveRun:
    """Create a run and make it active in this thread.

    The run's experiment is, first found: `experiment_id`; the active experiment
    (set_experiment, or METRICFLOW_EXPERIMENT_NAME); the parent's experiment (a
    child run inherits it, also in another process given `parent_run_id`); Default.

    Args:
        nested: allow starting while another run is active; it becomes the parent.
        parent_run_id: explicit parent, e.g. for worker processes of one parent run.
        run_id, resume: continue the existing run `run_id` after preemption (resume=True
            is implied): RUNNING again; steps logged again replace the earlier points.
        fork_from, fork_step: create a fork of run `fork_from` whose history up to
            `fork_step` is the parent's (docs/resilience.md, "Resume and fork").
        log_system_metrics: sample CPU, memory, disk, network and GPUs every second
            as `system/<node>/...` metrics until the run ends (default:
            METRICFLOW_SYSTEM_METRICS; needs psutil, GPUs need nvidia-ml-py).
    """
    stack = _stack()
    if stack and not nested:
        raise InvalidState(f"run {stack[-1].run_id} is already active; end it first or "
                           "pass nested=True")
    if resume and run_id is None:
        raise InvalidArgument("resume=True needs the run_id of the run to continue",
                              field="run_id", received=None)
    if run_id is not None:
        if fork_from is not None:
            raise InvalidArgument("pass run_id (resume) or fork_from (fork), not both",
                                  field="fork_from", received=fork_from)
        resumed = get_client().resume_run(run_id)
        stack.append(resumed)
        _start_system_metrics(resumed.run_id, log_system_metrics)
        return ActiveRun(resumed)
    parent = parent_run_id or (stack[-1].run_id if stack else None)
    exp = experiment_id or _experiment_id
    if exp is None:
        env_name = _env.EXPERIMENT_NAME.get()
        if env_name:
            exp = set_experiment(env_name)
        elif stack and stack[-1].run_id == parent:
            exp = stack[-1].info.experiment_id
        else:
            # "" asks the server for the parent's experiment (Default without a parent).
            exp = "" if parent else "0"
    if fork_from is not None and experiment_id is None and _experiment_id is None:
        exp = ""  # the server files a fork under its parent's experiment
    run = get_client().create_run(str(exp), run_name=run_name, tags=tags, parent_run_id=parent,
                                  fork_from=fork_from, fork_step=fork_step)
    stack.append(run)
    _start_system_metrics(run.run_id, log_system_metrics)
    return ActiveRun(run)


def _start_system_metrics(run_id: str, wanted: bool | None) -> None:
    if wanted is None:
        wanted = _env.SYSTEM_METRICS.get()
    if wanted:
        from metricflow.client._sysmetrics import SystemMetricsSampler

        _samplers[run_id] = SystemMetricsSampler(get_client(), run_id).start()


def active_run() -> Run | None:
    stack = _stack()
    return stack[-1] if stack else None


def _active_id() -> str:
    stack = _stack()
    if not stack:
        # MLflow starts a run implicitly; do the same so scripts stay short.
        start_run()
    return _stack()[-1].run_id


def end_run(status: str = "FINISHED") -> None:
    """Flush metrics, mark the active run ended and pop it."""
    stack = _stack()
    if stack:
        run = stack.pop()
        sampler = _samplers.pop(run.run_id, None)
        if sampler is not None:
            sampler.stop()
        get_client().set_terminated(run.run_id, status)


def log_metric(key: str, value: float, step: int | None = None,
               timestamp: int | None = None) -> None:
    get_client().log_metrics(_active_id(), {key: value}, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None,
                timestamp: int | None = None) -> None:
    get_client().log_metrics(_active_id(), metrics, step, timestamp)


def log_param(key: str, value: Any) -> None:
    get_client().log_batch(_active_id(), params={key: value})


def log_params(params: Mapping[str, Any]) -> None:
    get_client().log_batch(_active_id(), params=params)


def set_tag(key: str, value: Any) -> None:
    get_client().log_batch(_active_id(), tags={key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    get_client().log_batch(_active_id(), tags=tags)


def flush() -> None:
    get_client().flush()


def alert(title: str, text: str = "", level: str = "INFO", run_id: str | None = None) -> bool:
    """Send an alert from training code, as W&B's `wandb.alert`: it goes to the webhooks
    subscribed to `alert.firing` in the run's experiment (docs/alerts.md). `level` is
    INFO, WARN(ING), ERROR or CRITICAL. Rate-limited per run by the server: the same
    title at most once a minute, at most 10 a minute; returns False at once when it
    was held back, so it never stalls training."""
    from metricflow._proto.metricflow.alerts.v1 import alerts_pb2 as apb

    req = apb.NotifyRequest(run_id=run_id or _active_id(), title=title, text=text,
                            level=level)
    resp = get_client()._call("/metricflow.alerts.v1.AlertService/Notify", req,
                              apb.NotifyResponse)
    return bool(resp.sent)


def get_run(run_id: str) -> Run:
    return get_client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> MetricHistory:
    return get_client().get_metric_history(run_id, key)


def search_runs(experiment_ids: list[str] | None = None, filter_string: str = "",
                order_by: list[str] | None = None, max_results: int = 1000) -> list[Run]:
    exps = experiment_ids or [_experiment_id or "0"]
    runs, _ = get_client().search_runs(exps, filter_string, order_by, max_results)
    return runs


def log_artifact(local_path: str, artifact_path: str | None = None) -> None:
    """Upload a file into the active run's artifacts (deduplicated by content)."""
    get_client().log_artifact(_active_id(), local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> None:
    get_client().log_artifacts(_active_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    get_client().log_text(_active_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    get_client().log_dict(_active_id(), dictionary, artifact_file)


def register_model(model_uri: str, name: str) -> Any:
    """Register `runs:/<run_id>/<path>` (or models:/...) as a new version of model `name`."""
    return get_client().register_model(model_uri, name)
