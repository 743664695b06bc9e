"""Build Arrow tables for ClickHouse inserts from decoded columnar batches.

All work is per batch or per distinct key, never per point in Python: keys and
run ids become dictionary columns whose indices are remapped with numpy, and
per-(run, key) summaries are computed with a numpy sort, so ClickHouse only
aggregates a few rows per insert instead of every point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from metricflow._wire import DecodedMetrics


@dataclass(frozen=True)
class InsertTables:
    metrics: pa.Table
    """One row per point: run_id, key, step, timestamp, value."""
    summary: pa.Table
    """One row per (run, key) of this insert: last/min/max of its points."""


def build_insert(batches: Sequence[DecodedMetrics]) -> InsertTables:
    """Concatenate batches (of any runs) into single-chunk Arrow tables."""
    global_keys: dict[str, int] = {}
    run_ids: dict[str, int] = {}
    key_parts: list[np.ndarray] = []
    run_counts = np.empty(len(batches), dtype=np.int64)
    run_codes = np.empty(len(batches), dtype=np.int32)
    for i, b in enumerate(batches):
        lut = np.fromiter(
            (global_keys.setdefault(k, len(global_keys)) for k in b.keys),
            dtype=np.int32, count=len(b.keys),
        )
        key_parts.append(lut[b.key_index] if len(lut) else b.key_index.astype(np.int32))
        run_codes[i] = run_ids.setdefault(b.run_id, len(run_ids))
        run_counts[i] = b.n

    def cat(attr: str, dtype: str) -> np.ndarray:
        parts = [getattr(b, attr) for b in batches]
        return np.concatenate(parts) if parts else np.empty(0, dtype)

    run_code = np.repeat(run_codes, run_counts)
    key_code = np.concatenate(key_parts) if key_parts else np.empty(0, np.int32)
    steps, ts, values = cat("steps", "int64"), cat("timestamps", "int64"), cat("values", "float64")
    run_dict = pa.array(list(run_ids), pa.string())
    key_dict = pa.array(list(global_keys), pa.string())
    metrics = pa.table({
        "run_id": pa.DictionaryArray.from_arrays(run_code, run_dict),
        "key": pa.DictionaryArray.from_arrays(key_code, key_dict),
        "step": steps, "timestamp": ts, "value": values,
    })
    return InsertTables(metrics, _summary(run_code, key_code, len(global_keys), steps, ts,
                                          values, run_dict, key_dict))


def _summary(run_code: np.ndarray, key_code: np.ndarray, n_keys: int, steps: np.ndarray,
             ts: np.ndarray, values: np.ndarray, run_dict: pa.Array,
             key_dict: pa.Array) -> pa.Table:
    """Last (by step, timestamp), min and max per (run, key); NaN is skipped by min/max."""
    if not len(values):
        empty = np.empty(0, np.int32)
        return pa.table({"run_id": pa.DictionaryArray.from_arrays(empty, run_dict),
                         "key": pa.DictionaryArray.from_arrays(empty, key_dict),
                         "last_step": np.empty(0, np.int64),
                         "last_timestamp": np.empty(0, np.int64),
                         "last_value": np.empty(0), "min_value": np.empty(0),
                         "max_value": np.empty(0)})
    group = run_code.astype(np.int64) * max(n_keys, 1) + key_code
    order = np.lexsort((ts, steps, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], len(g)] - 1
    v = values[order]
    last = order[ends]
    first = order[starts]
    with np.errstate(invalid="ignore"):
        mn = np.fmin.reduceat(v, starts)
        mx = np.fmax.reduceat(v, starts)
    return pa.table({
        "run_id": pa.DictionaryArray.from_arrays(run_code[first], run_dict),
        "key": pa.DictionaryArray.from_arrays(key_code[first], key_dict),
        "last_step": steps[last], "last_timestamp": ts[last], "last_value": values[last],
        "min_value": mn, "max_value": mx,
    })
