"""Fixtures for the UI data endpoints: one chDB store with generated runs and a Python mirror."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import numpy as np
import pytest

from metricflow._wire import DecodedMetrics
from metricflow.entities import RunInfo
from metricflow.store._arrow import build_insert
from metricflow.store._metric_store import MetricStore


@dataclass
class Ref:
    attrs: dict[str, object]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def generate(store: MetricStore, n: int = 300, seed: int = 3) -> dict[str, Ref]:
    """n runs in 3 experiments: params lr/opt, tag team, metrics loss/acc (some NaN,
    some missing), every 10th run a parent of the next 3 (mlflow.parentRunId)."""
    rng = np.random.default_rng(seed)
    runs: dict[str, Ref] = {}
    infos, params, tags = [], [], []
    parent = ""
    for i in range(n):
        rid = uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i).hex
        if i % 10 == 0:
            parent = rid
        # a child run carries its parent as a column and as the tag (as the write path stores it)
        info = RunInfo(rid, str(i % 3), f"run-{i}", f"user{i % 2}",
                       "RUNNING" if i % 5 == 0 else "FINISHED",
                       1000 + int(rng.integers(0, 40)), 0 if i % 5 == 0 else 5000 + i,
                       parent_run_id=parent if 0 < i % 10 <= 3 else None,
                       lifecycle_stage="deleted" if i % 37 == 36 else "active")
        infos.append(info)
        ref = Ref({k: getattr(info, k) for k in ("run_id", "experiment_id", "run_name",
                                                 "user_id", "status", "start_time",
                                                 "end_time", "lifecycle_stage")})
        if i % 4:
            ref.params["lr"] = ["0.1", "0.01", "0.001"][i % 3]
        ref.params["opt"] = ["adam", "sgd"][i % 2]
        ref.tags["team"] = ["a", "b", "c", "d"][i % 4]
        if 0 < i % 10 <= 3:
            ref.tags["mlflow.parentRunId"] = parent
        params += [(rid, k, v) for k, v in ref.params.items()]
        tags += [(rid, k, v, 0) for k, v in ref.tags.items()]
        runs[rid] = ref
    store.insert_runs(infos, [1] * len(infos))
    store.insert_params(params, 10)
    store.insert_tags(tags, 10)
    batches = []
    for i, rid in enumerate(runs):
        for key in ("loss", "acc"):
            if key == "loss" and i % 6 == 0:
                continue
            v = round(float(rng.normal(0.5, 0.3)), 2)
            if key == "loss" and i % 17 == 0:
                v = math.nan
            batches.append(DecodedMetrics(rid, (key,), np.zeros(1, np.int32),
                                          np.zeros(1, np.int64), np.zeros(1, np.int64),
                                          np.array([v])))
            runs[rid].metrics[key] = v
    store.insert_metrics(build_insert(batches))
    return runs


@pytest.fixture(scope="module")
def store(chdb_dsn: str):
    s = MetricStore(chdb_dsn, f"ui_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    yield s
    s.client.command(f"DROP DATABASE IF EXISTS {s.db}")


@pytest.fixture(scope="module")
def dataset(store: MetricStore) -> dict[str, Ref]:
    return generate(store)
