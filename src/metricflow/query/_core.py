"""QueryCore: the read operations shared by the gRPC and HTTP front ends."""

from __future__ import annotations

import base64
import contextvars
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any

import numpy as np
import pyarrow.compute as pc

from metricflow._validation import check_key, check_run_id
from metricflow.entities import Run, RunInfo
from metricflow.errors import InvalidArgument
from metricflow.query import _rollup_read as rr
from metricflow.query._compare import CompareTable, ParamGroup, compare_runs, group_by_param
from metricflow.query._deadline import bounded, read_settings
from metricflow.query._grammar import parse_filter
from metricflow.query._history import DownsampledSeries, check_bulk, downsample
from metricflow.query._rollup_read import buckets_for_px
from metricflow.query._search import DatasetRuns, RunSearch, SearchPage
from metricflow.query._sql import Scope, run_id_comparison
from metricflow.query._tail import Tailer, check_tail
from metricflow.query._tail_hub import TailHub, TailLimits, TailStream
from metricflow.store import ROLLUP_SHIFT, MetricStore, Segment
from metricflow.store.metadata import canonical_experiment_id

log = logging.getLogger(__name__)
_PREFETCH_ROLLUP_ROWS = 400_000
"""`downsample_px` reads several keys' rollup rows in one query up to this many rows
(~100 bytes each in Arrow; estimated from the run's summaries first)."""

MAX_HISTORY_PAGE = 1_000_000
DEFAULT_HISTORY_PAGE = 100_000
MAX_SEARCH_PAGE = 50_000
DEFAULT_SEARCH_PAGE = 1000
VIEW_TYPES = ("active", "deleted", "all")
_RUN_FIELDS = tuple(f.name for f in fields(RunInfo))
"""The runs table's columns are RunInfo's fields, in order (store/_schema.py)."""
_LOOKUP = {"max_threads": 1}


