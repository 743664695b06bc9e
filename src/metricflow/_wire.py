"""Columnar metric batches on the wire: numpy <-> MetricColumns bytes.

Every column is little-endian; the server reads them with np.frombuffer, so a
batch never becomes one Python object per point.
"""

from __future__ import annotations

import numpy as np

from metricflow._validation import DEFAULT_LIMITS, Limits, check_keys
from metricflow.entities import DecodedMetrics
from metricflow.errors import InvalidArgument

KEY_INDEX_DTYPE = np.dtype("<i4")
STEP_DTYPE = np.dtype("<i8")
TS_DTYPE = np.dtype("<i8")
VALUE_DTYPE = np.dtype("<f8")


def _column(name: str, data: bytes, dtype: np.dtype) -> np.ndarray:
    if len(data) % dtype.itemsize:
        raise InvalidArgument(
            f"metrics.{name} is {len(data)} bytes, not a multiple of {dtype.itemsize} "
            f"({dtype.name} little-endian)",
            field=f"metrics.{name}", received=len(data),
        )
    return np.frombuffer(data, dtype=dtype)


def decode_metrics(run_id: str, cols: object, limits: Limits = DEFAULT_LIMITS) -> DecodedMetrics:
    """Decode and validate a MetricColumns message; raise InvalidArgument on any defect.

    The whole batch is rejected on a defect, so nothing partial is stored.
    """
    keys = tuple(cols.keys)  # type: ignore[attr-defined]
    if len(keys) > limits.max_keys_per_batch:
        raise InvalidArgument(
            f"metrics.keys has {len(keys)} keys; the limit per batch is "
            f"{limits.max_keys_per_batch}",
            field="metrics.keys", limit=limits.max_keys_per_batch, received=len(keys),
        )
    if len(set(keys)) != len(keys):
        raise InvalidArgument("metrics.keys has duplicate entries", field="metrics.keys")
    check_keys(keys, "metrics.keys", limits)
    kidx = _column("key_index", cols.key_index, KEY_INDEX_DTYPE)  # type: ignore[attr-defined]
    steps = _column("steps", cols.steps, STEP_DTYPE)  # type: ignore[attr-defined]
    ts = _column("timestamps", cols.timestamps, TS_DTYPE)  # type: ignore[attr-defined]
    values = _column("values", cols.values, VALUE_DTYPE)  # type: ignore[attr-defined]
    n = values.shape[0]
    for name, col in (("key_index", kidx), ("steps", steps), ("timestamps", ts)):
        if col.shape[0] != n:
            raise InvalidArgument(
                f"metrics.{name} has {col.shape[0]} entries but metrics.values has {n}; "
                "all columns must have the same length",
                field=f"metrics.{name}", received=int(col.shape[0]), limit=n,
            )
    if n > limits.max_points_per_batch:
        raise InvalidArgument(
            f"batch has {n} points; the limit is {limits.max_points_per_batch}",
            field="metrics.values", limit=limits.max_points_per_batch, received=n,
        )
    if n and (int(kidx.min()) < 0 or int(kidx.max()) >= len(keys)):
        raise InvalidArgument(
            f"metrics.key_index must be in [0, {len(keys)}), got range "
            f"[{int(kidx.min())}, {int(kidx.max())}]",
            field="metrics.key_index", limit=len(keys),
        )
    return DecodedMetrics(run_id, keys, kidx, steps, ts, values)


def encode_metrics(cols: object, keys: list[str], key_index: np.ndarray, steps: np.ndarray,
                   timestamps: np.ndarray, values: np.ndarray) -> None:
    """Fill a MetricColumns message from numpy arrays (copied once, by tobytes)."""
    cols.keys.extend(keys)  # type: ignore[attr-defined]
    cols.key_index = np.ascontiguousarray(key_index, KEY_INDEX_DTYPE).tobytes()  # type: ignore[attr-defined]
    cols.steps = np.ascontiguousarray(steps, STEP_DTYPE).tobytes()  # type: ignore[attr-defined]
    cols.timestamps = np.ascontiguousarray(timestamps, TS_DTYPE).tobytes()  # type: ignore[attr-defined]
    cols.values = np.ascontiguousarray(values, VALUE_DTYPE).tobytes()  # type: ignore[attr-defined]
