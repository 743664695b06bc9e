"""Metric history downsampled into step buckets, computed in SQL.

Buckets split [step_lo, step_hi] into N step ranges:
- narrow buckets (under 4 blocks of 256 steps) are equal:
  bucket = floor((step - step_lo) * N / (step_hi - step_lo + 1));
- wider buckets (and no Int64 overflow) are whole blocks: with b = step >> 8
  and B the number of blocks from step_lo's to step_hi's,
  bucket = floor((b - (step_lo >> 8)) * N / B), so no bucket edge splits a
  block of the rollup (query/_rollup_read.py `aligned`). Bucket spans differ
  by at most one block, except that the first and last bucket lose the part
  of their end block outside [step_lo, step_hi].
Every bucket reports its point count, first/last step, min, max, avg and last value.

NaN and Inf (documented in docs/query.md):
- min/max skip NaN but keep +-Inf (a divergence must show on the chart);
  a bucket of only NaN has min = max = NaN.
- avg is over the finite values only; NaN if the bucket has none.
- last is the raw value of the bucket's last point by (step, timestamp), so
  it may be NaN or Inf. Two points at one (step, timestamp): the larger value
  is last (NaN largest), as the points table orders them.
- nan_count/inf_count say how many such points a bucket holds.
Points are read FINAL, so a point delivered twice counts once.

Wide buckets are computed from the metric rollup (query/_rollup_read.py):
whole blocks from their pre-aggregated rows, the blocks that step_lo/step_hi
cut (and blocks whose rows overlap) from the points; the result is the same
as this module's raw query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from metricflow._validation import INT64_MAX, INT64_MIN, check_key, check_run_id
from metricflow.errors import InvalidArgument
from metricflow.query import _rollup_read as rr
from metricflow.query._arrowutil import group_bounds, value_at
from metricflow.query._deadline import read_settings
from metricflow.store import ROLLUP_SHIFT, Segment, points_sql

MAX_BULK_RUNS = 1000
MAX_BUCKETS = 10_000
DEFAULT_BUCKETS = 1000


@dataclass(frozen=True)
class DownsampledSeries:
    """Non-empty buckets of one run's metric, as equal-length numpy columns."""

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
    first_point: tuple[int, int, float] | None
    """Exact first (step, timestamp, value) in range; None if the range is empty."""
    last_point: tuple[int, int, float] | None


# A merged part holds no duplicate points, so FINAL need not re-merge a single
# part; this cut FINAL's cost over 10M points from ~400 ms to ~90 ms here.
FINAL_SETTING = "do_not_merge_across_partitions_select_final = 1"

# The "last" point's key as one UInt256: (step, timestamp, value), each mapped to an
# order-preserving unsigned 64-bit word (NaN largest). argMax over it is exact for
# points tied on (step, timestamp) and ~4x cheaper than over a tuple.
LAST_KEY = rr.LAST_KEY

_COLUMNS = ("bucket", "count", "step_first", "step_last", "min", "max", "avg", "last",
            "nan_count", "inf_count")


def check_bulk(run_ids: list[str], key: str, buckets: int) -> int:
    """Validate a downsample request; returns the bucket count to use."""
    if not 1 <= len(run_ids) <= MAX_BULK_RUNS:
        raise InvalidArgument(f"run_ids must hold 1 to {MAX_BULK_RUNS} runs, got {len(run_ids)}",
                              field="run_ids", limit=MAX_BULK_RUNS, received=len(run_ids))
    for r in run_ids:
        check_run_id(r, "run_ids")
    check_key(key, "key")
    if not 0 <= buckets <= MAX_BUCKETS:
        raise InvalidArgument(f"buckets must be in [1, {MAX_BUCKETS}] (0 = default), "
                              f"got {buckets}", field="buckets", limit=MAX_BUCKETS,
                              received=buckets)
    return buckets or DEFAULT_BUCKETS


