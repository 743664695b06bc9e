"""Downsampling from the metric rollup (store/_rollup.py), exact like the raw query.

A rollup row covers one segment of a step block (2**ROLLUP_SHIFT steps). For
one request:
1. Read the scalar columns of every rollup row in range (one row per block
   for a series logged in order), and drop copies of one row (same identity:
   a replayed record).
2. Per (run, block), the rows are *clean* if their [first, last]
   (step, timestamp) intervals are pairwise disjoint (sorted by first, each
   starts after the previous ends): then no point is counted twice. A clean
   block that lies inside one bucket and inside [lo, hi] contributes its rows'
   aggregates as they are.
3. A clean block that a bucket edge (or lo/hi) cuts: read its packed points
   from the same rows (one query for all such blocks) and aggregate them.
4. A block whose rows overlap (a batch inserted twice in different company,
   or concurrent writers): aggregate its points from `metrics FINAL`.
All parts become partial aggregates per (run, bucket, piece); pieces of one
bucket are disjoint in (step, timestamp), so merging them is exact: counts
and sums add, min/max fold, the last piece's last value is the bucket's last.
Sums are added in a different order than the raw query does, so `avg` can
differ from it in the last bits (no other column can).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metricflow.store._schema import ROLLUP_SHIFT

MIN_BUCKET_BLOCKS = 4
"""Use the rollup only when a bucket spans this many blocks; narrower buckets cut
most blocks, and the raw query is cheaper than unpacking nearly every point."""
MAX_OVERLAP_BLOCKS = 200
"""Above this many overlapping blocks, the whole request is computed raw."""

_SCALARS = ("block", "first_step", "first_ts", "ident", "last_step", "last_ts", "count",
            "n_finite", "n_nan", "sum_finite", "min_value", "max_value", "last_value")


@dataclass
class Partials:
    """Partial aggregates of disjoint pieces, as equal-length numpy columns."""

    run: np.ndarray
    bucket: np.ndarray
    first_step: np.ndarray
    first_ts: np.ndarray
    last_step: np.ndarray
    last_ts: np.ndarray
    count: np.ndarray
    n_finite: np.ndarray
    n_nan: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray
    last: np.ndarray

    @staticmethod
    def concat(parts: list[Partials]) -> Partials:
        return Partials(*(np.concatenate([getattr(p, f.name) for p in parts])
                          for f in fields(Partials)))


def usable(width: int, n: int) -> bool:
    """Whether the rollup pays off (and its int64 bucket arithmetic cannot overflow)."""
    return width * n < 2**62 and width >= MIN_BUCKET_BLOCKS * n * (1 << ROLLUP_SHIFT)


def _bucket(steps: np.ndarray, lo: int, n: int, width: int) -> np.ndarray:
    return ((steps - lo) * n) // width


def codes(col: Any, ids: list[str]) -> np.ndarray:
    arr = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return pc.index_in(arr, value_set=pa.array(ids, pa.string())).to_numpy(
        zero_copy_only=False).astype(np.int64)


def _distinct_rows(run: np.ndarray, c: dict[str, np.ndarray]) -> np.ndarray:
    """Mask dropping copies of a row (same run and sort key), adjacent after ORDER BY."""
    same = run[1:] == run[:-1]
    for k in ("block", "first_step", "first_ts", "ident"):
        same &= c[k][1:] == c[k][:-1]
    return np.r_[True, ~same]


def rollup_partials(client: Any, db: str, ids: list[str], key: str, n: int, lo: int,
                    hi: int) -> tuple[Partials, list[tuple[int, int]]] | None:
    """Partials from the rollup, and the (run code, block)s that must be read raw.

    None when too many blocks overlap (then the caller computes everything raw).
    """
    width = hi - lo + 1
    tbl = client.query_arrow(
        f"SELECT run_id, {', '.join(_SCALARS)} FROM {db}.metric_rollup "
        "WHERE run_id IN {ids:Array(String)} AND key = {key:String} "
        "AND block >= {blo:Int64} AND block <= {bhi:Int64} "
        "ORDER BY run_id, block, first_step, first_ts, ident",
        parameters={"ids": ids, "key": key, "blo": lo >> ROLLUP_SHIFT,
                    "bhi": hi >> ROLLUP_SHIFT})
    if tbl.num_rows == 0:
        return empty(), []
    run = codes(tbl.column("run_id"), ids)
    c = {k: tbl.column(k).to_numpy() for k in _SCALARS}
    keep = _distinct_rows(run, c)
    if not keep.all():
        run, c = run[keep], {k: v[keep] for k, v in c.items()}
    blk = c["block"]
    new_group = np.r_[True, (run[1:] != run[:-1]) | (blk[1:] != blk[:-1])]
    gstart = np.flatnonzero(new_group)
    gid = np.cumsum(new_group) - 1
    # consecutive rows of one block must not overlap: first > previous last
    fs, ft, ls, lt = c["first_step"], c["first_ts"], c["last_step"], c["last_ts"]
    overlap = ~new_group[1:] & ((fs[1:] < ls[:-1]) | ((fs[1:] == ls[:-1]) & (ft[1:] <= lt[:-1])))
    dirty = np.zeros(len(gstart), bool)
    dirty[gid[1:][overlap]] = True
    gmin = fs[gstart]
    gmax = np.maximum.reduceat(ls, gstart)
    inside = (gmin >= lo) & (gmax <= hi)
    gb_lo = _bucket(np.clip(gmin, lo, hi), lo, n, width)
    gb_hi = _bucket(np.clip(gmax, lo, hi), lo, n, width)
    whole = ~dirty & inside & (gb_lo == gb_hi)
    cut = ~dirty & ~whole
    if int(dirty.sum()) > MAX_OVERLAP_BLOCKS:
        return None
    rows = whole[gid]
    parts = [Partials(run[rows], gb_lo[gid][rows], fs[rows], ft[rows], ls[rows], lt[rows],
                      c["count"][rows].astype(np.int64), c["n_finite"][rows].astype(np.int64),
                      c["n_nan"][rows].astype(np.int64), c["sum_finite"][rows],
                      c["min_value"][rows], c["max_value"][rows], c["last_value"][rows])]
    if cut.any():
        parts.append(_cut_partials(client, db, ids, key, n, lo, hi,
                                   run[gstart][cut], blk[gstart][cut]))
    dirty_blocks = list(zip(run[gstart][dirty].tolist(), blk[gstart][dirty].tolist()))
    return Partials.concat(parts), dirty_blocks


def empty() -> Partials:
    i, f = np.empty(0, np.int64), np.empty(0, np.float64)
    return Partials(i, i, i, i, i, i, i, i, i, f, f, f, f)


def _cut_partials(client: Any, db: str, ids: list[str], key: str, n: int, lo: int, hi: int,
                  runs: np.ndarray, blocks: np.ndarray) -> Partials:
    """Aggregate the packed points of clean blocks that an edge cuts (disjoint rows)."""
    # Select the cut blocks by arithmetic on `block`, not by a set of ~1,000 blocks:
    # chDB re-evaluated such an IN set per tiny block of rows (0.5-1 s here). The
    # arithmetic picks every block a bucket edge or lo/hi cuts; the rows of
    # blocks not in `blocks` (overlapping, or whose points fall in one bucket)
    # are dropped below.
    start, span = f"bitShiftLeft(block, {int(ROLLUP_SHIFT)})", (1 << ROLLUP_SHIFT) - 1
    bucket = "intDiv(({x} - {{lo:Int64}}) * {{n:Int64}}, {{w:Int64}})"
    cond = (f"({bucket.format(x=f'greatest({start}, {{lo:Int64}})')} != "
            f"{bucket.format(x=f'least({start} + {span}, {{hi:Int64}})')} "
            f"OR {start} < {{lo:Int64}} OR {start} + {span} > {{hi:Int64}})")
    tbl = client.query_arrow(
        f"SELECT run_id, block, first_step, first_ts, ident, offs, vals "
        f"FROM {db}.metric_rollup "
        "WHERE run_id IN {ids:Array(String)} AND key = {key:String} "
        f"AND block >= {{blo:Int64}} AND block <= {{bhi:Int64}} AND {cond}",
        parameters={"ids": [ids[r] for r in sorted(set(runs.tolist()))], "key": key,
                    "lo": lo, "hi": hi, "n": n, "w": hi - lo + 1,
                    "blo": int(blocks.min()), "bhi": int(blocks.max())})
    run = codes(tbl.column("run_id"), ids)
    c = {k: tbl.column(k).to_numpy() for k in ("block", "first_step", "first_ts", "ident")}
    nb = int(blocks.max()) - int(blocks.min()) + 1
    wanted = np.isin(run * nb + (c["block"] - int(blocks.min())),
                     runs.astype(np.int64) * nb + (blocks - int(blocks.min())))
    order = np.lexsort((c["ident"], c["first_ts"], c["first_step"], c["block"], run))
    order = order[wanted[order]]
    tbl = tbl.take(pa.array(order))
    run = run[order]
    c = {k: v[order] for k, v in c.items()}
    keep = _distinct_rows(run, c)
    lists = {k: tbl.column(k).combine_chunks().filter(pa.array(keep))
             for k in ("offs", "vals")}
    lengths = pc.list_value_length(lists["offs"]).to_numpy(zero_copy_only=False)
    prun = np.repeat(run[keep], lengths)
    base = np.repeat(c["block"][keep] << ROLLUP_SHIFT, lengths)
    steps = base + lists["offs"].flatten().to_numpy().astype(np.int64)
    vals = lists["vals"].flatten().to_numpy(zero_copy_only=False)
    m = (steps >= lo) & (steps <= hi)
    if not m.all():
        prun, steps, vals = prun[m], steps[m], vals[m]
    return points_partials(prun, steps, vals, lo, n, hi - lo + 1)


def points_partials(run: np.ndarray, steps: np.ndarray, vals: np.ndarray, lo: int, n: int,
                    width: int) -> Partials:
    """Partials per (run, block, bucket) of distinct points sorted by (run, step, ts, value).

    A piece's timestamps are not known (not packed) and not needed: pieces
    come from different blocks or buckets, so they are ordered by step alone.
    """
    if not len(steps):
        return empty()
    bucket = _bucket(steps, lo, n, width)
    blk = steps >> ROLLUP_SHIFT
    cut = (run[1:] != run[:-1]) | (blk[1:] != blk[:-1]) | (bucket[1:] != bucket[:-1])
    s = np.flatnonzero(np.r_[True, cut])
    e = np.r_[s[1:], len(steps)] - 1
    fin = np.isfinite(vals)
    with np.errstate(invalid="ignore"):
        mn = np.fmin.reduceat(vals, s)
        mx = np.fmax.reduceat(vals, s)
    zero = np.zeros(len(s), np.int64)
    return Partials(run[s], bucket[s], steps[s], zero, steps[e], zero,
                    np.diff(np.r_[s, len(steps)]).astype(np.int64),
                    np.add.reduceat(fin.astype(np.int64), s),
                    np.add.reduceat(np.isnan(vals).astype(np.int64), s),
                    np.add.reduceat(np.where(fin, vals, 0.0), s), mn, mx, vals[e])


def merge(p: Partials) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Fold disjoint pieces into buckets: (run code per bucket, start rows, columns).

    Columns are those of the raw query: bucket, count, step_first, step_last,
    min, max, avg, last, nan_count, inf_count; sorted by (run, bucket).
    """
    order = np.lexsort((p.first_ts, p.first_step, p.bucket, p.run))
    p = Partials(*(getattr(p, f.name)[order] for f in fields(Partials)))
    s = np.flatnonzero(np.r_[True, (p.run[1:] != p.run[:-1]) | (p.bucket[1:] != p.bucket[:-1])])
    e = np.r_[s[1:], len(p.run)] - 1
    count = np.add.reduceat(p.count, s)
    n_fin = np.add.reduceat(p.n_finite, s)
    n_nan = np.add.reduceat(p.n_nan, s)
    total = np.add.reduceat(p.sum, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(n_fin > 0, total / np.maximum(n_fin, 1), np.nan)
        mn = np.fmin.reduceat(p.min, s)
        mx = np.fmax.reduceat(p.max, s)
    cols = {"bucket": p.bucket[s], "count": count,
            "step_first": np.minimum.reduceat(p.first_step, s),
            "step_last": np.maximum.reduceat(p.last_step, s),
            "min": mn, "max": mx, "avg": avg, "last": p.last[e],
            "nan_count": n_nan, "inf_count": count - n_fin - n_nan}
    return p.run[s], s, cols
