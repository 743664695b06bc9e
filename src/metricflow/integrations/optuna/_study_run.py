"""The study run: one deterministic id per study, found or created; its best-trial summary.

Why a deterministic run id rather than a run id kept in the study's `user_attrs`:
Optuna's `set_study_user_attr` is an upsert, not a compare-and-set, so two processes
that both find the attribute unset would each create a run and the last writer would
win, leaving one process logging under an orphan. Deriving the id from what every
process sharing the study already agrees on makes "create" idempotent instead: any
number of processes, starting together or not, name the same run, and a CreateRun of
an id that exists is ALREADY_EXISTS (auth on) or re-applies the same state (auth off).

What every process agrees on: the experiment, the study name and the start of trial
0, which is written once to the shared storage before any trial can finish. Trial 0
tells a study apart from an earlier one of the same name (a notebook that re-creates
an in-memory study, a deleted and re-created RDB study). It is taken to the whole
second because some RDB backends (MySQL DATETIME) drop the microseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna

from metricflow.client import Client
from metricflow.errors import AlreadyExists, NotFound

log = logging.getLogger(__name__)

STATE_TO_STATUS: Mapping[str, str] = {"COMPLETE": "FINISHED", "PRUNED": "KILLED",
                                      "FAIL": "FAILED"}
"""Optuna trial state -> metricflow run status (the state itself is the tag optuna.state)."""

_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")
_MAX_KEY = 250
_MAX_TAG_VALUE = 8000
_BEST_PARAM = "optuna.best_param."


def safe_key(name: str, limit: int = _MAX_KEY) -> str:
    """An Optuna name (param, user attr) as a valid metricflow key."""
    key = _BAD_KEY_CHARS.sub("_", name).lstrip("/")
    key = "/".join("_" if part == ".." else part for part in key.split("/"))
    return (key or "_")[:limit]


def ms(when: datetime | None) -> int | None:
    """Milliseconds since the epoch (a naive datetime is local time, as Optuna writes it)."""
    return None if when is None else int(when.timestamp() * 1000)


def study_run_id_for(experiment_id: str, study: optuna.Study) -> str:
    """The id of `study`'s run in experiment `experiment_id`: the same in every process.

    Raises:
        ValueError: trial 0 has not started yet (it has once any trial ran).
    """
    first = next((t for t in study.get_trials(deepcopy=False) if t.number == 0), None)
    if first is None or first.datetime_start is None:
        raise ValueError(f"study {study.study_name!r}: its run is named after the start of "
                         "trial 0, which has not started yet")
    second = str(int(first.datetime_start.timestamp()))
    key = "\0".join(("metricflow.optuna.study-run/v1", str(experiment_id), study.study_name,
                     second))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def find_or_create(client: Client, run_id: str, experiment_id: str, run_name: str,
                   tags: Mapping[str, str]) -> None:
    """Make sure run `run_id` exists and is active (race-safe: see the module doc)."""
    try:
        run = client.get_run(run_id)
    except NotFound:
        _create_with_id(client, run_id, experiment_id, run_name, tags)
        return
    if run.info.lifecycle_stage == "deleted":
        # The study goes on; its trials would otherwise hang off a hidden parent.
        log.warning("study run %s was deleted; restoring it because study %r logs trials "
                    "into it", run_id, run_name)
        client.restore_run(run_id)


def _create_with_id(client: Client, run_id: str, experiment_id: str, run_name: str,
                    tags: Mapping[str, str]) -> None:
    try:
        client.create_run(experiment_id, run_name=run_name, tags=tags, run_id=run_id)
    except AlreadyExists:
        pass  # another process created it first: the same run, which is the point


def objective_names(metric_name: str | Sequence[str], n_objectives: int) -> list[str]:
    """Metric names of the objective values: one per objective."""
    if isinstance(metric_name, str):
        if n_objectives == 1:
            return [metric_name]
        return [f"{metric_name}_{i}" for i in range(n_objectives)]
    names = list(metric_name)
    if len(names) != n_objectives:
        raise ValueError(f"metric_name has {len(names)} names but the study has "
                         f"{n_objectives} objectives")
    return names


@dataclass(frozen=True)
class Summary:
    """What the study run says about the best trial(s)."""

    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def best_summary(study: optuna.Study, names: Sequence[str]) -> Summary | None:
    """The best trial (one objective) or the Pareto front (several); None before any."""
    if len(study.directions) == 1:
        try:
            best = study.best_trial
        except ValueError:  # no COMPLETE trial yet
            return None
        params = {k: _text(v) for k, v in best.params.items()}
        tags = {"optuna.best_trial_number": str(best.number),
                "optuna.best_value": repr(best.value)}
        blob = json.dumps(params, sort_keys=True)
        if len(blob) <= _MAX_TAG_VALUE:
            tags["optuna.best_params"] = blob
        tags.update({_BEST_PARAM + safe_key(k, _MAX_KEY - len(_BEST_PARAM)):
                     v[:_MAX_TAG_VALUE] for k, v in params.items()})
        return Summary(tags, {f"best_{names[0]}": float(best.value)})  # type: ignore[arg-type]
    front = study.best_trials
    if not front:
        return None
    numbers = json.dumps(sorted(t.number for t in front))
    tags = {"optuna.pareto_front_size": str(len(front))}
    if len(numbers) <= _MAX_TAG_VALUE:
        tags["optuna.best_trial_numbers"] = numbers
    metrics = {}
    for i, (name, direction) in enumerate(zip(names, study.directions)):
        pick = min if direction == optuna.study.StudyDirection.MINIMIZE else max
        metrics[f"best_{name}"] = float(pick(t.values[i] for t in front))
    return Summary(tags, metrics)


def write_summary(client: Client, run_id: str, summary: Summary, step: int) -> None:
    """Tags (best param tags of an earlier best that this one lacks are deleted), metrics."""
    if "optuna.best_trial_number" in summary.tags:  # one objective: best params as tags
        for key in client.get_run(run_id).tags:
            if key.startswith(_BEST_PARAM) and key not in summary.tags:
                client.delete_tag(run_id, key)
    client.log_batch(run_id, tags=summary.tags)
    client.log_metrics(run_id, summary.metrics, step=step)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) \
        else str(value)


__all__ = ["STATE_TO_STATUS", "Summary", "best_summary", "find_or_create", "ms",
           "objective_names", "safe_key", "study_run_id_for", "write_summary"]
