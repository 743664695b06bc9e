"""Windows of a sorted run search by offset, for tables that jump anywhere (the web UI).

`RunSearch` pages by keyset, which is exact while runs are inserted but can only
go forward. A table over 1M runs must show rows 500,000..500,050 at once, so
this module answers a window by OFFSET over the same filter, scope and sort
rules as `RunSearch` (runs lacking a sort key come after all others in both
directions; NaN metric values after all numbers; the run key breaks ties):

- sorted by an attribute: one `ORDER BY col, rk LIMIT n OFFSET m` over search_runs;
- sorted by a metric/param/tag: the key's rows (phase 1) counted first, then the
  window is cut from phase 1 and/or the runs lacking the key (phase 2).

Only the chosen columns of the window's runs are read afterwards: attributes
from search_runs, one query per kind for the chosen metric/param/tag keys
(primary-key ranges of search_metrics/params/tags). Runs can be restricted to
top-level ones (no `mlflow.parentRunId` tag), each with its child count, so a
table can nest children under their parent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from metricflow.errors import InvalidArgument
from metricflow.query._deadline import bounded, read_settings
from metricflow.query._grammar import Field, OrderTerm, parse_filter, parse_order_by
from metricflow.query._history import FINAL_SETTING
from metricflow.query._sql import (
    ATTRIBUTE_COLUMNS,
    Binder,
    Scope,
    SqlBuilder,
    generation_cached,
    unfiled_keys,
    write_generation,
)

PARENT_TAG = "mlflow.parentRunId"
MAX_WINDOW = 1000
MAX_OFFSET = 100_000_000
MAX_COLUMNS = 500
MAX_KEYS = 100_000
INFO_COLUMNS = ("run_id", "experiment_id", "run_name", "user_id", "status", "start_time",
                "end_time", "lifecycle_stage")
_DEFAULT_ORDER = OrderTerm(Field("attributes", "start_time"), False)
COUNT_TTL_S = 5.0
"""Counts (total, runs having the sort key) are reused this long for the same search, so
scrolling one table costs one window query per block, not three."""


class _Counts:
    """A small process-wide TTL cache of search counts, keyed by the full search shape.
    Each count remembers the store's write generation it was read at (None: unknown),
    so a window can tell that it used one read before a write."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._d: dict[Any, tuple[float, int | None, int]] = {}
        self._lock = threading.Lock()

    def peek(self, key: Any) -> tuple[int, int | None] | None:
        """(count, the generation it was read at), while it is fresh."""
        with self._lock:
            hit = self._d.get(key)
        if hit is None or time.monotonic() - hit[0] >= COUNT_TTL_S:
            return None
        return hit[2], hit[1]

    def put(self, key: Any, value: int, gen: int | None) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._d) >= self.size:
                self._d = {k: v for k, v in self._d.items() if now - v[0] < COUNT_TTL_S}
                if len(self._d) >= self.size:
                    self._d.clear()
            self._d[key] = (now, gen, value)
        return value


_LOOKUPS = ThreadPoolExecutor(4, thread_name_prefix="metricflow-window")
"""Runs the point lookups of a window's columns at once (each thread has its own client)."""


@dataclass
class Window:
    """One window of a sorted search.

    Attributes:
        offset: index of rows[0] in the whole sorted result.
        total: number of matching runs (None when not asked for).
        rows: per run: the info columns, `metrics`/`params`/`tags` dicts of the
            chosen keys that the run has, `parent_run_id` ('' for none) and, in
            top-level mode, `child_count`.
    """

    offset: int
    total: int | None
    rows: list[dict[str, Any]] = field(default_factory=list)


def parse_columns(specs: list[str]) -> list[Field]:
    """Columns as `metrics.loss`, `params.lr`, `tags.team` (same prefixes as the filter)."""
    if len(specs) > MAX_COLUMNS:
        raise InvalidArgument(f"at most {MAX_COLUMNS} columns, got {len(specs)}",
                              field="columns", limit=MAX_COLUMNS, received=len(specs))
    out = []
    for s in specs:
        try:
            terms = parse_order_by([s])  # same field syntax, incl. `quoted keys`
        except InvalidArgument as e:  # the error is about a column, not the sort
            raise InvalidArgument(e.message.replace("order_by", "column"),
                                  **{**e.details, "field": "columns",
                                     "received": s[:200]}) from None
        if not terms or terms[0].field.kind == "attributes":
            raise InvalidArgument("a column is metrics.<key>, params.<key> or tags.<key>",
                                  field="columns", received=s[:200])
        out.append(terms[0].field)
    return out