def downsample(client: Any, db: str, run_ids: list[str], key: str, buckets: int,
               step_lo: int | None = None, step_hi: int | None = None,
               plan: dict[str, list[Segment]] | None = None, *, ends: bool = True,
               rows: pa.Table | None = None) -> list[DownsampledSeries]:
    """Downsample one metric of several runs over a shared step range.

    Runs share one range (the union of their steps unless given) so their
    buckets line up on a compare chart. Runs without points in range get no
    series. `plan`: the resumed runs and forks among them (`MetricStore.read_plan`),
    read as their lineage segments (store/_lineage.py); the others as stored.
    `ends`: look up each series' exact first and last point (two primary-key lookups
    per run; False leaves them None: a compare overlay draws only the buckets, and at
    1,000 runs the lookups were nearly half of the request).
    `rows`: the key's rollup rows of the (plain) runs over the range, already read with
    other keys' (`rr.read_rollup_rows`).
    """
    n = check_bulk(run_ids, key, buckets)
    ids = sorted(set(run_ids))
    plan = {r: s for r, s in (plan or {}).items() if r in set(ids)}
    pieces = rr.pieces_of(ids, plan)
    check_step_range(step_lo, step_hi)
    if step_lo is None or step_hi is None:
        plain = [r for r in ids if r not in plan]
        rng = _combine(_step_range_rollup(client, db, plain, key) if plain else None,
                       _step_range(client, db, [p for p in pieces if not p.plain], key))
        if rng is None:
            return []
        step_lo = rng[0] if step_lo is None else step_lo
        step_hi = rng[1] if step_hi is None else step_hi
        if step_hi < step_lo:  # one bound given, every point beyond it: none in range
            return []
        check_step_range(step_lo, step_hi)  # one bound given far from the data's steps
    if rr.aligned(step_lo, step_hi, n):
        got = rr.rollup_partials(client, db, pieces, key, n, step_lo, step_hi, rows)
        if got is not None:
            parts, raw_blocks = got
            if raw_blocks:
                parts = rr.Partials.concat([parts, _raw_block_partials(
                    client, db, pieces, key, n, step_lo, step_hi, raw_blocks)])
            # pieces of one run are disjoint in steps: label them by their run
            parts.run = np.array([p.target for p in pieces], np.int64)[parts.run]
            return _from_partials(client, db, ids, key, step_lo, step_hi, parts, plan, ends)
    return downsample_raw(client, db, ids, key, n, step_lo, step_hi, plan, ends=ends)


def check_step_bound(name: str, v: int | None) -> None:
    """A downsample bound (`step_min`, `step_max`) is an int64 step, if given."""
    if v is not None and not INT64_MIN <= v <= INT64_MAX:
        raise InvalidArgument(f"{name} must be an int64 step, got {str(v)[:40]}",
                              field=name, limit=INT64_MAX, received=str(v)[:40])


def check_step_range(step_lo: int | None, step_hi: int | None) -> None:
    """Bounds given for a downsample: int64 steps, in order, spanning fewer than 2^63 - 1
    steps (the bucket width is an Int64: a wider range divided by zero, a 500)."""
    check_step_bound("step_min", step_lo)
    check_step_bound("step_max", step_hi)
    if step_lo is not None and step_hi is not None:
        if step_hi < step_lo:
            raise InvalidArgument(f"step_max ({step_hi}) is below step_min ({step_lo})",
                                  field="step_max", received=step_hi)
        if step_hi - step_lo >= INT64_MAX:
            raise InvalidArgument(
                f"step_max - step_min must be below {INT64_MAX}, got {step_hi - step_lo} "
                f"(step_min {step_lo}, step_max {step_hi})", field="step_max",
                limit=INT64_MAX, received=step_hi)


