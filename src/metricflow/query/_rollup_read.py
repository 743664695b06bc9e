"""Downsampling from the metric rollup (store/_rollup.py), exact like the raw query.

A rollup row covers one segment of a step block (2**ROLLUP_SHIFT steps).
Wide buckets are whole blocks (`aligned`). For one request:
1. Read the scalar columns of every rollup row in range (one row per block
   for a series logged in order), and drop copies of one row (same identity:
   a replayed record).
2. Per (run, block), the rows are *clean* if their [first, last]
   (step, timestamp) intervals are pairwise disjoint (sorted by first, each
   starts after the previous ends): then no point is counted twice. A clean
   block whose points lie inside [lo, hi] contributes its rows' aggregates
   as they are, to the one bucket that holds the block.
3. The rest is aggregated from `metrics FINAL` (query/_history.py): blocks
   whose rows overlap (a batch inserted twice in different company, or
   concurrent writers), and the blocks of lo and hi when the range cuts them
   (at most two a run, two primary-key ranges).
All parts become partial aggregates per (run, bucket, piece); pieces of one
bucket are disjoint in (step, timestamp), so merging them is exact: counts
and sums add, min/max fold, the last piece's last value is the bucket's last.
Sums are added in a different order than the raw query does, so `avg` can
differ from it in the last bits (no other column can).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metricflow.query._deadline import read_settings
from metricflow.store import FORK_ROLLUP_IDENT, ROLLUP_SHIFT, Segment, points_sql

# The "last" point's key as one UInt256: (step, timestamp, value), each mapped to an
# order-preserving unsigned 64-bit word (NaN largest). argMax over it is exact for
# points tied on (step, timestamp) and ~4x cheaper than over a tuple.
_U64_SIGN = "toUInt64(9223372036854775808)"
_VALUE_KEY = ("if(isNaN(value), toUInt64(18446744073709551615), "
              "if(bitShiftRight(reinterpretAsUInt64(value), 63) = 1, "
              "bitNot(reinterpretAsUInt64(value)), "
              f"bitOr(reinterpretAsUInt64(value), {_U64_SIGN})))")
LAST_KEY = (f"bitOr(bitOr(bitShiftLeft(toUInt256(bitXor(reinterpretAsUInt64(step), {_U64_SIGN})), "
            f"128), bitShiftLeft(toUInt256(bitXor(reinterpretAsUInt64(timestamp), {_U64_SIGN})), "
            f"64)), toUInt256({_VALUE_KEY}))")
CUT_IDENT = (1 << 64) - 1
"""ident of a row computed from points for a block a lineage segment's bound cuts."""

MIN_BUCKET_BLOCKS = 4
"""Buckets at least this many blocks wide are block-aligned and read from the
rollup; narrower buckets are equal step ranges, computed by the raw query."""
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


@dataclass(frozen=True)
class Piece:
    """Part of a requested run's series: `source`'s points in steps [lo, hi].

    A plain run is one piece (its own points, any step); a resumed run or a fork is
    one piece per lineage segment (store/_lineage.py). Pieces of one run are disjoint
    in steps, so their partials merge exactly.
    """

    target: int
    """Index of the requested run."""
    source: str
    lo: int
    hi: int
    dedup: bool
    """Keep one point per step (a resumed source): overlap is judged by step alone."""
    plain: bool
    """Read as stored, in the shared branch of plain runs (no step bounds)."""


def pieces_of(ids: list[str], plan: dict[str, list[Segment]]) -> list[Piece]:
    """The pieces of the requested runs (`plan`: the resumed runs and forks among them)."""
    out = []
    for i, r in enumerate(ids):
        segs = plan.get(r)
        if segs is None:
            out.append(Piece(i, r, -(1 << 63), (1 << 63) - 1, False, True))
        else:
            out.extend(Piece(i, s.source, s.lo, s.hi, s.dedup, False) for s in segs)
    return out