def encode_token(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_token(token: str, field: str = "page_token") -> dict[str, Any]:
    try:
        obj = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(obj, dict):
            raise ValueError
        return obj
    except Exception:  # any garbage token is the caller's
        raise InvalidArgument(f"{field} is not a token this server issued",
                              field=field, received=token[:80]) from None


def ensure_query_schema(store: MetricStore) -> None:
    """Kept for callers that still call it: the search tables are the store's schema now."""
    store.ensure_schema()


class QueryCore:
    """Read operations shared by the gRPC and HTTP front ends.

    Args:
        store: the data plane.
        metadata: the control plane; `deleted_experiment_ids()` hides the runs
            of deleted experiments from active searches.
        ensure_schema: run `store.ensure_schema()` first. Off by default: every
            role creates the schema (search tables included) when it opens the store.
    """

    def __init__(self, store: MetricStore, metadata: Any, ensure_schema: bool = False,
                 tail_limits: TailLimits | None = None) -> None:
        self.store, self.metadata = store, metadata
        self.tails = TailHub(lambda: self.store.client, self.store.db, tail_limits,
                             plan_of=store.read_plan)
        """Every live tail of this core: limits, the shared poller, per-stream buffers."""
        self._page_pool = ThreadPoolExecutor(4, thread_name_prefix="metricflow-page")
        if ensure_schema:
            store.ensure_schema()

    # ------------------------------------------------------------------ runs
    def get_run(self, run_id: str) -> Run:
        """One run with exact point counts. Its four lookups are independent, so they run
        at once on the page-load pool, as a page's do (`load_runs`)."""
        check_run_id(run_id)
        st, ids, pool = self.store, [run_id], self._page_pool
        info = pool.submit(st.get_run_info, run_id)  # NotFound for a missing run
        params, tags = pool.submit(st.get_params, ids), pool.submit(st.get_tags, ids)
        summaries = pool.submit(st.get_summaries, ids, True)
        return Run(info.result(), params.result()[run_id], tags.result()[run_id],
                   summaries.result()[run_id])

    def scope(self, experiment_ids: list[str], view_type: str,
              readable_experiments: frozenset[str] | None = None) -> Scope:
        """Visibility of a search; `readable_experiments` is the authorization hook."""
        vt = view_type or "active"
        if vt not in VIEW_TYPES:
            raise InvalidArgument(f"view_type must be active, deleted or all, got {view_type!r}",
                                  field="view_type", received=view_type)
        for e in experiment_ids:
            if not isinstance(e, str) or not e or len(e) > 256:
                raise InvalidArgument("experiment_ids must be non-empty strings",
                                      field="experiment_ids", received=str(e)[:80])
        # Runs are stored under canonical ids: '02' searches experiment 2 (as MLflow).
        experiment_ids = [canonical_experiment_id(e) for e in experiment_ids]
        hidden: frozenset[str] = frozenset()
        fn = getattr(self.metadata, "deleted_experiment_ids", None)
        if fn is not None:
            hidden = frozenset(fn())
        return Scope(tuple(experiment_ids) if experiment_ids else None, vt, hidden,
                     readable_experiments)

    @bounded
    def search_run_ids(self, experiment_ids: list[str], filter_string: str,
                       order_by: list[str], max_results: int, page_token: str,
                       view_type: str, readable_experiments: frozenset[str] | None = None,
                       *, dataset_runs: DatasetRuns | None = None,
                       artifact_root: str | None = None,
                       scope: Scope | None = None) -> SearchPage:
        """`dataset_runs`/`artifact_root`: MLflow's extra fields (`RunSearch.search`).
        `scope`: the visibility already worked out (`self.scope(...)`) for these
        experiments and view type, used as is (a caller that keys a kept answer by it
        must compute the answer from the same one)."""
        if not 0 <= max_results <= MAX_SEARCH_PAGE:
            raise InvalidArgument(f"max_results must be in [0, {MAX_SEARCH_PAGE}], got "
                                  f"{max_results}", field="max_results",
                                  limit=MAX_SEARCH_PAGE, received=max_results)
        if scope is None:
            scope = self.scope(experiment_ids, view_type, readable_experiments)
        return RunSearch(self.store.db, self.store.client).search(
            scope, filter_string, list(order_by), max_results or DEFAULT_SEARCH_PAGE,
            page_token, dataset_runs=dataset_runs, artifact_root=artifact_root)

    @bounded
    def search_runs(self, experiment_ids: list[str], filter_string: str, order_by: list[str],
                    max_results: int, page_token: str, view_type: str,
                    readable_experiments: frozenset[str] | None = None,
                    *, dataset_runs: DatasetRuns | None = None,
                    artifact_root: str | None = None,
                    scope: Scope | None = None,
                    seen: set[str] | None = None) -> tuple[list[Run], str]:
        """One page of full runs (info, params, tags, metric summaries) and the next token.

        A lookup of one run by id (`attributes.run_id = '...'`, the run page's) loads
        that run while the search decides whether the caller sees it: the two rounds
        of queries overlap instead of following each other. The search's answer is
        still the answer (a run it does not return is not returned). `seen` gets the
        ancestors whose points the loaded runs' summaries were computed from
        (`load_runs`)."""
        def search() -> SearchPage:
            return self.search_run_ids(experiment_ids, filter_string, order_by, max_results,
                                       page_token, view_type, readable_experiments,
                                       dataset_runs=dataset_runs, artifact_root=artifact_root,
                                       scope=scope)

        one = None if page_token else _one_run(filter_string)
        if one is None:
            page = search()
            return self.load_runs(page.run_ids, seen), page.next_page_token
        # The search on the pool (it waits on nothing there), in this call's context: the
        # caller's identity is a context variable, which decides what the search may
        # see (query/_scoped.py). The load here: it waits on the pool's lookups, and on a
        # pool thread four such loads at once would deadlock.
        searching = self._page_pool.submit(contextvars.copy_context().run, search)
        loaded: list[Run] | None = None
        failed: Exception | None = None
        try:
            loaded = self.load_runs([one], seen)
        except Exception as e:  # only the caller's if the search returns the run
            failed = e
        page = searching.result()
        if page.run_ids != [one]:
            return self.load_runs(page.run_ids, seen), page.next_page_token
        if failed is not None:
            raise failed
        if not loaded:  # created between the load and the search: read it again
            loaded = self.load_runs([one], seen)
        return loaded, page.next_page_token

    @bounded
    def load_runs(self, ids: list[str], seen: set[str] | None = None) -> list[Run]:
        """Full runs for a page of ids, in the given order.

        The four lookups are independent point reads, so they run at once on the
        page-load pool (each thread has its own ClickHouse client): a page costs
        the slowest lookup instead of the sum of all four. `seen` gets the runs read
        beyond `ids`: the ancestors of resumed runs and forks among them
        (`MetricStore.read_plan`), whose points their summaries may be computed from.
        """
        if not ids:
            return []
        st = self.store
        futs = [self._page_pool.submit(fn, ids) for fn in
                (self._run_infos, self._params, st.get_tags)]
        # The stored summary rows for every run; the run infos then say which runs are
        # resumed or forks (rare), and only those cost a lineage lookup: the summaries of
        # a resumed run (or a fork of one) are computed from its points.
        futs.append(self._page_pool.submit(st.get_summaries, ids, False, {}))
        results: list[Any] = [f.result() for f in futs]
        infos, params, tags, summaries = results
        odd = [r for r, i in infos.items() if i.forked_from or i.resume_count]
        if odd:
            plan = st.read_plan(odd, seen)
            dedup = [r for r, segs in plan.items() if any(s.dedup for s in segs)]
            if dedup:
                summaries.update(st.get_summaries(dedup, False, plan))
        return [Run(infos[r], params[r], tags[r], summaries[r]) for r in ids if r in infos]

    def _run_infos(self, ids: list[str]) -> dict[str, RunInfo]:
        """`store.get_run_infos` for a page: the newest version of each run by
        `argMax(..., version)` per run instead of `FINAL` (the same row: a run's
        versions are distinct, `ingest/_applier.py`), 2-3x cheaper over the ~100
        scattered granules of a page (at 10k runs nearly all of them)."""
        st = self.store
        cols = ", ".join(_RUN_FIELDS[1:])
        res = st.client.query(
            f"SELECT run_id, argMax(({cols}), version) FROM {st.db}.runs "
            "WHERE run_id IN {ids:Array(String)} GROUP BY run_id",
            parameters={"ids": ids}, settings=read_settings(**_LOOKUP))
        return {r: RunInfo(r, *row) for r, row in res.result_rows}

    def _params(self, ids: list[str]) -> dict[str, dict[str, str]]:
        """`store.get_params` by `argMax(value, version)` per key instead of `FINAL`:
        the kept (first) value has the highest version, and a key's versions differ
        unless the value is the same (params are immutable; a batch is deduplicated
        before it is written)."""
        st = self.store
        out: dict[str, dict[str, str]] = {r: {} for r in ids}
        res = st.client.query(
            f"SELECT run_id, key, argMax(value, version) FROM {st.db}.params "
            "WHERE run_id IN {ids:Array(String)} GROUP BY run_id, key ORDER BY run_id, key",
            parameters={"ids": ids}, settings=read_settings(**_LOOKUP))
        for run_id, key, value in res.result_rows:
            out[run_id][key] = value
        return out

    # --------------------------------------------------------------- history
    @bounded
    def history_page(self, run_id: str, key: str, max_results: int, page_token: str
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        check_run_id(run_id)
        check_key(key, "key")
        if not 0 <= max_results <= MAX_HISTORY_PAGE:
            raise InvalidArgument(f"max_results must be in [0, {MAX_HISTORY_PAGE}], "
                                  f"got {max_results}", field="max_results", received=max_results)
        limit = max_results or DEFAULT_HISTORY_PAGE
        after = None
        if page_token:
            tok = decode_token(page_token)
            try:
                after = (int(tok["s"]), int(tok["t"]))
            except (KeyError, TypeError, ValueError):
                raise InvalidArgument("page_token is not a history token", field="page_token",
                                      received=page_token[:80]) from None
        steps, ts, values = self.store.metric_history(run_id, key, limit=limit, after=after,
                                                      settings=read_settings())
        nxt = ""
        if len(steps) >= limit:
            nxt = encode_token({"s": int(steps[-1]), "t": int(ts[-1])})
        return steps, ts, values, nxt

    @bounded
    def downsample(self, run_ids: list[str], key: str, buckets: int,
                   step_min: int | None = None, step_max: int | None = None, *,
                   ends: bool = True) -> list[DownsampledSeries]:
        """`ends` False: no exact first and last points (`history.downsample`)."""
        return downsample(self.store.client, self.store.db, list(run_ids), key, buckets,
                          step_min, step_max, plan=self.store.read_plan(run_ids), ends=ends)

    @bounded
    def downsample_keys(self, run_ids: list[str], keys: list[str], buckets: int,
                        step_min: int | None = None, step_max: int | None = None, *,
                        ends: bool = True, seen: set[str] | None = None
                        ) -> list[DownsampledSeries]:
        """`downsample` of several keys of the same runs (their series, key by key): the
        runs' plan is read once, not once per key, and the keys are read in parallel.
        `seen` gets the runs whose rows the answer depends on (`MetricStore.read_plan`)."""
        for k in keys:
            check_bulk(list(run_ids), k, buckets)
        return self._downsample_each(list(run_ids),
                                     dict.fromkeys(keys, (buckets, step_min, step_max)),
                                     self.store.read_plan(run_ids, seen), ends)

    def _downsample_each(self, run_ids: list[str],
                         jobs: dict[str, tuple[int, int | None, int | None]],
                         plan: dict[str, list[Segment]], ends: bool,
                         rows: dict[str, Any] | None = None) -> list[DownsampledSeries]:
        """Each key's series read in parallel, in key order (`jobs`: key -> buckets,
        step_min, step_max; `rows`: their rollup rows already read, `read_rollup_rows`)."""
        futs = [self._page_pool.submit(downsample, self.store.client, self.store.db, run_ids,
                                       k, *job, plan=plan, ends=ends,
                                       rows=None if rows is None else rows.get(k))
                for k, job in jobs.items()]
        return [s for f in futs for s in f.result()]

    @bounded
    def downsample_px(self, run_id: str, keys: list[str], first_keys: int, px: int,
                      step_min: int | None = None, step_max: int | None = None, *,
                      ends: bool = True, seen: set[str] | None = None
                      ) -> tuple[list[DownsampledSeries], dict[str, int]]:
        """`downsample_keys` of one run sized for charts `px` pixels wide: each key gets
        the count the web UI would ask for (`buckets_for_px` over the key's steps, from
        its summary), returned beside the series. `keys` empty: the run's first
        `first_keys` metric keys in the run page's order (its first charts). `seen`: as
        for `downsample_keys`."""
        check_run_id(run_id)
        # The stored summary rows only size the buckets (an estimate is fine), so they
        # are read beside the plan, not after it.
        plan_f = self._page_pool.submit(self.store.read_plan, [run_id], seen)
        sums = self.store.get_summaries([run_id], False, {})[run_id]
        plan = plan_f.result()
        if step_min is not None and step_max is not None and step_max < step_min:
            raise InvalidArgument(f"step_max ({step_max}) is below step_min ({step_min})",
                                  field="step_max", received=step_max)
        # the run page's order: JavaScript sorts strings by UTF-16 code unit
        keys = list(dict.fromkeys(
            keys or sorted(sums, key=lambda k: k.encode("utf-16-be"))[:first_keys]))
        lo = step_min or 0
        counts: dict[str, int] = {}
        for k in keys:
            hi = step_max if step_max is not None else (sums[k].last_step if k in sums else None)
            counts[k] = buckets_for_px(px, None if hi is None else hi - lo + 1, lo)
            check_bulk([run_id], k, counts[k])
        jobs: dict[str, tuple[int, int | None, int | None]] = {
            k: (n, step_min, step_max) for k, n in counts.items()}
        rows: dict[str, Any] | None = None
        his = [step_max if step_max is not None else sums[k].last_step for k in keys if k in sums]
        if (run_id not in plan and len(keys) > 1
                and sum(rr.n_blocks(lo, h) for h in his if h >= lo) <= _PREFETCH_ROLLUP_ROWS):
            # Every key's rollup rows in one query, not two queries a key (its step range,
            # then its rows): on chDB each query has ~5-10 ms of fixed work. The rows give
            # the step range downsample would read (the rollup's smallest and largest step).
            # The estimate above (blocks from the summaries) can be low (steps below 0, many
            # rows a block): past the limit the keys are read one by one after all.
            rows = rr.read_rollup_rows(
                self.store.client, self.store.db, [run_id], keys,
                -(1 << 63) if step_min is None else step_min >> ROLLUP_SHIFT,
                (1 << 63) - 1 if step_max is None else step_max >> ROLLUP_SHIFT,
                limit=_PREFETCH_ROLLUP_ROWS)
        if rows is not None:
            jobs = {}
            for k in [k for k in keys if k in rows]:  # in the request's order
                t = rows[k]
                lo_k = int(pc.min(t.column("first_step")).as_py()) if step_min is None else step_min
                hi_k = int(pc.max(t.column("last_step")).as_py()) if step_max is None else step_max
                if lo_k <= hi_k and rr.aligned(lo_k, hi_k, counts[k]):
                    jobs[k] = (counts[k], lo_k, hi_k)
                else:  # raw buckets or an empty range: downsample reads (and says) it
                    jobs[k] = (counts[k], step_min, step_max)
                    del rows[k]
        return self._downsample_each([run_id], jobs, plan, ends, rows), counts

    # --------------------------------------------------------------- compare
    @bounded
    def compare(self, run_ids: list[str], metric_keys: list[str],
                param_keys: list[str]) -> CompareTable:
        return compare_runs(self.store, list(run_ids), list(metric_keys), list(param_keys))

    @bounded
    def group_by_param(self, experiment_ids: list[str], filter_string: str, view_type: str,
                       param_key: str, metric_key: str,
                       readable_experiments: frozenset[str] | None = None) -> list[ParamGroup]:
        scope = self.scope(experiment_ids, view_type, readable_experiments)
        return group_by_param(self.store.client, self.store.db, scope, filter_string,
                              param_key, metric_key)

    # ------------------------------------------------------------------ tail
    def tailer(self, run_ids: list[str], keys: list[str], from_start: bool,
               poll_interval_ms: int) -> tuple[Tailer, float]:
        """An unmanaged tail cursor (tests, tools); servers use `open_tail`."""
        interval = check_tail(list(run_ids), list(keys), poll_interval_ms)
        return Tailer(lambda: self.store.client, self.store.db, list(run_ids), list(keys),
                      from_start, plan_of=self.store.read_plan), interval

    async def open_tail(self, run_ids: list[str], keys: list[str], from_start: bool,
                        poll_interval_ms: int, user: str | None) -> TailStream:
        """Admit a live tail under the limits (docs/query.md); its reader runs on this loop.

        Args:
            user: the authenticated caller (per-user limit); None with auth off.
        """
        return await self.tails.open_async(list(run_ids), list(keys), from_start,
                                           poll_interval_ms, user)


def _one_run(filter_string: str) -> str | None:
    """The id of a filter that is exactly `attributes.run_id = '<id>'`, else None."""
    if "run_id" not in filter_string:
        return None
    try:
        tree = parse_filter(filter_string)
    except InvalidArgument:
        return None  # the search reports it
    c = run_id_comparison(tree)
    return c.value if c is not None and c.op == "=" and isinstance(c.value, str) else None
