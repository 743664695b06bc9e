"""Generated runs with a plain-Python mirror, for the query tests."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.entities import RunInfo
from metricflow.store._arrow import build_insert
from metricflow.store._metric_store import MetricStore


@dataclass
class RefRun:
    """What the store should say about one run, for the reference filter."""

    attrs: dict[str, object]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def insert_points(store: MetricStore, run_id: str, key: str, steps: np.ndarray,
                  ts: np.ndarray, values: np.ndarray) -> None:
    store.insert_metrics(build_insert([DecodedMetrics(
        run_id, (key,), np.zeros(len(values), np.int32), np.asarray(steps, np.int64),
        np.asarray(ts, np.int64), np.asarray(values, np.float64))]))


def generate(store: MetricStore, n: int = 240, seed: int = 7) -> dict[str, RefRun]:
    rng = np.random.default_rng(seed)
    runs: dict[str, RefRun] = {}
    infos, params, tags = [], [], []
    lrs = ["0.1", "0.01", "1e-3"]
    teams = ["vision", "Vision", "nlp_core", "50%off", "o'brien", 'say "hi"', "rl"]
    for i in range(n):
        rid = uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i).hex
        info = RunInfo(rid, str(i % 4), f"run-{i % 17}" if i % 5 else f"it's {i}",
                       f"user{i % 3}", ["RUNNING", "FINISHED", "FAILED", "KILLED"][i % 4],
                       1000 + int(rng.integers(0, 50)), 0 if i % 4 == 0 else 2000 + i,
                       lifecycle_stage="deleted" if i % 23 == 0 else "active")
        infos.append(info)
        ref = RefRun({k: getattr(info, k) for k in ("run_id", "experiment_id", "run_name",
                                                    "user_id", "status", "start_time",
                                                    "lifecycle_stage")})
        ref.attrs["end_time"] = info.end_time or 0  # the filter language reads unset as 0
        if i % 7:
            ref.params["lr"] = lrs[i % 3]
        ref.params["opt"] = ["adam", "sgd", "Adam"][i % 3]
        if i % 2:
            ref.params["layers"] = str(i % 5)
        params += [(rid, k, v) for k, v in ref.params.items()]
        team = teams[i % len(teams)]
        tags.append((rid, "team", team, 0))
        ref.tags["team"] = team
        if i % 3 == 0:
            tags.append((rid, "note", "x", 0))
            ref.tags["note"] = "x"
        runs[rid] = ref
    store.insert_runs(infos, [1] * len(infos))
    store.insert_params(params, 10)
    store.insert_tags(tags, 10)
    # a later tag version: delete `note` of some runs, change team of others
    later = []
    for i, rid in enumerate(runs):
        if i % 6 == 0 and "note" in runs[rid].tags:
            later.append((rid, "note", "", 1))
            del runs[rid].tags["note"]
        elif i % 11 == 0:
            later.append((rid, "team", "moved", 0))
            runs[rid].tags["team"] = "moved"
    store.insert_tags(later, 20)
    for i, rid in enumerate(runs):
        for key in ("acc", "loss"):
            if key == "loss" and i % 5 == 0:
                continue
            steps = np.arange(int(rng.integers(1, 6)))
            vals = np.round(rng.normal(0.5, 0.3, len(steps)), 2)
            if i % 19 == 0:
                vals[-1] = math.nan
            if i % 29 == 0:
                vals[-1] = math.inf if i % 2 else -math.inf
            insert_points(store, rid, key, steps, steps * 10, vals)
            if i % 13 == 0:  # a replayed batch must change nothing
                insert_points(store, rid, key, steps, steps * 10, vals)
            runs[rid].metrics[key] = float(vals[-1])
    return runs
