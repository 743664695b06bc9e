"""Client-side value types (plain dataclasses; no server dependencies)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb

_STATUS = {v: k for k, v in pb.RunStatus.items()}


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    lifecycle_stage: str
    artifact_uri: str


@dataclass(frozen=True)
class MetricSummary:
    key: str
    last_value: float
    last_step: int
    last_timestamp: int
    min_value: float
    max_value: float
    count: int


@dataclass(frozen=True)
class Run:
    info: RunInfo
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.info.run_id


@dataclass(frozen=True)
class MetricHistory:
    """One metric's points as numpy columns, ordered by step then timestamp."""

    key: str
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


def run_from_pb(m: qpb.Run) -> Run:
    i = m.info
    info = RunInfo(i.run_id, i.experiment_id, i.run_name, i.user_id,
                   _STATUS.get(i.status, "RUNNING"), i.start_time, i.end_time or None,
                   i.parent_run_id or None, i.lifecycle_stage or "active", i.artifact_uri)
    metrics = {s.key: MetricSummary(s.key, s.last_value, s.last_step, s.last_timestamp,
                                    s.min_value, s.max_value, s.count) for s in m.metrics}
    return Run(info, dict(m.params), dict(m.tags), metrics)