def _combine(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def downsample_raw(client: Any, db: str, ids: list[str], key: str, n: int, step_lo: int,
                   step_hi: int, plan: dict[str, list[Segment]] | None = None, *,
                   ends: bool = True) -> list[DownsampledSeries]:
    """The reference computation: one GROUP BY over every point in range."""
    plan = plan or {}
    params = _bucket_params(n, step_lo, step_hi)
    params.update(key=key)
    src = points_sql(db, plan, [r for r in ids if r not in plan],
                     lambda _: "key = {key:String} AND step >= {lo:Int64} AND step <= {hi:Int64}",
                     params, columns="run_id, step, timestamp, value")
    sql = f"""
        SELECT run_id,
               toInt64({_bucket_expr(n, step_lo, step_hi)}) AS bucket,
               toInt64(count()) AS count,
               min(step) AS step_first, max(step) AS step_last,
               min(value) AS min, max(value) AS max,
               sumIf(value, isFinite(value)) / countIf(isFinite(value)) AS avg,
               toInt64(countIf(isNaN(value))) AS nan_count,
               toInt64(count() - countIf(isFinite(value)) - countIf(isNaN(value))) AS inf_count,
               argMax(value, {LAST_KEY}) AS last
        FROM {src}
        GROUP BY run_id, bucket
        ORDER BY run_id, bucket
        SETTINGS {FINAL_SETTING}
    """
    tbl = client.query_arrow(sql, parameters=params, settings=read_settings())
    if tbl.num_rows == 0:
        return []
    starts, stops = group_bounds(tbl, ["run_id"])
    rids = [value_at(tbl, "run_id", s) for s in starts]  # one per run
    cols = {c: tbl.column(c).to_numpy() for c in _COLUMNS}
    return _series(client, db, key, step_lo, step_hi, rids, starts, stops, cols, plan, ends)


def _bucket_params(n: int, lo: int, hi: int) -> dict[str, Any]:
    return {"lo": lo, "hi": hi, "n": n, "width": hi - lo + 1, "blo": lo >> ROLLUP_SHIFT,
            "nb": rr.n_blocks(lo, hi)}


def _bucket_expr(n: int, lo: int, hi: int) -> str:
    """SQL bucket of `step` (module docstring), over `_bucket_params`."""
    if rr.aligned(lo, hi, n):
        return rr.bucket_sql()
    # Int64 arithmetic when it cannot overflow (3x cheaper than Int128 per point)
    off = "(step - {lo:Int64})" if (hi - lo + 1) * n < 2**62 else "toInt128(step - {lo:Int64})"
    return f"intDiv({off} * {{n:Int64}}, {{width:Int64}})"


def _raw_block_partials(client: Any, db: str, pieces: list[rr.Piece], key: str, n: int,
                        lo: int, hi: int, blocks: list[tuple[int, int]]) -> rr.Partials:
    """Partials per (piece, block, bucket) of the given (piece, block)s, from the points.

    The step ranges are those of the distinct blocks (two when lo's and hi's
    blocks are cut in every run; at most MAX_OVERLAP_BLOCKS more), read for
    the pieces concerned (each within its step bounds, one point per step for a
    resumed source); a (piece, block) not asked for is dropped afterwards.
    """
    params = _bucket_params(n, lo, hi)
    params["key"] = key
    plain, plan = rr.segment_plan(pieces, {r for r, _ in blocks})
    ranges = []
    for i, b in enumerate(sorted({b for _, b in blocks})):
        params[f"a{i}"], params[f"b{i}"] = b << ROLLUP_SHIFT, ((b + 1) << ROLLUP_SHIFT) - 1
        ranges.append(f"step BETWEEN {{a{i}:Int64}} AND {{b{i}:Int64}}")
    cond = ("key = {key:String} AND step >= {lo:Int64} AND step <= {hi:Int64} "
            f"AND ({' OR '.join(ranges)})")
    tbl = client.query_arrow(f"""
        SELECT run_id, block, bucket, f.1 AS first_step, f.2 AS first_ts, l.1 AS last_step,
               l.2 AS last_ts, c, nf, nn, sf, mn, mx, lv FROM (
            SELECT run_id, bitShiftRight(step, {int(ROLLUP_SHIFT)}) AS block,
                   toInt64({rr.bucket_sql()}) AS bucket,
                   min((step, timestamp)) AS f, max((step, timestamp)) AS l,
                   toInt64(count()) AS c, toInt64(countIf(isFinite(value))) AS nf,
                   toInt64(countIf(isNaN(value))) AS nn, sumIf(value, isFinite(value)) AS sf,
                   min(value) AS mn, max(value) AS mx,
                   argMax(value, {LAST_KEY}) AS lv
            FROM {points_sql(db, plan, plain, lambda _: cond, params)}
            GROUP BY run_id, block, bucket)
        SETTINGS {FINAL_SETTING}""", parameters=params, settings=read_settings())
    if tbl.num_rows == 0:
        return rr.empty()
    run = rr.codes(tbl.column("run_id"), rr.labels(pieces))
    block = tbl.column("block").to_numpy().astype(np.int64)
    want = np.array(blocks, np.int64).reshape(-1, 2)
    known = np.unique(np.r_[block, want[:, 1]])  # blocks as small ranks: no overflow
    keep = np.isin(run * len(known) + np.searchsorted(known, block),
                   want[:, 0] * len(known) + np.searchsorted(known, want[:, 1]))
    cols = [tbl.column(c).to_numpy()[keep] for c in ("bucket", "first_step", "first_ts",
                                                      "last_step", "last_ts", "c", "nf", "nn",
                                                      "sf", "mn", "mx", "lv")]
    return rr.Partials(run[keep], *cols)


def _from_partials(client: Any, db: str, ids: list[str], key: str, lo: int, hi: int,
                   parts: rr.Partials, plan: dict[str, list[Segment]], ends: bool
                   ) -> list[DownsampledSeries]:
    if not len(parts.run):
        return []
    run, _, cols = rr.merge(parts)
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    stops = np.r_[starts[1:], len(run)]
    return _series(client, db, key, lo, hi, [ids[int(r)] for r in run[starts]], starts,
                   stops, cols, plan, ends)



def _step_range_rollup(client: Any, db: str, ids: list[str], key: str
                       ) -> tuple[int, int] | None:
    """Smallest and largest step over the runs, from the rollup rows.

    Equal to the points' range except while a batch's rollup rows are not yet
    inserted after its points (the same window the rollup itself has).
    """
    row = client.query(
        f"SELECT min(first_step), max(last_step), count() FROM {db}.metric_rollup "
        "WHERE run_id IN {ids:Array(String)} AND key = {key:String}",
        parameters={"ids": ids, "key": key}, settings=read_settings()).result_rows[0]
    return (int(row[0]), int(row[1])) if row[2] else None


def _step_range(client: Any, db: str, pieces: list[rr.Piece], key: str
                ) -> tuple[int, int] | None:
    """Smallest and largest step over the pieces, each read in primary-key order (no scan).

    A run of several pieces (disjoint step ranges, in step order) reads its first
    piece's smallest and its last piece's largest step; only when one of them has no
    point of the key are all its pieces read.
    """
    ends: dict[int, tuple[int, int]] = {}  # run -> (first piece, last piece)
    for i, p in enumerate(pieces):
        f, _ = ends.get(p.target, (i, i))
        ends[p.target] = (f, i)
    wanted = [(i, d) for f, last in ends.values() for i, d in ((f, "ASC"), (last, "DESC"))]
    got = _piece_steps(client, db, pieces, key, wanted)
    if any(w not in got for w in wanted if ends[pieces[w[0]].target][0]
           != ends[pieces[w[0]].target][1]):  # a run's end piece without the key: read all
        got = _piece_steps(client, db, pieces, key,
                           [(i, d) for i in range(len(pieces)) for d in ("ASC", "DESC")])
    if not got:
        return None
    return min(got.values()), max(got.values())


def _piece_steps(client: Any, db: str, pieces: list[rr.Piece], key: str,
                 wanted: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """The first (ASC) or last (DESC) step of the key in each wanted piece that has one."""
    parts: list[str] = []
    params: dict[str, Any] = {"key": key}
    for n, (i, d) in enumerate(wanted):
        p = pieces[i]
        params[f"r{i}"] = p.source
        bounds = ""
        if not p.plain:
            params[f"a{i}"], params[f"b{i}"] = p.lo, p.hi
            bounds = f" AND step >= {{a{i}:Int64}} AND step <= {{b{i}:Int64}}"
        parts.append(f"SELECT {n} AS w, step FROM (SELECT step FROM {db}.metrics "
                     f"WHERE run_id = {{r{i}:String}} AND key = {{key:String}}{bounds} "
                     f"ORDER BY step {d} LIMIT 1)")
    if not parts:
        return {}
    rows = client.query(" UNION ALL ".join(parts), parameters=params,
                        settings=read_settings()).result_rows
    return {wanted[int(w)]: int(st) for w, st in rows}


def _end_points(client: Any, db: str, key: str, pairs: list[tuple[str, int]],
                plan: dict[str, list[Segment]]
                ) -> dict[tuple[str, int], list[tuple[int, int, float]]]:
    """All points at the given (run, step) pairs: primary-key lookups.

    A resumed run's or a fork's step is looked up in the run its segment reads (one
    lookup for all, like a plain run's); a resumed source's step keeps its last write.
    """
    lookup: dict[tuple[str, int], list[tuple[str, int]]] = {}  # (source, step) -> wanted
    dedup: dict[str, list[Segment]] = {}
    for r, st in pairs:
        seg = next((x for x in plan.get(r, ()) if x.lo <= st <= x.hi), None)
        if seg is None:
            lookup.setdefault((r, st), []).append((r, st))
        elif seg.dedup:
            dedup.setdefault(r, []).append(Segment(r, seg.source, st, st, True))
        else:
            lookup.setdefault((seg.source, st), []).append((r, st))
    params: dict[str, Any] = {"key": key, "pairs": list(lookup)}
    branches = []
    if lookup:
        branches.append(f"SELECT run_id, step, timestamp, value FROM {db}.metrics FINAL "
                        "WHERE key = {key:String} "
                        "AND (run_id, step) IN {pairs:Array(Tuple(String, Int64))}")
    if dedup:
        src = points_sql(db, dedup, [], lambda _: "key = {key:String}", params)
        branches.append(f"SELECT run_id, step, timestamp, value FROM {src}")
    out: dict[tuple[str, int], list[tuple[int, int, float]]] = {}
    if not branches:
        return out
    rows = client.query(" UNION ALL ".join(branches), parameters=params,
                        settings=read_settings()).result_rows
    for r, st, ts, v in rows:  # a few rows per run
        point = (int(st), int(ts), float(v))
        for want in lookup.get((r, int(st)), [(r, int(st))]):
            out.setdefault(want, []).append(point)
    return out


def _series(client: Any, db: str, key: str, lo: int, hi: int, rids: list[str],
            starts: np.ndarray, stops: np.ndarray, cols: dict[str, np.ndarray],
            plan: dict[str, list[Segment]], ends: bool = True) -> list[DownsampledSeries]:
    pairs = [(r, int(cols["step_first"][s])) for r, s in zip(rids, starts)]
    pairs += [(r, int(cols["step_last"][e - 1])) for r, e in zip(rids, stops)]
    points = _end_points(client, db, key, pairs, plan) if ends else {}
    out = []
    for rid, s, e, fp, lp in zip(rids, starts, stops, pairs[:len(rids)], pairs[len(rids):]):
        first = min(points.get(fp, []), default=None)
        last = max(points.get(lp, []), default=None)
        out.append(DownsampledSeries(rid, key, lo, hi, **{c: cols[c][s:e] for c in _COLUMNS},
                                     first_point=first, last_point=last))
    return out
