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

from metricflow.entities import DecodedMetrics
from metricflow.store._rollup import canonical_values, rollup_table


@dataclass(frozen=True)
class InsertTables:
    metrics: pa.Table
    """One row per point: run_id, key, step, timestamp, value."""
    summary: pa.Table
    """One row per (run, key) of this insert: last/min/max of its points."""
    rollup: pa.Table
    """One row per (run, key, step block, ingest record) of this insert (store/_rollup.py)."""


def build_insert(batches: Sequence[DecodedMetrics]) -> InsertTables:
    """Concatenate batches (of any runs) into single-chunk Arrow tables.

    Rows come out sorted in table order, (run_id, key, step, timestamp,
    value) (`_table_order`): the summary and rollup rows are built from that
    order, and ClickHouse, which checks whether an insert block is already
    sorted, skips its own sort (most of the insert cost of the points table).
    """
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

    # Codes that sort like the strings (ClickHouse compares String bytes; UTF-8
    # byte order is code point order, which is how numpy compares str).
    run_names, run_rank = _sorted_dictionary(list(run_ids))
    key_names, key_rank = _sorted_dictionary(list(global_keys))
    run_code = np.repeat(run_rank[run_codes], run_counts)
    key_code = key_rank[np.concatenate(key_parts)] if key_parts else np.empty(0, np.int32)
    steps, ts, values = cat("steps", "int64"), cat("timestamps", "int64"), cat("values", "float64")
    group = run_code.astype(np.int64) * max(len(key_names), 1) + key_code
    batch = np.repeat(np.arange(len(batches), dtype=np.int32), run_counts)
    order = _table_order(group, len(run_names) * max(len(key_names), 1), steps, ts, values,
                         batch)
    if order is not None:
        run_code, key_code, group = run_code[order], key_code[order], group[order]
        steps, ts, values, batch = steps[order], ts[order], values[order], batch[order]
    run_dict = pa.array(run_names, pa.string())
    key_dict = pa.array(key_names, pa.string())
    metrics = pa.table({
        "run_id": pa.DictionaryArray.from_arrays(run_code, run_dict),
        "key": pa.DictionaryArray.from_arrays(key_code, key_dict),
        "step": steps, "timestamp": ts, "value": values,
    })
    return InsertTables(metrics, _summary(run_code, key_code, group, steps, ts, values,
                                          run_dict, key_dict),
                        rollup_table(run_code, key_code, group, batch, steps, ts, values,
                                     run_dict, key_dict))


