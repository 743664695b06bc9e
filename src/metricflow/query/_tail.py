"""Live tail: poll the store with a per-series cursor.

Chosen over reading Kafka because it works the same in both deployments and
only shows points that are committed (queryable). Each poll first reads the
per-(run, key) summary (`max((step, timestamp))`, a primary-key lookup), and
only for series that advanced reads the points after the cursor. The cursor
is the series' last (step, timestamp): points logged later with a smaller
(step, timestamp) than one already sent are not pushed (training logs steps
in order; the full history stays available through GetMetricHistory).

A fork's series starts with its parent's points up to the fork step, and a resumed
run's shows one point per step (store/_lineage.py): the reads go through the run's
lineage segments, computed when the tail opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from metricflow._validation import check_key, check_run_id
from metricflow.errors import InvalidArgument
from metricflow.query._arrowutil import group_bounds, value_at
from metricflow.store import points_sql

MAX_TAIL_RUNS = 100
MIN_POLL_MS = 50
"""Smallest poll_interval_ms a request may ask for; the server may raise it further
(TailLimits.min_poll_ms)."""
POINT_BYTES = 24
"""Bytes of one point in a chunk (int64 step, int64 timestamp, float64 value)."""


@dataclass(frozen=True)
class TailChunk:
    run_id: str
    key: str
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray


def check_tail(run_ids: list[str], keys: list[str], poll_ms: int) -> float:
    """Validate a tail request; returns the poll interval in seconds."""
    if not 1 <= len(run_ids) <= MAX_TAIL_RUNS:
        raise InvalidArgument(f"run_ids must hold 1 to {MAX_TAIL_RUNS} runs, got "
                              f"{len(run_ids)}", field="run_ids", limit=MAX_TAIL_RUNS,
                              received=len(run_ids))
    for r in run_ids:
        check_run_id(r, "run_ids")
    for k in keys:
        check_key(k, "keys")
    if poll_ms and not MIN_POLL_MS <= poll_ms <= 60_000:
        raise InvalidArgument(f"poll_interval_ms must be in [{MIN_POLL_MS}, 60000]",
                              field="poll_interval_ms", received=poll_ms)
    return (poll_ms or 200) / 1000.0


class Tailer:
    """Cursor state of one subscription; `poll()` returns the new chunks."""

    def __init__(self, client_of: Any, db: str, run_ids: list[str], keys: list[str],
                 from_start: bool, plan_of: Any = None) -> None:
        self._client_of = client_of  # callable: the calling thread's client
        self.db = db
        self.run_ids, self.keys = sorted(set(run_ids)), sorted(set(keys))
        self.plan = plan_of(self.run_ids) if plan_of is not None else {}
        self.cursors: dict[tuple[str, str], tuple[int, int]] = {}
        if not from_start:
            self.cursors = self._heads()

    def _heads(self) -> dict[tuple[str, str], tuple[int, int]]:
        where = "run_id IN {ids:Array(String)}"
        params: dict[str, Any] = {"ids": self.run_ids}
        if self.keys:
            where += " AND key IN {keys:Array(String)}"
            params["keys"] = self.keys
        rows = self._client_of().query(
            f"SELECT run_id, key, max(last_at) FROM {self.db}.metric_summary "
            f"WHERE {where} GROUP BY run_id, key", parameters=params).result_rows
        return {(r, k): (int(at[0]), int(at[1])) for r, k, at in rows}

    def poll(self, max_rows: int = 0) -> Iterator[TailChunk]:
        """New points since the cursors, at most `max_rows` of them (0 = no bound).

        A bounded poll that stops inside a series resumes there next time.
        """
        heads = self._heads()
        moved = [(s, h) for s, h in heads.items() if self.cursors.get(s) is None
                 or h > self.cursors[s]]
        if not moved:
            return
        conds: dict[str, list[str]] = {}  # per run
        params: dict[str, Any] = {}
        for i, ((run, key), _) in enumerate(moved):
            cur = self.cursors.get((run, key))
            c = f"(key = {{k{i}:String}}"
            if run not in self.plan:
                c = f"(run_id = {{r{i}:String}} AND key = {{k{i}:String}}"
            params[f"r{i}"], params[f"k{i}"] = run, key
            if cur is not None:
                c += f" AND (step, timestamp) > ({{s{i}:Int64}}, {{t{i}:Int64}})"
                params[f"s{i}"], params[f"t{i}"] = cur
            conds.setdefault(run, []).append(c + ")")
        plain = sorted(r for r in conds if r not in self.plan)
        src = points_sql(self.db, {r: self.plan[r] for r in conds if r in self.plan}, plain,
                         lambda t: " OR ".join(conds[t] if t else
                                               [c for r in plain for c in conds[r]]), params)
        tbl = self._client_of().query_arrow(
            f"SELECT run_id, key, step, timestamp, value FROM {src} "
            "ORDER BY run_id, key, step, timestamp, value"
            + (f" LIMIT {int(max_rows)}" if max_rows > 0 else ""), parameters=params)
        if tbl.num_rows == 0:
            return
        starts, ends = group_bounds(tbl, ["run_id", "key"])
        steps, ts = tbl.column("step").to_numpy(), tbl.column("timestamp").to_numpy()
        values = tbl.column("value").to_numpy()
        for s, e in zip(starts, ends):
            run, key = value_at(tbl, "run_id", s), value_at(tbl, "key", s)
            self.cursors[(run, key)] = (int(steps[e - 1]), int(ts[e - 1]))
            yield TailChunk(run, key, steps[s:e], ts[s:e], values[s:e])
