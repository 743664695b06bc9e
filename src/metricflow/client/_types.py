"""Client-side value types (plain dataclasses; no server dependencies).

`Run`, `RunInfo` and `MetricSummary` are the shared `metricflow.entities` classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.entities import MetricSummary, Run, RunInfo
from metricflow.entities.pb import run_from_pb

__all__ = ["DownsampledSeries", "MetricHistory", "MetricPoint", "MetricSummary", "Run",
           "RunInfo", "run_from_pb", "series_columns", "series_from_pb"]


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
