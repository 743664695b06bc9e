"""MetricStore: the data plane on ClickHouse through clickhouse-connect.

One implementation for chDB (embedded) and a ClickHouse server: only the DSN
changes. Writes take Arrow tables; reads return numpy columns or value types.
All user values travel as bound parameters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow.compute as pc

from metricflow.entities import MetricSummary, Run, RunInfo
from metricflow.errors import NotFound
from metricflow.store._arrow import InsertTables
from metricflow.store._clickhouse import ClientPool, check_identifier
from metricflow.store._cluster import check_cluster_layout
from metricflow.store._lineage import (
    FORK_ROLLUP_IDENT,
    INT64_MAX,
    INT64_MIN,
    MAX_FORK_DEPTH,
    Lineage,
    Segment,
    is_plain,
    points_sql,
)
from metricflow.store._lineage import segments as lineage_segments
from metricflow.store._schema import (
    POINT_READ_BLOCKS,
    POINT_READ_TABLES,
    ROLLUP_SHIFT,
    SCHEMA_VERSION,
    ddl_statements,
)
from metricflow.store._schema_query import (
    QUERY_DDL,
    UNFILED_SCHEMA_VERSION,
    backfill,
    fill_unfiled,
    missing_tables,
)

_RUN_COLUMNS = ("run_id", "experiment_id", "run_name", "user_id", "status", "start_time",
                "end_time", "parent_run_id", "lifecycle_stage", "artifact_uri", "forked_from",
                "fork_step", "resume_count")
# How a RunInfo field that is unset (None) is stored; reading a row back gives None again.
_RUN_UNSET: dict[str, object] = {"end_time": 0, "parent_run_id": "", "forked_from": "",
                                 "fork_step": 0}
_LINEAGE_COLUMNS = ("forked_from String DEFAULT ''", "fork_step Int64 DEFAULT 0",
                    "resume_count UInt32 DEFAULT 0")

# FINAL must merge rows of a key only across parts; a part that is already merged holds
# each key once, and reading it without the merge step is exact (and cheaper).
_FINAL = " SETTINGS do_not_merge_across_partitions_select_final = 1"
_INSERT_SETTINGS = {"optimize_on_insert": 0}
# Lookups of a page of runs by id: QueryCore.load_runs runs four at once, and each
# reads a few small granules, so one thread each beats several competing for the
# cores (10k-run page of 100 runs here: 25.1-25.8 -> 22.2-23.5 ms).
_LOOKUP_SETTINGS = {"max_threads": 1}


# last, last (step, timestamp), min and max of points; min/max skip NaN (a key of only
# NaN has NaN), like the summaries the writer computes (store/_arrow.py).
_SUMMARY_AGGREGATES = (
    "argMax(value, (step, timestamp, isNaN(value), value)) AS l, max((step, timestamp)) AS la, "
    "if(countIf(NOT isNaN(value)) = 0, nan, minIf(value, NOT isNaN(value))) AS mn, "
    "if(countIf(NOT isNaN(value)) = 0, nan, maxIf(value, NOT isNaN(value))) AS mx")


# A point as a one-point rollup row (last, min and max are its value).
_POINT_AS_ROLLUP = "step AS ls, timestamp AS lt, value AS lv, value AS mn, value AS mx"


def _run_cell(info: RunInfo, column: str) -> object:
    v = getattr(info, column)
    return _RUN_UNSET[column] if v is None else v


# Params keep the first value written: a larger version wins in
# ReplacingMergeTree, so the version counts down as time goes on.
_PARAM_VERSION_BASE = (1 << 63) - 1


def _load_client_extras() -> None:
    """Import what clickhouse-connect loads lazily on the first row insert.

    Its first `insert` imports pandas (when installed) to check for DataFrames:
    about a second of CPU that otherwise lands on the first logged batch (seen
    in a profile of the writer in the middle of a benchmark). Done when the
    store opens instead.
    """
    from clickhouse_connect.driver import options  # server extra

    getattr(options, "pd", None)


class MetricStore:
    """Runs, params, tags and metric points in ClickHouse."""

    def __init__(self, dsn: str, database: str = "metricflow") -> None:
        self.dsn = dsn
        self.db = check_identifier(database)
        self._pool = ClientPool(dsn)
        self._fork_parents: dict[str, str] = {}
        """run -> the run it was forked from (immutable), for `read_plan`."""
        _load_client_extras()

    @property
    def client(self) -> Any:
        """The calling thread's clickhouse-connect client."""
        return self._pool.get()

    def set_read_barrier(self, barrier: Callable[[], None] | None) -> None:
        """Install (None: remove) what every store access waits on first: the embedded
        sink's wait until the run records it acknowledged are applied
        (ingest/_direct.py). Its own apply thread passes through."""
        self._pool.read_barrier = barrier

    def mark_sole_writer(self) -> None:
        """Every write to this store goes through this process from now on (the
        embedded sink): readers may cache what only writes change (see
        query/_sql.unfiled_keys)."""
        self._pool.sole_writer = True

    @contextlib.contextmanager
    def _writing(self, run_ids: Iterable[str]) -> Iterator[None]:
        """Around a write of these runs' rows: once it is done, or has failed (a part of
        it may be visible), readers learn that those runs changed (`ClientPool.wrote`)."""
        try:
            yield
        finally:
            self._pool.wrote(run_ids)

    def ensure_schema(self) -> None:
        """Create the database, tables and views if missing (idempotent).

        This includes the search tables and the metric rollup that the query
        side reads; when a data dir predates them they are backfilled once from
        the base tables (later rows arrive at insert time).
        """
        stmts = ddl_statements(self.db)
        self.client.command(stmts[0])  # the database
        rest = stmts[1:] + [s.strip().replace("{db}", self.db) for s in QUERY_DDL]
        check_cluster_layout(self.client, self.db, rest)
        missing = missing_tables(self.client, self.db)
        for stmt in rest:
            self.client.command(stmt)
        backfill(self.client, self.db, missing)
        self._upgrade_old_tables(self._merge_tree_ddl())
        if not self.client.query(f"SELECT count() FROM {self.db}.schema_info "
                                 f"WHERE version >= {UNFILED_SCHEMA_VERSION}"
                                 ).result_rows[0][0]:
            fill_unfiled(self.client, self.db)
        self.client.command(
            f"INSERT INTO {self.db}.schema_info (version) VALUES ({int(SCHEMA_VERSION)})"
        )

    def _merge_tree_ddl(self) -> dict[str, str]:
        """CREATE statements of this database's MergeTree tables (not Distributed fronts)."""
        return dict(self.client.query(
            "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} "
            "AND engine LIKE '%MergeTree'", parameters={"db": self.db}).result_rows)

    def _upgrade_old_tables(self, ddl: dict[str, str]) -> None:
        """Bring tables of an older data dir to the current storage layout.

        - Per-run tables get their lookup-friendly block sizes. Only parts written
          afterwards (inserts, merges) get them; `OPTIMIZE TABLE ... FINAL`
          rewrites the old ones at once.
        - metric_rollup drops the per-block point copies it used to keep (unread
          now) and their block settings; its 16 KB index granules stay (a
          read-only setting).
        """
        if "runs" in ddl and "resume_count" not in ddl["runs"]:  # before resume and fork
            self.client.command(f"ALTER TABLE {self.db}.runs " + ", ".join(
                f"ADD COLUMN IF NOT EXISTS {c}" for c in _LINEAGE_COLUMNS))
        for name in POINT_READ_TABLES:
            if name in ddl and "min_compress_block_size" not in ddl[name]:
                self.client.command(
                    f"ALTER TABLE {self.db}.{name} MODIFY SETTING {POINT_READ_BLOCKS}")
        rollup = ddl.get("metric_rollup", "")
        if "`offs`" in rollup:
            self.client.command(f"ALTER TABLE {self.db}.metric_rollup DROP COLUMN IF EXISTS "
                                "offs, DROP COLUMN IF EXISTS vals")
        if "max_compress_block_size = 65536" in rollup:  # the packed-points era
            self.client.command(f"ALTER TABLE {self.db}.metric_rollup RESET SETTING "
                                "min_compress_block_size, max_compress_block_size")

    def close(self) -> None:
        self._pool.close()

    # ----------------------------------------------------------------- writes
    def insert_metrics(self, tables: InsertTables) -> None:
        """Insert metric points, then their rollup and per-(run, key) summary rows.

        Points first: a crash in between leaves points without rollup/summary
        rows only until the batch is replayed (all three inserts are idempotent).
        The in-block ReplacingMergeTree collapse is skipped (about half the
        insert time): reads use FINAL, so they are exact either way.
        """
        if tables.metrics.num_rows:
            # (the summary has a row per run and key of the insert: few, no point's)
            with self._writing(pc.unique(tables.summary.column("run_id")).to_pylist()):
                for table, data in (("metrics", tables.metrics),
                                    ("metric_rollup", tables.rollup),
                                    ("metric_summary_in", tables.summary)):
                    self._pool.insert_arrow(f"{self.db}.{table}", data, _INSERT_SETTINGS)

    def insert_runs(self, runs: Sequence[RunInfo], versions: Sequence[int]) -> None:
        if not runs:
            return
        rows = [[_run_cell(r, c) for c in _RUN_COLUMNS] + [v] for r, v in zip(runs, versions)]
        with self._writing(r.run_id for r in runs):
            self.client.insert(f"{self.db}.runs", rows, column_names=[*_RUN_COLUMNS, "version"])

    def insert_params(self, rows: Sequence[tuple[str, str, str]], logged_ns: int) -> None:
        """Insert (run_id, key, value) params; the first value of a key is kept."""
        if rows:
            version = _PARAM_VERSION_BASE - logged_ns
            with self._writing(r[0] for r in rows):
                self.client.insert(f"{self.db}.params", [[*r, version] for r in rows],
                                   column_names=["run_id", "key", "value", "version"])

    def insert_tags(self, rows: Sequence[tuple[str, str, str, int]], version: int) -> None:
        """Insert (run_id, key, value, deleted) tags; the newest version wins."""
        if rows:
            with self._writing(r[0] for r in rows):
                self.client.insert(f"{self.db}.tags", [[*r, version] for r in rows],
                                   column_names=["run_id", "key", "value", "deleted",
                                                 "version"])

    # ------------------------------------------------------------------ reads
    def get_run_infos(self, run_ids: Iterable[str]) -> dict[str, RunInfo]:
        ids = list(run_ids)
        if not ids:
            return {}
        res = self.client.query(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM {self.db}.runs FINAL "
            "WHERE run_id IN {ids:Array(String)}" + _FINAL,
            parameters={"ids": ids}, settings=_LOOKUP_SETTINGS,
        )
        return {row[0]: RunInfo(*row) for row in res.result_rows}

    def get_run_info(self, run_id: str) -> RunInfo:
        info = self.get_run_infos([run_id]).get(run_id)
        if info is None:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id", received=run_id)
        return info

    def get_params(self, run_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        return self._kv("params", run_ids, "")

    def get_tags(self, run_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        return self._kv("tags", run_ids, "AND deleted = 0")

    def _kv(self, table: str, run_ids: Iterable[str], extra: str) -> dict[str, dict[str, str]]:
        ids = list(run_ids)
        out: dict[str, dict[str, str]] = {r: {} for r in ids}
        if not ids:
            return out
        res = self.client.query(
            f"SELECT run_id, key, value FROM {self.db}.{table} FINAL "
            "WHERE run_id IN {ids:Array(String)} " + extra + " ORDER BY run_id, key" + _FINAL,
            parameters={"ids": ids}, settings=_LOOKUP_SETTINGS,
        )
        for run_id, key, value in res.result_rows:
            out[run_id][key] = value
        return out

    def get_summaries(
        self, run_ids: Iterable[str], with_counts: bool = False,
        plan: dict[str, list[Segment]] | None = None,
    ) -> dict[str, dict[str, MetricSummary]]:
        """Latest/min/max per metric key; exact counts only when asked (reads points).

        Without `with_counts` each summary's `count` is None (not counted), never 0.
        `plan`: the runs' `read_plan` when the caller has it ({}: read every run's
        stored summary rows, as if none were resumed); None looks it up.
        """
        ids = list(run_ids)
        out: dict[str, dict[str, MetricSummary]] = {r: {} for r in ids}
        if not ids:
            return out
        if plan is None:
            plan = self.read_plan(ids)
        # A resumed run (or a fork of one) may hold a step twice: its summary comes from
        # its deduplicated points. A fork's summary rows were seeded from its parent's
        # history when it was created (`seed_fork`), so the stored rows are exact.
        dedup = {r: segs for r, segs in plan.items() if any(s.dedup for s in segs)}
        stored = [r for r in ids if r not in dedup]
        rows: list[Any] = []
        if stored:
            rows = self.client.query(
                "SELECT run_id, key, argMaxMerge(last), max(last_at), min(min_value), "
                f"max(max_value) FROM {self.db}.metric_summary "
                "WHERE run_id IN {ids:Array(String)} GROUP BY run_id, key ORDER BY run_id, key",
                parameters={"ids": stored}, settings=_LOOKUP_SETTINGS,
            ).result_rows
        counts: dict[tuple[str, str], int] | None = None
        if with_counts:
            params: dict[str, Any] = {}
            src = points_sql(self.db, {r: plan[r] for r in stored if r in plan},
                             [r for r in stored if r not in plan], lambda _: "1", params,
                             columns="run_id, key")
            cres = self.client.query(f"SELECT run_id, key, count() FROM {src} "
                                     "GROUP BY run_id, key" + _FINAL, parameters=params)
            counts = {(r, k): int(c) for r, k, c in cres.result_rows}
        if dedup:
            rows += self._point_summaries(dedup, counts)
        for run_id, key, last, last_at, mn, mx in rows:
            out[run_id][key] = MetricSummary(
                key, float(last), int(last_at[0]), int(last_at[1]), float(mn), float(mx),
                None if counts is None else counts.get((run_id, key), 0),
            )
        return out

    def _point_summaries(self, plan: dict[str, list[Segment]],
                         counts: dict[tuple[str, str], int] | None) -> list[Any]:
        """Summary rows computed from the runs' effective points (one per key and step)."""
        params: dict[str, Any] = {}
        src = points_sql(self.db, plan, [], lambda _: "1", params)
        rows = self.client.query(
            f"SELECT run_id, key, {_SUMMARY_AGGREGATES}, count() FROM {src} "
            "GROUP BY run_id, key ORDER BY run_id, key" + _FINAL, parameters=params).result_rows
        if counts is not None:
            counts.update({(r[0], r[1]): int(r[-1]) for r in rows})
        return [r[:-1] for r in rows]

    # ---------------------------------------------------------- resume, fork
    def read_plan(self, run_ids: Iterable[str],
                  seen: set[str] | None = None) -> dict[str, list[Segment]]:
        """The runs among `run_ids` whose history is not just their stored points:
        resumed runs and forks, each with its segments (store/_lineage.py).

        One primary-key lookup that returns only such runs, plus one per level of a
        fork chain; a plain run is absent from the result (read as before). `seen`
        gets every run whose rows the plan's histories read: `run_ids` and the
        ancestors of forks among them.
        """
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return {}
        # A fork's pointer never changes: ancestors known from earlier reads are looked
        # up in the same query (their resume counts can change, so they are read).
        ask, more = set(ids), list(ids)
        while more:
            up = self._fork_parents.get(more.pop())
            if up is not None and up not in ask:
                ask.add(up)
                more.append(up)
        lin = self._lineage(ask)
        if len(self._fork_parents) > 100_000:
            self._fork_parents.clear()
        self._fork_parents.update({r: x.forked_from for r, x in lin.items() if x.forked_from})
        todo = {x.forked_from for x in lin.values() if x.forked_from} - ask
        for _ in range(MAX_FORK_DEPTH):
            if not todo:
                break
            got = self._lineage(todo)
            lin.update(got)
            self._fork_parents.update({r: x.forked_from for r, x in got.items()
                                       if x.forked_from})
            ask |= todo
            todo = {x.forked_from for x in got.values() if x.forked_from} - ask
        if seen is not None:
            seen |= ask
        out = {}
        for r in ids:
            if r in lin:
                segs = lineage_segments(r, lin)
                if not is_plain(segs):
                    out[r] = segs
        return out

    def _lineage(self, ids: Iterable[str]) -> dict[str, Lineage]:
        res = self.client.query(
            f"SELECT run_id, forked_from, fork_step, resume_count FROM {self.db}.runs FINAL "
            "WHERE run_id IN {ids:Array(String)} AND (forked_from != '' OR resume_count > 0)"
            + _FINAL, parameters={"ids": list(ids)}, settings=_LOOKUP_SETTINGS)
        return {r: Lineage(f, int(n), int(c)) for r, f, n, c in res.result_rows}

    def fork_segments(self, run_id: str, parent: str, fork_step: int) -> list[Segment]:
        """The segments a fork of `parent` at `fork_step` reads from its ancestors."""
        segs = self.read_plan([parent]).get(parent) or [Segment(parent, parent, INT64_MIN,
                                                                   INT64_MAX, False)]
        return [Segment(run_id, s.source, s.lo, min(s.hi, fork_step), s.dedup)
                for s in segs if s.lo <= fork_step]

    def seed_fork(self, run_id: str, parent: str, fork_step: int) -> None:
        """Summary rows of a new fork: last/min/max of its parent's history up to fork_step.

        One row per key (never a copy of the points), inserted like an insert's summary
        rows, so the search tables and `get_summaries` see the fork's metrics at once.
        Read from the rollup: whole blocks of a segment from their rows (min, max and
        last are exact even over replayed rows), only the two blocks that the segment's
        ends cut from the points; a resumed source's segment from its deduplicated
        points. Idempotent: a replayed create inserts the same rows (every aggregate is).
        """
        params: dict[str, Any] = {}
        branches = []
        segs = self.fork_segments(run_id, parent, fork_step)
        for i, seg in enumerate(segs):
            if seg.dedup:
                sub = points_sql(self.db, {run_id: [seg]}, [], lambda _: "1", params,
                                 columns="key, step, timestamp, value")
                branches.append(f"SELECT key, {_POINT_AS_ROLLUP} FROM {sub}")
                continue
            # whole blocks [bf, bl] inside [lo, hi]; the steps outside them come from points
            lo, hi = seg.lo, seg.hi
            bf = INT64_MIN >> ROLLUP_SHIFT if lo == INT64_MIN else -((-lo) >> ROLLUP_SHIFT)
            bl = (INT64_MAX >> ROLLUP_SHIFT if hi == INT64_MAX
                  else ((hi + 1) >> ROLLUP_SHIFT) - 1)
            params.update({f"r{i}": seg.source, f"lo{i}": lo, f"hi{i}": hi, f"bf{i}": bf,
                           f"bl{i}": bl})
            branches.append(
                "SELECT key, last_step AS ls, last_ts AS lt, last_value AS lv, "
                f"min_value AS mn, max_value AS mx FROM {self.db}.metric_rollup "
                f"WHERE run_id = {{r{i}:String}} AND block >= {{bf{i}:Int64}} "
                f"AND block <= {{bl{i}:Int64}}")
            steps = f"step >= {{lo{i}:Int64}} AND step <= {{hi{i}:Int64}}"
            if bf <= bl:  # at most two step ranges: the index skips the whole blocks
                ends = []
                if lo != INT64_MIN:
                    params[f"ea{i}"] = (bf << ROLLUP_SHIFT) - 1
                    ends.append(f"(step >= {{lo{i}:Int64}} AND step <= {{ea{i}:Int64}})")
                if hi != INT64_MAX:
                    params[f"eb{i}"] = (bl + 1) << ROLLUP_SHIFT
                    ends.append(f"(step >= {{eb{i}:Int64}} AND step <= {{hi{i}:Int64}})")
                steps = "(" + (" OR ".join(ends) or "0") + ")"
            branches.append(
                f"SELECT key, {_POINT_AS_ROLLUP} FROM {self.db}.metrics "
                f"FINAL WHERE run_id = {{r{i}:String}} AND {steps}")
        if not branches:
            return
        with self._writing((run_id,)):
            self.client.command(
                f"INSERT INTO {self.db}.metric_summary_in (run_id, key, last_value, "
                "last_step, last_timestamp, min_value, max_value) "
                "SELECT {_fork:String}, key, argMax(lv, (ls, lt, isNaN(lv), lv)), "
                "max((ls, lt)).1, max((ls, lt)).2, "
                "if(countIf(NOT isNaN(mn)) = 0, nan, minIf(mn, NOT isNaN(mn))), "
                "if(countIf(NOT isNaN(mx)) = 0, nan, maxIf(mx, NOT isNaN(mx))) "
                "FROM (" + " UNION ALL ".join(branches) + ") GROUP BY key" + _FINAL,
                parameters={**params, "_fork": run_id})
            self._seed_cut_block(run_id, segs, fork_step)

    def _seed_cut_block(self, run_id: str, segs: Sequence[Segment], fork_step: int) -> None:
        """The fork's rollup row for the block holding its fork step: the parent's points
        of that block up to the fork step, one row per key (at most 256 points read).

        Only when one plain (never resumed) parent segment holds that part of the block;
        otherwise reads compute it from the points (query/_rollup_read.py).
        """
        size = 1 << ROLLUP_SHIFT
        start = (fork_step >> ROLLUP_SHIFT) << ROLLUP_SHIFT
        if (fork_step + 1) % size == 0 or not segs or segs[-1].lo > start or segs[-1].dedup:
            return
        self.client.command(
            f"INSERT INTO {self.db}.metric_rollup (run_id, key, block, first_step, first_ts, "
            "ident, last_step, last_ts, count, n_finite, n_nan, sum_finite, min_value, "
            "max_value, last_value) "
            "SELECT {fork:String}, key, {block:Int64}, min((step, timestamp)).1, "
            "min((step, timestamp)).2, {ident:UInt64}, max((step, timestamp)).1, "
            "max((step, timestamp)).2, count(), countIf(isFinite(value)), "
            "countIf(isNaN(value)), sumIf(value, isFinite(value)), min(value), max(value), "
            "argMax(value, (step, timestamp, isNaN(value), value)) "
            f"FROM {self.db}.metrics FINAL WHERE run_id = {{src:String}} "
            "AND step >= {a:Int64} AND step <= {b:Int64} GROUP BY key" + _FINAL,
            parameters={"fork": run_id, "block": fork_step >> ROLLUP_SHIFT,
                        "ident": FORK_ROLLUP_IDENT, "src": segs[-1].source, "a": start,
                        "b": fork_step})

    def get_run(self, run_id: str) -> Run:
        info = self.get_run_info(run_id)
        return Run(
            info,
            self.get_params([run_id])[run_id],
            self.get_tags([run_id])[run_id],
            self.get_summaries([run_id], with_counts=True)[run_id],
        )

    def metric_history(
        self, run_id: str, key: str, limit: int = 0, after: tuple[int, int] | None = None,
        plan: dict[str, list[Segment]] | None = None, settings: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points of one metric ordered by (step, timestamp, value) as numpy columns.

        Paging: `after` is the (step, timestamp) of the previous page's last
        point; points sharing it are never split across pages (LIMIT WITH TIES).
        `plan`: `read_plan` of a set holding `run_id`, when the caller reads many runs
        (one lineage lookup for all of them instead of one per run). `settings`: of the
        points' queries (the query API's time limit).
        """
        if plan is None:
            plan = self.read_plan([run_id])
        if run_id in plan:
            return self._lineage_history(plan[run_id], key, limit, after, settings)
        where = "run_id = {run:String} AND key = {key:String}"
        params: dict[str, Any] = {"run": run_id, "key": key}
        if after is not None:
            where += " AND (step, timestamp) > ({s:Int64}, {t:Int64})"
            params.update(s=after[0], t=after[1])
        sql = (f"SELECT step, timestamp, value FROM {self.db}.metrics FINAL WHERE {where} "
               "ORDER BY step, timestamp, value")
        if limit:
            sql = (f"SELECT step, timestamp, value FROM ({sql}) "
                   f"ORDER BY step, timestamp LIMIT {int(limit)} WITH TIES")
        tbl = self.client.query_arrow(sql, parameters=params, settings=settings)
        return (tbl.column("step").to_numpy(), tbl.column("timestamp").to_numpy(),
                tbl.column("value").to_numpy())

    def _lineage_history(self, segs: Sequence[Segment], key: str, limit: int,
                         after: tuple[int, int] | None, settings: dict[str, Any] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`metric_history` of a resumed run or a fork: its segments in step order, each
        read in primary-key order and only as far as the page needs."""
        cond = "key = {key:String}"
        if after is not None:
            cond += " AND (step, timestamp) > ({s:Int64}, {t:Int64})"
        got: list[Any] = []
        n = 0
        for seg in segs:
            if after is not None and seg.hi < after[0]:
                continue
            params: dict[str, Any] = {"key": key}
            if after is not None:
                params.update(s=after[0], t=after[1])
            src = points_sql(self.db, {seg.target: [seg]}, [], lambda _: cond, params,
                             columns="step, timestamp, value")
            sql = f"SELECT step, timestamp, value FROM {src} ORDER BY step, timestamp, value"
            if limit:
                sql = (f"SELECT step, timestamp, value FROM ({sql}) "
                       f"ORDER BY step, timestamp LIMIT {int(limit - n)} WITH TIES")
            tbl = self.client.query_arrow(sql + _FINAL, parameters=params, settings=settings)
            got.append(tbl)
            n += tbl.num_rows
            if limit and n >= limit:
                break
        cols = [np.concatenate([t.column(c).to_numpy() for t in got]) if got
                else np.empty(0, np.float64 if c == "value" else np.int64)
                for c in ("step", "timestamp", "value")]
        return cols[0], cols[1], cols[2]

    def count_points(self, run_ids: Sequence[str] | None = None) -> tuple[int, float]:
        """Exact (count, sum of finite values) of stored points, deduplicated."""
        where, params = "", {}
        if run_ids is not None:
            where, params = "WHERE run_id IN {ids:Array(String)}", {"ids": list(run_ids)}
        row = self.client.query(
            f"SELECT count(), sumIf(value, isFinite(value)) FROM {self.db}.metrics FINAL {where}",
            parameters=params,
        ).result_rows[0]
        return int(row[0]), float(row[1])
