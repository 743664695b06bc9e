"""Resume and fork reads: which stored points make up a run's metric history.

A plain run's history is its own points. Two kinds of runs differ (docs/resilience.md,
"Resume and fork"):
- A *resumed* run (`resume_count > 0`) may hold a step twice: the points logged
  before a preemption and the ones logged again after a restart from a checkpoint.
  The last write wins per (key, step): the point with the largest (timestamp,
  value), timestamps being the client's log time. Reads of such a run keep one
  point per (key, step) (`max((timestamp, value))` grouped by key and step); a
  run never resumed is read as before, with no grouping.
- A *fork* (`forked_from`, `fork_step`) stores only its own points, all at steps
  > fork_step (the ingest path refuses others). Its history is its parent's
  history up to fork_step, then its own: a list of disjoint step ranges of
  source runs (`Segment`), built by walking the lineage pointers. A chain of
  forks is a longer list; no point is ever copied.

Readers ask `MetricStore.read_plan(run_ids)` for the runs that need segments (plain
runs are absent, so their reads stay exactly as fast as before) and build their
SQL over `points_sql`, which yields (run_id, key, step, timestamp, value) rows
under the *target* run's id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
FORK_ROLLUP_IDENT = (1 << 64) - 2
"""`ident` of the rollup row a fork keeps for the block holding its fork step: its
parent's points of that block up to the fork step (`MetricStore.seed_fork`), so a
downsampling read needs no points for that block (query/_rollup_read.py)."""
MAX_FORK_DEPTH = 100
"""Longest lineage a read follows (a fork of a fork of ...); creating a deeper fork is
refused (ingest), so a read never meets one."""


@dataclass(frozen=True)
class Segment:
    """Steps [lo, hi] of `target`'s history are `source`'s points in that range."""

    target: str
    source: str
    lo: int
    hi: int
    dedup: bool
    """The source was resumed: keep the last write of each (key, step)."""


@dataclass(frozen=True)
class Lineage:
    """The lineage fields of one run."""

    forked_from: str
    fork_step: int
    resume_count: int


def segments(run_id: str, lineage: dict[str, Lineage]) -> list[Segment]:
    """The run's history as disjoint step ranges, in step order.

    `lineage` must hold the run and every ancestor (missing ones end the chain).
    """
    out: list[Segment] = []
    cur, cap = run_id, INT64_MAX
    for _ in range(MAX_FORK_DEPTH + 1):
        lin = lineage.get(cur)
        if lin is None:
            lin = Lineage("", 0, 0)
        lo = lin.fork_step + 1 if lin.forked_from else INT64_MIN
        if lo <= cap:
            out.append(Segment(run_id, cur, lo, cap, lin.resume_count > 0))
        if not lin.forked_from:
            break
        cap = min(cap, lin.fork_step)
        cur = lin.forked_from
    out.reverse()
    return out


def is_plain(segs: Sequence[Segment]) -> bool:
    return len(segs) == 1 and not segs[0].dedup and segs[0].source == segs[0].target


def points_sql(db: str, plan: dict[str, list[Segment]], plain: Sequence[str],
               cond: Callable[[str], str], params: dict[str, Any],
               columns: str = "run_id, key, step, timestamp, value") -> str:
    """A subquery of the effective points of `plain` runs and of the runs in `plan`.

    Args:
        plan: target run -> its segments (from `read_plan`).
        plain: runs read as stored (no segments), in one branch.
        cond: SQL condition on key/step/timestamp for a target run id (the plain
            branch gets `cond("")`, which must then not depend on the run); its
            parameters must already be in `params`.
        params: bound parameters; this adds the segments' (`_lt`, `_ls`, `_la`, `_lb`).
        columns: the output columns, among run_id, key, step, timestamp, value.
    Returns:
        `(SELECT ... UNION ALL ...)`, with each row under its target run's id.
    """
    branches = []
    scan: list[tuple[str, str]] = []  # (condition, label) of rows read as stored
    if plain:
        params["_lplain"] = list(plain)
        scan.append((f"run_id IN {{_lplain:Array(String)}} AND ({cond('')})", "run_id"))
    i = 0
    for target, segs in plan.items():
        c = cond(target)
        for s in segs:
            params[f"_lt{i}"], params[f"_ls{i}"] = s.target, s.source
            params[f"_la{i}"], params[f"_lb{i}"] = s.lo, s.hi
            where = (f"run_id = {{_ls{i}:String}} AND step >= {{_la{i}:Int64}} "
                     f"AND step <= {{_lb{i}:Int64}} AND ({c})")
            if s.dedup:
                src = (f"(SELECT key, step, tv.1 AS timestamp, tv.2 AS value FROM ("
                       f"SELECT key, step, max((timestamp, value)) AS tv FROM {db}.metrics "
                       f"FINAL WHERE {where} GROUP BY key, step))")
                cols = columns.replace("run_id", f"{{_lt{i}:String}} AS run_id", 1)
                branches.append(f"SELECT {cols} FROM {src}")
            else:
                scan.append((where, f"{{_lt{i}:String}}"))
            i += 1
    if len(scan) == 1 and scan[0][1] == "run_id":  # plain runs only: as before
        branches.append(f"SELECT {columns} FROM {db}.metrics FINAL WHERE {scan[0][0]}")
    elif scan:
        # One FINAL scan for every range read as stored; each row goes to the runs whose
        # ranges hold it (a parent and its fork in one request share rows).
        inner = (f"SELECT run_id, key, step, timestamp, value FROM {db}.metrics FINAL "
                 f"WHERE {' OR '.join(f'({w})' for w, _ in scan)}")
        sources = [w.split(" AND ", 1)[0] for w, _ in scan]
        if len(scan) == 1:
            label = scan[0][1]
        elif len(set(sources)) == len(sources) and not plain:  # each row has one run
            label = "multiIf(" + ", ".join(f"{w}, {lb}" for w, lb in scan[:-1]) + \
                f", {scan[-1][1]})"
        else:
            label = ("arrayJoin(arrayFilter(x -> x != '', ["
                     + ", ".join(f"if({w}, {lb}, '')" for w, lb in scan) + "]))")
        cols = columns.replace("run_id", "lbl AS run_id", 1)
        branches.append(f"SELECT {cols} FROM (SELECT {label} AS lbl, key, step, timestamp, "
                        f"value FROM ({inner}))")
    if not branches:
        branches.append(f"SELECT {columns} FROM {db}.metrics WHERE 0")
    return "(" + " UNION ALL ".join(branches) + ")"
