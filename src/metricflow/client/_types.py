"""Client-side value types (plain dataclasses; no server dependencies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

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
    """Latest, min and max value of one metric of one run."""

    key: str
    last_value: float
    last_step: int
    last_timestamp: int
    min_value: float
    max_value: float
    count: int | None
    """Points stored; None = not counted (`search_runs` skips it; `get_run` counts)."""


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


class MetricPoint(NamedTuple):
    step: int
    timestamp: int
    value: float


_INT_COLUMNS = ("bucket", "count", "step_first", "step_last", "nan_count", "inf_count")
_FLOAT_COLUMNS = ("min", "max", "avg", "last")


@dataclass(frozen=True, eq=False)
class DownsampledSeries:
    """One metric of one run in step buckets: numpy columns, one entry per non-empty bucket.

    `bucket`, `count`, `step_first`, `step_last`, `nan_count`, `inf_count` are
    int64; `min`, `max`, `avg`, `last` float64 (NaN/Inf rules: docs/query.md).
    The arrays are read-only views of the response.
    """

    run_id: str
    key: str
    step_lo: int
    step_hi: int
    bucket: np.ndarray
    count: np.ndarray
    step_first: np.ndarray
    step_last: np.ndarray
    min: np.ndarray
    max: np.ndarray
    avg: np.ndarray
    last: np.ndarray
    nan_count: np.ndarray
    inf_count: np.ndarray
    first_point: MetricPoint | None
    """The exact first point in [step_lo, step_hi]."""
    last_point: MetricPoint | None
    """The exact last point in [step_lo, step_hi]."""

    def __len__(self) -> int:
        return int(self.bucket.shape[0])


def series_from_pb(m: qpb.DownsampledSeries) -> DownsampledSeries:
    def point(p: qpb.MetricPoint, name: str) -> MetricPoint | None:
        return MetricPoint(p.step, p.timestamp, p.value) if m.HasField(name) else None

    cols = {c: np.frombuffer(getattr(m, c), "<i8") for c in _INT_COLUMNS}
    cols.update({c: np.frombuffer(getattr(m, c), "<f8") for c in _FLOAT_COLUMNS})
    return DownsampledSeries(m.run_id, m.key, m.step_lo, m.step_hi, **cols,
                             first_point=point(m.first_point, "first_point"),
                             last_point=point(m.last_point, "last_point"))


def series_columns(s: DownsampledSeries | qpb.DownsampledSeries) -> dict[str, np.ndarray]:
    """The numpy columns of one downsampled series by name (`bucket`, `count`, ... `last`).

    Takes what `Client.downsample_history` returns, or its protobuf message.
    """
    if isinstance(s, qpb.DownsampledSeries):
        s = series_from_pb(s)
    return {c: getattr(s, c) for c in (*_INT_COLUMNS, *_FLOAT_COLUMNS)}


def run_from_pb(m: qpb.Run) -> Run:
    i = m.info
    info = RunInfo(i.run_id, i.experiment_id, i.run_name, i.user_id,
                   _STATUS.get(i.status, "RUNNING"), i.start_time, i.end_time or None,
                   i.parent_run_id or None, i.lifecycle_stage or "active", i.artifact_uri)
    metrics = {s.key: MetricSummary(s.key, s.last_value, s.last_step, s.last_timestamp,
                                    s.min_value, s.max_value,
                                    s.count if s.HasField("count") else None)
               for s in m.metrics}
    return Run(info, dict(m.params), dict(m.tags), metrics)