def labels(pieces: list[Piece]) -> list[str]:
    """Each piece's label in query results: a plain run's id, or `seg:<index>`."""
    return [p.source if p.plain else f"seg:{i}" for i, p in enumerate(pieces)]


def segment_plan(pieces: list[Piece], only: set[int] | None = None
                 ) -> tuple[list[str], dict[str, list[Segment]]]:
    """`points_sql` arguments reading the pieces (plain runs, and segments labelled
    `seg:<index>`), clipped to their step bounds; `only`: just these piece indices."""
    plain, plan = [], {}
    for i, p in enumerate(pieces):
        if only is not None and i not in only:
            continue
        if p.plain:
            plain.append(p.source)
        else:
            plan[f"seg:{i}"] = [Segment(f"seg:{i}", p.source, p.lo, p.hi, p.dedup)]
    return plain, plan


def aligned(lo: int, hi: int, n: int) -> bool:
    """Whether N buckets over [lo, hi] are block-aligned (and read from the rollup).

    Wide buckets are whole blocks: bucket = (block - block(lo)) * N // blocks
    in range (`bucket_of`), so no block is split between two buckets and the
    rollup never has to unpack points for a bucket edge; only the blocks that
    hold lo and hi may be cut. Buckets span whole numbers of blocks that
    differ by at most one (the first and last bucket also lose the part of
    their end block outside [lo, hi]). N equal to the number of blocks in range
    is aligned too, at any width: one block per bucket, none wider than another
    (the UI asks for that count when it is near one bucket per pixel: a
    100k-step chart then reads ~400 rollup rows instead of 100k points). Other
    narrower buckets are N equal step ranges, floor((step - lo) * N / (hi - lo + 1)),
    computed raw.
    """
    width = hi - lo + 1
    return width * n < 2**62 and (width >= MIN_BUCKET_BLOCKS * n * (1 << ROLLUP_SHIFT)
                                  or n == n_blocks(lo, hi))