UNFILED_TTL_S = 2.0


class WindowCaches:
    """What windows over one store reuse between requests: search counts, and the
    unfiled keys. One per store (a process may hold several stores with the same
    database name, such as servers started one after another in tests)."""

    def __init__(self) -> None:
        self.counts = _Counts()
        self._unfiled: tuple[float, frozenset[tuple[str, str]]] | None = None

    def unfiled(self, client: Any, db: str) -> frozenset[tuple[str, str]]:
        """`unfiled_keys`, re-read at most every UNFILED_TTL_S (a window of a scrolling
        table would otherwise read it per block; it only grows, and rarely). A store only
        this process writes keeps it until its next write instead (`unfiled_keys`)."""
        if write_generation(client) is not None:
            return unfiled_keys(client, db)
        now = time.monotonic()
        hit = self._unfiled
        if hit is None or now - hit[0] >= UNFILED_TTL_S:
            hit = self._unfiled = (now, unfiled_keys(client, db))
        return hit[1]


class _Done:
    """An already computed result with a Future's `result()`."""

    def __init__(self, value: int) -> None:
        self.value = value

    def result(self) -> int:
        return self.value


class RunWindow:
    """Answers window requests against one store's client."""

    def __init__(self, db: str, client: Any,
                 thread_client: Callable[[], Any] | None = None,
                 caches: WindowCaches | None = None) -> None:
        """`thread_client()` gives the calling thread's client (MetricStore.client); with it
        the column lookups of a window run in parallel. `caches`: the store's (shared by
        the windows of one store; a new one when not given)."""
        self.db, self.client = db, client
        self._gen: int | None = None  # the store's write generation as a window began
        self.stale = False
        """The last window used a count read before the store's latest write."""
        self.thread_client = thread_client
        self.caches = caches if caches is not None else WindowCaches()

    # ---------------------------------------------------------------- window
    @bounded
    def window(self, scope: Scope, filter_string: str, order_by: str, offset: int, limit: int,
               columns: list[Field], *, with_total: bool = True, top_level: bool = False
               ) -> Window:
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgument(f"offset must be in [0, {MAX_OFFSET}], got {offset}",
                                  field="offset", limit=MAX_OFFSET, received=offset)
        if not 0 <= limit <= MAX_WINDOW:
            raise InvalidArgument(f"limit must be in [0, {MAX_WINDOW}], got {limit}",
                                  field="limit", limit=MAX_WINDOW, received=limit)
        # Counts are reused for COUNT_TTL_S. One read before the store's last write may be
        # out of date: the window says so (`stale`), and such an answer is not kept until
        # the next write (ui/_api.py).
        self._gen = write_generation(self.client)
        self.stale = False
        tree = parse_filter(filter_string)
        terms = parse_order_by([order_by]) if order_by.strip() else []
        term = terms[0] if terms else _DEFAULT_ORDER
        unfiled = self.caches.unfiled(self.client, self.db)

        def builder() -> tuple[Binder, SqlBuilder]:
            b = Binder()
            sb = SqlBuilder(self.db, b)
            sb.restrict(scope)
            sb.unfiled = unfiled
            return b, sb

        nest = top_level
        if top_level and not self._any_children(builder):
            top_level = False  # no run in scope has a parent: skip the filter and the counts
        total_f: Any = None  # Future[int] or _Done
        if with_total:
            b, sb = builder()
            where = self._run_filters(sb, scope, tree, top_level)
            # a fresh count whenever asked (the UI asks once per search and on live refresh),
            # on another thread while the window is cut when there is a per-thread client
            sql = f"SELECT count() FROM {sb.runs_table()} WHERE {where} SETTINGS {FINAL_SETTING}"
            if self.thread_client is not None:
                tc = self.thread_client
                total_f = _LOOKUPS.submit(
                    lambda: int(tc().query(sql, parameters=b.params,
                                                  settings=read_settings()).result_rows[0][0]))
            else:
                total_f = _Done(int(self._query(sql, b.params)[0][0]))
        rks: list[int] = []
        if limit:
            if term.field.kind == "attributes":
                rks = self._attr_window(builder, scope, tree, term, offset, limit, top_level)
            else:
                rks = self._keyed_window(builder, scope, tree, term, offset, limit, top_level)
        total = None if total_f is None else int(total_f.result())
        rows = self.rows(scope, rks, columns, top_level=top_level)
        if nest and not top_level:
            for r in rows:
                r["child_count"] = 0
        return Window(offset, total, rows)

    def _any_children(self, builder: Any) -> bool:
        """Does any run the scope can see have a parent? Reused like the counts, but never
        as out of date: a yes stands until COUNT_TTL_S (the top-level filter it turns on
        gives the right rows either way), and a no read before the store's latest write is
        read again (a new child would show at the top level). Marked stale, every window
        in the seconds after a write was computed again: the runs table's answer was not
        kept while anything logged."""
        b, sb = builder()
        src = sb.key_rows(Field("tags", PARENT_TAG))
        key = (self.db, src, str(b.params), "children")
        hit = self.caches.counts.peek(key)
        if hit is not None and (hit[0] > 0 or hit[1] == self._gen):
            return hit[0] > 0
        return self.caches.counts.put(key, int(self._query(
            f"SELECT count() FROM (SELECT rk FROM {src} LIMIT 1) SETTINGS {FINAL_SETTING}",
            b.params)[0][0]), self._gen) > 0

    def _count(self, key: Any, compute: Any) -> int:
        """A reused count (noting one read before the latest write), or `compute()`."""
        hit = self._peek(key)
        return hit if hit is not None else self.caches.counts.put(key, int(compute()),
                                                                  self._gen)

    def _peek(self, key: Any) -> int | None:
        hit = self.caches.counts.peek(key)
        if hit is None:
            return None
        if hit[1] != self._gen:
            self.stale = True
        return hit[0]

    def _run_filters(self, sb: SqlBuilder, scope: Scope, tree: Any, top_level: bool,
                     driver: Field | None = None) -> str:
        """WHERE text over search_runs (driver None) or over a key's rows (driver set)."""
        where = [sb.scope(scope)] if driver is None else [sb.scope_as_set(scope)]
        pin = sb.pinned_runs(tree) if driver is None else None
        if pin:
            where.append(pin)
        if tree is not None:
            where.append(sb.tree(tree, driver))
        if top_level:
            where.append(f"rk NOT IN (SELECT rk FROM {sb.key_rows(Field('tags', PARENT_TAG))})")
        return " AND ".join(f"({w})" for w in where)

    def _attr_window(self, builder: Any, scope: Scope, tree: Any, term: OrderTerm,
                     offset: int, limit: int, top_level: bool) -> list[int]:
        b, sb = builder()
        col = ATTRIBUTE_COLUMNS[term.field.key]
        where = self._run_filters(sb, scope, tree, top_level)
        d = "ASC" if term.ascending else "DESC"
        rows = self._query(
            f"SELECT rk FROM {sb.runs_table()} WHERE {where} ORDER BY {col} {d}, rk ASC "
            f"LIMIT {int(limit)} OFFSET {int(offset)} SETTINGS {FINAL_SETTING}", b.params)
        return [int(r[0]) for r in rows]

    def _keyed_window(self, builder: Any, scope: Scope, tree: Any, term: OrderTerm,
                      offset: int, limit: int, top_level: bool) -> list[int]:
        f = term.field
        d = "ASC" if term.ascending else "DESC"
        b, sb = builder()
        where1 = self._run_filters(sb, scope, tree, top_level, driver=f)
        src = sb.key_rows(f)
        if f.kind == "metrics":
            order = f"isNaN(last.3) ASC, if(isNaN(last.3), 0, last.3) {d}, rk ASC"
        else:
            order = f"value {d}, rk ASC"
        # phase 1 size (n1) decides which phase(s) the window falls in; the phase 1 query
        # counts it on the way (count() OVER ()), a separate count only when it is past the end
        ckey = (self.db, scope, str(tree), str(f), top_level)
        n1 = self._peek(ckey)
        out: list[int] = []
        if n1 is None or offset < n1:
            counted = ", count() OVER ()" if n1 is None else ""
            rows = self._query(f"SELECT rk{counted} FROM {src} AND {where1} "
                               f"ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)} "
                               f"SETTINGS {FINAL_SETTING}", b.params)
            out = [int(r[0]) for r in rows]
            if rows and n1 is None:
                n1 = self.caches.counts.put(ckey, int(rows[0][1]), self._gen)
        if n1 is None:
            n1 = self._count(ckey, lambda: self._query(
                f"SELECT count() FROM {src} AND {where1} SETTINGS {FINAL_SETTING}",
                b.params)[0][0])
        if len(out) < limit:
            b2, sb2 = builder()
            where2 = self._run_filters(sb2, scope, tree, top_level)
            off2 = max(0, offset - n1)
            rows = self._query(
                f"SELECT rk FROM {sb2.runs_table()} WHERE {where2} AND rk NOT IN "
                f"(SELECT rk FROM {sb2.key_rows(f)}) ORDER BY rk ASC "
                f"LIMIT {int(limit - len(out))} OFFSET {int(off2)} SETTINGS {FINAL_SETTING}",
                b2.params)
            out.extend(int(r[0]) for r in rows)
        return out

    # ------------------------------------------------------------------ rows
    @bounded
    def rows(self, scope: Scope, rks: list[int], columns: list[Field], *,
             top_level: bool = False) -> list[dict[str, Any]]:
        """The info columns and the chosen key columns of runs `rks`, in that order.

        Read from the base tables (runs, params, tags, metric_summary), which are
        ordered by run_id: a window's runs are point lookups there, where the
        search_* tables (ordered by key or experiment) would be scanned.
        """
        if not rks:
            return []
        ids = [f"{rk:032x}" for rk in rks]
        p = {"ids": ids}
        # parent_run_id is a runs column (set from the tag when a run is created)
        wanted: dict[str, list[str]] = {"metrics": [], "params": [], "tags": []}
        for c in columns:
            if c.key not in wanted[c.kind]:
                wanted[c.kind].append(c.key)
        jobs: list[tuple[str, str, dict[str, Any]]] = [(
            "info", f"SELECT {', '.join(INFO_COLUMNS)}, parent_run_id FROM {self.db}.runs FINAL "
            f"WHERE run_id IN {{ids:Array(String)}} SETTINGS {FINAL_SETTING}", p)]
        for kind, keys in wanted.items():
            if not keys:
                continue
            if kind == "metrics":
                sql = (f"SELECT run_id, key, argMaxMerge(last) FROM {self.db}.metric_summary "
                       "WHERE run_id IN {ids:Array(String)} AND key IN {keys:Array(String)} "
                       "GROUP BY run_id, key")
            else:
                sql = (f"SELECT run_id, key, value FROM {self.db}.{kind} FINAL "
                       "WHERE run_id IN {ids:Array(String)} AND key IN {keys:Array(String)}"
                       + (" AND deleted = 0" if kind == "tags" else "")
                       + f" SETTINGS {FINAL_SETTING}")
            jobs.append((kind, sql, {**p, "keys": keys}))
        if self.thread_client is not None:
            tc = self.thread_client
            futs = [_LOOKUPS.submit(lambda q, a: list(tc().query(
                q, parameters=a, settings=read_settings()).result_rows), sql, params)
                for _, sql, params in jobs]
            results = [f.result() for f in futs]
        else:
            results = [self._query(sql, params) for _, sql, params in jobs]
        by_id: dict[str, dict[str, Any]] = {}
        for r in results[0]:
            row = dict(zip(INFO_COLUMNS, r[:-1], strict=True))
            row.update(metrics={}, params={}, tags={}, parent_run_id=str(r[-1] or ""))
            by_id[str(r[0])] = row
        for (kind, _, _), res in zip(jobs[1:], results[1:], strict=True):
            for run_id, key, value in res:
                target = by_id.get(str(run_id))
                if target is not None:
                    target[kind][str(key)] = value
        if top_level:
            counts = self.child_counts(scope, list(by_id))
            for row in by_id.values():
                row["child_count"] = counts.get(row["run_id"], 0)
        return [by_id[i] for i in ids if i in by_id]

    @bounded
    def child_counts(self, scope: Scope, run_ids: list[str]) -> dict[str, int]:
        """Number of visible children (runs tagged with the parent's id) of each run."""
        if not run_ids:
            return {}
        b = Binder()
        sb = SqlBuilder(self.db, b)
        sb.restrict(scope)
        sb.unfiled = self.caches.unfiled(self.client, self.db)
        rows = self._query(
            f"SELECT value, count() FROM {sb.key_rows(Field('tags', PARENT_TAG))} "
            f"AND value IN {b.bind(list(run_ids), 'Array(String)')} "
            f"AND {sb.scope_as_set(scope)} GROUP BY value SETTINGS {FINAL_SETTING}", b.params)
        return {str(v): int(n) for v, n in rows}

    # ------------------------------------------------------------------ keys
    @bounded
    def keys(self, scope: Scope, kinds: tuple[str, ...], q: str, limit: int
             ) -> dict[str, list[str]]:
        """Distinct metric/param/tag keys of the scope's experiments containing `q`."""
        if not 1 <= limit <= MAX_KEYS:
            raise InvalidArgument(f"limit must be in [1, {MAX_KEYS}], got {limit}",
                                  field="limit", limit=MAX_KEYS, received=limit)
        if len(q) > 1000:
            raise InvalidArgument("q is at most 1000 characters", field="q", limit=1000,
                                  received=len(q))
        def one(kind: str, client_of: Callable[[], Any]) -> list[str]:
            b = Binder()
            sb = SqlBuilder(self.db, b)
            sb.restrict(scope)
            where = ["1"]
            if sb.experiments is not None:
                where.append(f"experiment_id IN {b.bind(sb.experiments, 'Array(String)')}")
            if q:
                where.append(f"positionCaseInsensitiveUTF8(key, {b.bind(q, 'String')}) > 0")
            if kind == "tags":
                where.append("deleted = 0")
            sql = (f"SELECT DISTINCT key FROM {sb.keyed_table(kind)} "
                   f"WHERE {' AND '.join(where)} ORDER BY key LIMIT {int(limit)}")

            def read() -> tuple[str, ...]:
                return tuple(str(r[0]) for r in client_of().query(
                    sql, parameters=b.params, settings=read_settings()).result_rows)

            # the same keys until the store's next write (the embedded server): every
            # cold load of a runs table asks for them (at most 64 answers are kept: one
            # can hold MAX_KEYS keys)
            exps = None if sb.experiments is None else tuple(sb.experiments)
            return list(generation_cached(
                self.client, ("keys", self.db, kind, exps, q, int(limit)), read, cap=64))

        tc = self.thread_client
        if tc is None or len(kinds) < 2:
            return {kind: one(kind, lambda: self.client) for kind in kinds}
        # each kind's query on a thread of its own (about 4 ms each on chDB, 10,000 runs)
        futs = {kind: _LOOKUPS.submit(one, kind, tc) for kind in kinds}
        return {kind: f.result() for kind, f in futs.items()}

    # ------------------------------------------------------------ experiments
    @bounded
    def experiment_stats(self, scope: Scope) -> dict[str, tuple[int, int]]:
        """experiment_id -> (visible run count, last activity in ms: latest start or end)."""
        b = Binder()
        sb = SqlBuilder(self.db, b)
        rows = self._query(
            f"SELECT experiment_id, count(), max(greatest(start_time, end_time)) "
            f"FROM {sb.runs_table()} WHERE {sb.scope(scope)} GROUP BY experiment_id "
            f"SETTINGS {FINAL_SETTING}", b.params)
        return {str(e): (int(n), int(t)) for e, n, t in rows}

    def _query(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return list(self.client.query(sql, parameters=params,
                                      settings=read_settings()).result_rows)
