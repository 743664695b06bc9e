"""Per (run, key, step block) rollup rows of an insert, built with numpy.

A block is 2**ROLLUP_SHIFT consecutive steps. Downsampling reads one rollup
row per block instead of every point (query/_rollup_read.py).

Rows. The insert's points are sorted by (run, key, step, timestamp, value)
(store/_arrow.py). A *segment* is a maximal stretch of that order with the
same (run, key, block, ingest record). One row per segment holds its first
and last (step, timestamp), the value of its last point, and over its
*distinct* points: count, finite count, NaN count, sum of finite values,
min and max (NaN skipped). `ident` hashes the segment's distinct points.
Wide downsampling buckets are whole blocks, so no bucket edge needs the
points of a block; the few blocks a request's step range cuts are read from
the points table (query/_rollup_read.py).

Why reads stay exact although a batch may be inserted twice (docs/query.md):
- a record replayed alone, or in the same company, yields the same segment:
  the same sort key (..., first_step, first_ts, ident), collapsed by the
  ReplacingMergeTree and, before merges, dropped by the reader;
- in any other case a point stored twice lies in two rows whose
  [first, last] (step, timestamp) intervals therefore intersect. The reader
  uses a block's rows only if their intervals are pairwise disjoint, which
  proves no point is counted twice; other blocks are read from the points.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from metricflow.store._schema import ROLLUP_SHIFT

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def canonical_values(values: np.ndarray) -> np.ndarray:
    """Values as the points table compares them: -0.0 == 0.0, every NaN equal."""
    return np.where(np.isnan(values), np.nan, values + 0.0)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, elementwise on uint64 (wraps, no Python per element)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def rollup_table(run_code: np.ndarray, key_code: np.ndarray, group: np.ndarray,
                 batch: np.ndarray, steps: np.ndarray, ts: np.ndarray, values: np.ndarray,
                 run_dict: pa.Array, key_dict: pa.Array) -> pa.Table:
    """Rollup rows of points sorted by (group, step, timestamp, value).

    Args:
        group: run * n_keys + key per point; batch: index of the ingest
            record each point came from.
    """
    if len(values) > 1:
        # Identical points are adjacent (sorted by value within a (step, timestamp));
        # without two points at one (step, timestamp) there are none (the usual case).
        tie = (group[1:] == group[:-1]) & (steps[1:] == steps[:-1]) & (ts[1:] == ts[:-1])
        if tie.any():
            bits = canonical_values(values).view(np.uint64)
            dup = tie & (bits[1:] == bits[:-1])
            if dup.any():
                keep = np.r_[True, ~dup]
                run_code, key_code, group, batch = (run_code[keep], key_code[keep],
                                                    group[keep], batch[keep])
                steps, ts, values = steps[keep], ts[keep], values[keep]
    n = len(values)
    block = steps >> ROLLUP_SHIFT
    if n:
        cut = ((group[1:] != group[:-1]) | (block[1:] != block[:-1])
               | (batch[1:] != batch[:-1]))
        starts = np.flatnonzero(np.r_[True, cut])
    else:
        starts = np.empty(0, np.int64)
    ends = np.r_[starts[1:], n] - 1 if n else starts
    count = np.diff(np.r_[starts, n]).astype(np.uint64)

    def seg_sum(x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, starts) if n else np.empty(0, x.dtype)

    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", over="ignore"):
        mn = np.fmin.reduceat(values, starts) if n else np.empty(0)
        mx = np.fmax.reduceat(values, starts) if n else np.empty(0)
        # the same record always hashes the same; equal points of other records that
        # differ in bits (-0.0, NaN payloads) only make rows overlap: read raw, exact
        point_hash = _mix(steps.view(np.uint64) * _GOLD ^ ts.view(np.uint64) * _M1
                          ^ values.view(np.uint64))
        ident = _mix(seg_sum(point_hash) ^ (count * _M2))
    return pa.table({
        "run_id": pa.DictionaryArray.from_arrays(run_code[starts], run_dict),
        "key": pa.DictionaryArray.from_arrays(key_code[starts], key_dict),
        "block": block[starts],
        "first_step": steps[starts], "first_ts": ts[starts], "ident": ident,
        "last_step": steps[ends], "last_ts": ts[ends],
        "count": count,
        "n_finite": seg_sum(finite.astype(np.uint64)),
        "n_nan": seg_sum(np.isnan(values).astype(np.uint64)),
        "sum_finite": seg_sum(np.where(finite, values, 0.0)),
        "min_value": mn, "max_value": mx,
        "last_value": values[ends],
    })