def buckets_for_px(px: int, span: int | None = None, lo: int = 0) -> int:
    """The bucket count the web UI asks for a chart `px` CSS pixels wide over `span` steps
    from `lo` (ui/src/charts/data.ts `bucketsFor`; ui/src/charts/buckets_cases.json holds
    the cases both are tested on): one per pixel (10..10,000), or a nearby count the rollup
    answers: whole 1,024-step buckets when that still gives one per two pixels, else one
    per 256-step block when that gives one per two pixels to two per pixel."""
    n = max(10, min(10_000, int(px)))
    if span and span > 0:
        whole = span // (MIN_BUCKET_BLOCKS << ROLLUP_SHIFT)
        if -(-n // 2) <= whole < n:
            return whole
        blocks = n_blocks(lo, lo + span - 1)
        if -(-n // 2) <= blocks <= min(2 * n, 10_000):
            return blocks
    return n


def n_blocks(lo: int, hi: int) -> int:
    return (hi >> ROLLUP_SHIFT) - (lo >> ROLLUP_SHIFT) + 1


def bucket_of(steps: np.ndarray, lo: int, hi: int, n: int) -> np.ndarray:
    """Aligned bucket of each step in [lo, hi] (see `aligned`)."""
    return ((steps >> ROLLUP_SHIFT) - (lo >> ROLLUP_SHIFT)) * n // n_blocks(lo, hi)


def bucket_sql(step: str = "step") -> str:
    """`bucket_of` in SQL over bound parameters blo (block of lo), n and nb (blocks)."""
    return (f"intDiv((bitShiftRight({step}, {int(ROLLUP_SHIFT)}) - {{blo:Int64}}) * {{n:Int64}}, "
            "{nb:Int64})")


def codes(col: Any, ids: list[str]) -> np.ndarray:
    arr = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    # -1 for a value not in ids
    return pc.index_in(arr, value_set=pa.array(ids, pa.string())).fill_null(-1).to_numpy(
        zero_copy_only=False).astype(np.int64)


def _distinct_rows(run: np.ndarray, c: dict[str, np.ndarray]) -> np.ndarray:
    """Mask dropping copies of a row (same run and sort key), adjacent after ORDER BY."""
    same = run[1:] == run[:-1]
    for k in ("block", "first_step", "first_ts", "ident"):
        same &= c[k][1:] == c[k][:-1]
    return np.r_[True, ~same]


def rollup_partials(client: Any, db: str, runs: Sequence[Piece] | Sequence[str], key: str,
                    n: int, lo: int, hi: int, rows: pa.Table | None = None
                    ) -> tuple[Partials, list[tuple[int, int]]] | None:
    """Partials of the whole clean blocks, and the (piece, block)s to read raw.

    Raw: blocks whose rows overlap, and the blocks of lo and hi (or of a piece's
    bounds) when the range cuts them. Buckets are block-aligned (`aligned(lo, hi,
    n)` must hold). Partials are labelled by piece index. None when too many
    blocks overlap (then the caller computes everything raw). `rows`: the key's
    rollup rows of these runs already read (`read_rollup_rows`; plain runs only).
    """
    pieces = [p if isinstance(p, Piece) else Piece(i, str(p), -(1 << 63), (1 << 63) - 1,
                                                   False, True)
              for i, p in enumerate(runs)]  # plain run ids (sorted) or pieces
    params: dict[str, Any] = {"key": key, "blo": lo >> ROLLUP_SHIFT, "bhi": hi >> ROLLUP_SHIFT}
    cols = ", ".join(_SCALARS)
    plain = [p.source for p in pieces if p.plain]
    ors = []  # one scan of the rollup for every run; rows are assigned to pieces below
    if plain:
        params["ids"] = plain
        ors.append("(run_id IN {ids:Array(String)} AND block >= {blo:Int64} "
                   "AND block <= {bhi:Int64})")
    clo = np.array([max(lo, p.lo) for p in pieces], np.int64)
    chi = np.array([min(hi, p.hi) for p in pieces], np.int64)
    cuts: dict[str, list[Segment]] = {}
    spans: dict[int, tuple[int, int]] = {}  # special piece -> its rollup block range
    borrowed: set[tuple[int, int]] = set()  # (piece, block) holding its parent's cut row
    size = 1 << ROLLUP_SHIFT
    for i, p in enumerate(pieces):
        if p.plain or clo[i] > chi[i]:
            continue
        a, b = int(clo[i]), int(chi[i])
        ba, bb = a >> ROLLUP_SHIFT, b >> ROLLUP_SHIFT
        # The block holding a fork step is cut for the parent's piece (the parent
        # usually logged on past it). The fork keeps, in its own rollup, one row of the
        # parent's points in that block up to the fork step (`MetricStore.seed_fork`):
        # the parent's piece stops at the block before, the fork's piece reads that row
        # with its own rows of the block, all in the one scan. Otherwise (the parent
        # was resumed, or another fork step lies in the block) the cut is one row
        # computed from the parent's points in the same query. A piece's lower bound
        # cuts nothing (a fork has no points at or below its fork step); the request's
        # own bounds are cut as for any run (the raw blocks below).
        nxt = pieces[i + 1] if i + 1 < len(pieces) else None
        if (p.hi < hi and (b + 1) % size and not p.dedup and nxt is not None
                and nxt.target == p.target and nxt.lo == p.hi + 1
                and p.lo <= bb << ROLLUP_SHIFT and bb << ROLLUP_SHIFT >= lo):
            clo[i + 1] = bb << ROLLUP_SHIFT
            borrowed.add((i + 1, bb))
            bb -= 1
        elif p.hi < hi and (b + 1) % size:
            cuts.setdefault(f"seg:{i}", []).append(
                Segment(f"seg:{i}", p.source, max(a, bb << ROLLUP_SHIFT), b, p.dedup))
            bb -= 1
        if ba > bb:
            continue
        spans[i] = (ba, bb)
        params[f"s{i}"] = p.source
        params[f"a{i}"], params[f"b{i}"] = ba, bb
        ors.append(f"(run_id = {{s{i}:String}} AND block >= {{a{i}:Int64}} "
                   f"AND block <= {{b{i}:Int64}})")
    branches = []
    if ors:
        branches.append(f"SELECT run_id, {cols} FROM {db}.metric_rollup "
                        f"WHERE key = {{key:String}} AND ({' OR '.join(ors)})")
    if cuts:
        src = points_sql(db, cuts, [], lambda _: "key = {key:String}", params)
        branches.append(
            f"SELECT run_id, bitShiftRight(step, {int(ROLLUP_SHIFT)}) AS block, "
            "min((step, timestamp)).1 AS first_step, min((step, timestamp)).2 AS first_ts, "
            f"toUInt64({CUT_IDENT}) AS ident, max((step, timestamp)).1 AS last_step, "
            "max((step, timestamp)).2 AS last_ts, toUInt64(count()) AS count, "
            "toUInt64(countIf(isFinite(value))) AS n_finite, "
            "toUInt64(countIf(isNaN(value))) AS n_nan, "
            "sumIf(value, isFinite(value)) AS sum_finite, min(value) AS min_value, "
            # a tuple key: cheaper to plan than LAST_KEY for the few points of a cut
            "max(value) AS max_value, "
            "argMax(value, (step, timestamp, isNaN(value), value)) AS last_value "
            f"FROM {src} GROUP BY run_id, block")
    if not branches:
        return empty(), []
    special = bool(spans or cuts)
    if rows is not None and not special:
        blocks = rows.column("block")
        tbl = rows.filter(pc.and_(pc.greater_equal(blocks, params["blo"]),
                                  pc.less_equal(blocks, params["bhi"])))
    else:
        # plain runs only (ids sorted): the rows come in piece order, as read before forks
        order_by = "" if special else f" ORDER BY {_ROW_ORDER}"
        tbl = client.query_arrow(" UNION ALL ".join(branches) + order_by + " SETTINGS "
                                 "do_not_merge_across_partitions_select_final = 1",
                                 parameters=params, settings=read_settings())
    if tbl.num_rows == 0:
        return empty(), []
    names = tbl.column("run_id")
    run = codes(names, labels(pieces))  # plain runs' rows and cut rows; -1 otherwise
    c = {k: tbl.column(k).to_numpy() for k in _SCALARS}
    if spans:  # rows of a special piece's source in its block range (a copy per piece)
        take = [np.flatnonzero(run >= 0)]
        piece_of = [run[take[0]]]
        blocks = c["block"]
        for i, (ba, bb) in spans.items():
            rows = np.flatnonzero(
                pc.equal(names, pieces[i].source).to_numpy(zero_copy_only=False)
                & (blocks >= ba) & (blocks <= bb))
            take.append(rows)
            piece_of.append(np.full(len(rows), i, np.int64))
        idx = np.concatenate(take)
        run = np.concatenate(piece_of)
        c = {k: v[idx] for k, v in c.items()}
    # A fork's row of its parent's cut block counts only where it is borrowed (above);
    # elsewhere that part of the block comes from the parent's own piece.
    fork_rows = c["ident"] == FORK_ROLLUP_IDENT if special else np.zeros(0, np.bool_)
    if fork_rows.any():
        lent = np.array([(int(r), int(b)) in borrowed for r, b in
                         zip(run[fork_rows], c["block"][fork_rows])], dtype=np.bool_)
        keep_rows = ~fork_rows
        keep_rows[np.flatnonzero(fork_rows)[lent]] = True
        run, c = run[keep_rows], {k: v[keep_rows] for k, v in c.items()}
    if special:
        order = np.lexsort((c["ident"], c["first_ts"], c["first_step"], c["block"], run))
        run, c = run[order], {k: v[order] for k, v in c.items()}
    keep = _distinct_rows(run, c)
    if not keep.all():
        run, c = run[keep], {k: v[keep] for k, v in c.items()}
    blk = c["block"]
    new_group = np.r_[True, (run[1:] != run[:-1]) | (blk[1:] != blk[:-1])]
    gstart = np.flatnonzero(new_group)
    gid = np.cumsum(new_group) - 1
    # consecutive rows of one block must not overlap: first > previous last
    fs, ft, ls, lt = c["first_step"], c["first_ts"], c["last_step"], c["last_ts"]
    # (a resumed source keeps one point per step: rows sharing a step overlap there)
    strict = np.array([p.dedup for p in pieces], dtype=np.bool_)[run[1:]]
    overlap = ~new_group[1:] & ((fs[1:] < ls[:-1]) | ((fs[1:] == ls[:-1])
                                                      & (strict | (ft[1:] <= lt[:-1]))))
    dirty = np.zeros(len(gstart), bool)
    dirty[gid[1:][overlap]] = True
    gmin = fs[gstart]
    gmax = np.maximum.reduceat(ls, gstart)
    # a block lies in one bucket; only the blocks of lo and hi can reach outside
    gpiece = run[gstart]
    whole = ~dirty & (gmin >= clo[gpiece]) & (gmax <= chi[gpiece])
    if int(dirty.sum()) > MAX_OVERLAP_BLOCKS:
        return None
    rows = whole[gid]
    bucket = bucket_of(blk[rows] << ROLLUP_SHIFT, lo, hi, n)
    parts = [Partials(run[rows], bucket, fs[rows], ft[rows], ls[rows], lt[rows],
                      c["count"][rows].astype(np.int64), c["n_finite"][rows].astype(np.int64),
                      c["n_nan"][rows].astype(np.int64), c["sum_finite"][rows],
                      c["min_value"][rows], c["max_value"][rows], c["last_value"][rows])]
    raw = ~whole  # overlapping rows, or cut by lo/hi: at most 2 such blocks a run
    raw_blocks = list(zip(run[gstart][raw].tolist(), blk[gstart][raw].tolist()))
    if borrowed & set(raw_blocks):  # (rare) its points are in two runs: all raw
        return None
    return Partials.concat(parts), raw_blocks


_ROW_ORDER = "run_id, block, first_step, first_ts, ident"


def read_rollup_rows(client: Any, db: str, ids: list[str], keys: list[str], blo: int,
                     bhi: int, limit: int) -> dict[str, pa.Table] | None:
    """The rollup rows of several keys of plain runs in blocks [blo, bhi], in one query
    (one per key costs ~10 ms of fixed work each on chDB): key -> rows, in the order
    `rollup_partials` reads them. A key without rows is left out. None when there are
    more than `limit` rows (then read the keys one by one)."""
    if blo > bhi:
        return {}
    tbl = client.query_arrow(
        f"SELECT key, run_id, {', '.join(_SCALARS)} FROM {db}.metric_rollup "
        "WHERE run_id IN {ids:Array(String)} AND key IN {keys:Array(String)} "
        "AND block >= {blo:Int64} AND block <= {bhi:Int64} "
        f"ORDER BY key, {_ROW_ORDER} LIMIT {int(limit) + 1}",
        parameters={"ids": ids, "keys": keys, "blo": blo, "bhi": bhi},
        settings=read_settings())
    if tbl.num_rows > limit:
        return None
    if tbl.num_rows == 0:
        return {}
    ks = tbl.column("key")
    bounds = np.flatnonzero(pc.not_equal(ks[1:], ks[:-1]).to_numpy(zero_copy_only=False)) + 1
    starts = np.r_[0, bounds]
    stops = np.r_[bounds, tbl.num_rows]
    body = tbl.drop_columns(["key"])
    return {str(ks[int(a)].as_py()): body.slice(int(a), int(b - a))
            for a, b in zip(starts, stops)}


def empty() -> Partials:
    i, f = np.empty(0, np.int64), np.empty(0, np.float64)
    return Partials(i, i, i, i, i, i, i, i, i, f, f, f, f)


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