def _sorted_dictionary(names: list[str]) -> tuple[list[str], np.ndarray]:
    """The names in sorted order, and each original code's rank in it."""
    if not names:
        return [], np.empty(0, np.int32)
    order = np.argsort(np.array(names), kind="stable")
    rank = np.empty(len(names), np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    return [names[i] for i in order], rank


_PROBE = 4096
"""Rows looked at to guess whether the stretches are long (one group per 8+ rows)."""


def _table_order(group: np.ndarray, n_groups: int, steps: np.ndarray,
                 ts: np.ndarray, values: np.ndarray, batch: np.ndarray) -> np.ndarray | None:
    """A permutation sorting rows by (group, step, timestamp, value).

    The rows come as *stretches*: runs of one group and batch in increasing
    (step, timestamp) order. Ordering whole stretches by their first (step,
    timestamp) sorts the rows unless two stretches of a group overlap, which
    is checked per stretch. Clients send each batch grouped by key, so a
    group's rows are a few long stretches and this costs a pass over the rows.
    Rows in many short stretches (keys interleaved) are first put in group
    order by a stable sort (a radix sort when the groups fit 16 bits), which
    leaves one stretch per group and batch; batches of a run that arrive out
    of order (a client keeps several in flight) are then put right the same
    way. Otherwise (overlap, or two points at one (step, timestamp)): a full
    lexsort that also orders by value (NaN last, as the points table sorts),
    so identical points are adjacent and the rollup can drop them. None when
    already in order.
    """
    n = len(group)
    if n < 2:
        return None
    head = group[:_PROBE]
    if np.count_nonzero(head[1:] != head[:-1]) * 8 <= len(head):  # long stretches, likely
        cut = _stretch_starts(group, batch, _ordered(group, steps, ts))
        if len(cut) * 8 <= n:
            pos = _stretch_order(cut, group, steps, ts)
            if pos is not None:
                return None if np.array_equal(pos, np.arange(n)) else pos
    if n_groups <= 1 << 16:
        order = np.argsort(group.astype(np.uint16), kind="stable")
    else:
        order = np.argsort(group, kind="stable")
    g, s, t = group[order], steps[order], ts[order]
    ok = _ordered(g, s, t)
    if not ok.all():
        pos = _stretch_order(_stretch_starts(g, batch[order], ok), g, s, t)
        if pos is None:
            return np.lexsort((canonical_values(values), ts, steps, group))
        order = order[pos]
    return None if np.array_equal(order, np.arange(n)) else order


def _after(g: np.ndarray, s: np.ndarray, t: np.ndarray, pg: np.ndarray, ps: np.ndarray,
           pt: np.ndarray) -> np.ndarray:
    """Whether each row (g, s, t) comes strictly after (pg, ps, pt) or starts a new group."""
    return (g != pg) | (s > ps) | ((s == ps) & (t > pt))


def _ordered(g: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`_after` of each row but the first against the row before it."""
    return _after(g[1:], s[1:], t[1:], g[:-1], s[:-1], t[:-1])


def _stretch_starts(g: np.ndarray, b: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """First row of each stretch: a new group or batch, or a row not after the previous."""
    return np.flatnonzero(np.r_[True, (g[1:] != g[:-1]) | (b[1:] != b[:-1]) | ~ok])


def _stretch_order(starts: np.ndarray, g: np.ndarray, s: np.ndarray,
                   t: np.ndarray) -> np.ndarray | None:
    """Row positions that put the stretches in (group, step, timestamp) order.

    None when two stretches of one group overlap (then no order of stretches
    sorts the rows).
    """
    ends = np.r_[starts[1:], len(g)] - 1
    seg = np.lexsort((t[starts], s[starts], g[starts]))
    first, last = starts[seg], ends[seg]
    if not _after(g[first[1:]], s[first[1:]], t[first[1:]],
                  g[last[:-1]], s[last[:-1]], t[last[:-1]]).all():
        return None
    lengths = last - first + 1
    # each row's position, stretch by stretch, without a Python loop
    shift = np.repeat(first - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return shift + np.arange(len(g))


def _summary(run_code: np.ndarray, key_code: np.ndarray, group: np.ndarray,
             steps: np.ndarray, ts: np.ndarray, values: np.ndarray, run_dict: pa.Array,
             key_dict: pa.Array) -> pa.Table:
    """Last (by step, timestamp), min and max per (run, key); NaN is skipped by min/max.

    Rows are sorted by (group, step, timestamp, value), so each group's last
    row is its last point (for ties at one (step, timestamp): the largest
    value, NaN largest).
    """
    if not len(values):
        empty = np.empty(0, np.int32)
        return pa.table({"run_id": pa.DictionaryArray.from_arrays(empty, run_dict),
                         "key": pa.DictionaryArray.from_arrays(empty, key_dict),
                         "last_step": np.empty(0, np.int64),
                         "last_timestamp": np.empty(0, np.int64),
                         "last_value": np.empty(0), "min_value": np.empty(0),
                         "max_value": np.empty(0)})
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)] - 1
    with np.errstate(invalid="ignore"):
        mn = np.fmin.reduceat(values, starts)
        mx = np.fmax.reduceat(values, starts)
    return pa.table({
        "run_id": pa.DictionaryArray.from_arrays(run_code[starts], run_dict),
        "key": pa.DictionaryArray.from_arrays(key_code[starts], key_dict),
        "last_step": steps[ends], "last_timestamp": ts[ends], "last_value": values[ends],
        "min_value": mn, "max_value": mx,
    })
