"""Data endpoints of the web UI, under /ui-api/v1 (internal API; the UI is its only client).

What /api/v1 lacks for a table over millions of runs:
- POST /ui-api/v1/runs/window: rows offset..offset+limit of any filter (the full search
  grammar) sorted by any column, the total count, and only the chosen columns;
- GET /ui-api/v1/keys: metric/param/tag keys of the chosen experiments, with substring search;
- GET /ui-api/v1/experiments: experiments with their run counts and last activity.

Auth is exactly the search API's: each route carries the `search()` rule (any reader
may ask) and every query goes through `core.scope(...)`, which on the auth-scoped
core (`ScopedQueryCore`) restricts runs to the caller's readable experiments inside
the SQL. Filter errors answer 400 with the parser's `position` for the inline error.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from metricflow.auth.policy import search
from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.query import (
    MAX_KEYS,
    RunWindow,
    WindowCaches,
    keepable,
    kept_answer,
    parse_columns,
)

PREFIX = "/ui-api/v1"
PAGE_EXPERIMENTS = 1_000
MAX_PAGE_EXPERIMENTS = 5_000
_IN_CHUNK = 10_000
MAX_EXPERIMENT_IDS = 1_000
"""Most experiment ids one /ui-api request may name (like columns <= 500)."""
KINDS = ("metrics", "params", "tags")
WINDOW_CACHE_ROWS = 500
"""Only windows of at most this many rows are kept (a screen and its margins)."""


class WindowBody(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list,
                                      description="empty = every readable experiment")
    filter: str = ""
    order_by: str = Field("", description="one term, e.g. 'metrics.loss ASC'; "
                                          "empty = start_time DESC")
    offset: int = 0
    limit: int = 100
    columns: list[str] = Field(default_factory=list,
                               description="metrics.<key> / params.<key> / tags.<key>")
    view_type: str = "active"
    with_total: bool = True
    top_level: bool = Field(False, description="only runs without a parent, with child_count")


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _error(e: MetricflowError) -> JSONResponse:
    body: dict[str, Any] = {"error_code": e.code.value, "message": e.message}
    for k in ("field", "position", "limit"):
        if k in e.details:
            body[k] = e.details[k]
    return JSONResponse(body, status_code=e.http_status)


def _ids(csv: str) -> list[str]:
    return [s for s in (p.strip() for p in csv.split(",")) if s]


def check_experiment_ids(ids: list[str]) -> list[str]:
    """`ids`, or InvalidArgument (400) naming the field, the limit and the count sent,
    before anything looks an id up."""
    if len(ids) > MAX_EXPERIMENT_IDS:
        raise InvalidArgument(f"at most {MAX_EXPERIMENT_IDS} experiment_ids, got {len(ids)}",
                              field="experiment_ids", limit=MAX_EXPERIMENT_IDS,
                              received=len(ids))
    return ids


def ui_router(core: Any) -> APIRouter:
    """The /ui-api/v1 data routes over one QueryCore (the caller-scoped one with auth on)."""
    router = APIRouter(prefix=PREFIX)
    caches = WindowCaches()  # this router's store: its counts stay its own

    def window_of() -> RunWindow:
        store = core.store
        return RunWindow(store.db, store.client, lambda: store.client, caches)

    @router.post("/runs/window")
    async def runs_window(body: WindowBody) -> Any:
        def work() -> bytes:
            cols = parse_columns(body.columns)
            scope = core.scope(check_experiment_ids(body.experiment_ids), body.view_type)

            def answer() -> tuple[bytes, bool]:
                rw = window_of()
                w = rw.window(scope, body.filter, body.order_by, body.offset, body.limit,
                              cols, with_total=body.with_total, top_level=body.top_level)
                for r in w.rows:
                    r["metrics"] = {k: _num(v) for k, v in r["metrics"].items()}
                    r["end_time"] = r["end_time"] or None
                # JSON-native already: JSONResponse's encoding skips FastAPI's per-value
                # encoder walk. Not kept when built on a count read before the latest
                # write (reused for a few seconds: it may be out of date).
                return bytes(JSONResponse({"offset": w.offset, "total": w.total,
                                           "rows": w.rows}).body), not rw.stale

            if body.limit > WINDOW_CACHE_ROWS or not keepable(scope):
                return answer()[0]
            # The same window of an unchanged store is the same answer: kept until the
            # store's next write when this process is its only writer (the embedded
            # server). The scope is in the key (the caller's readable and the deleted
            # experiments), and the answer is computed from that same scope.
            key = ("ui_window", core.store.db, scope, body.filter, body.order_by,
                   body.offset, body.limit, tuple(cols), body.with_total, body.top_level)
            return kept_answer(core.store.client, key, answer)
        try:
            return Response(await asyncio.to_thread(work), media_type="application/json")
        except MetricflowError as e:
            return _error(e)

    @router.get("/keys")
    async def keys(experiment_ids: str = "", q: str = "",
                   kinds: str = "metrics,params,tags",
                   limit: int = Query(MAX_KEYS), view_type: str = "active") -> Any:
        def work() -> dict[str, Any]:
            ks = tuple(_ids(kinds))
            bad = [k for k in ks if k not in KINDS]
            if bad:
                raise InvalidArgument("kinds are metrics, params, tags", field="kinds",
                                      received=",".join(bad)[:200])
            if len(experiment_ids) > MAX_EXPERIMENT_IDS * 64:  # before splitting it
                raise InvalidArgument(
                    f"experiment_ids is at most {MAX_EXPERIMENT_IDS * 64} characters",
                    field="experiment_ids", limit=MAX_EXPERIMENT_IDS * 64,
                    received=len(experiment_ids))
            scope = core.scope(check_experiment_ids(_ids(experiment_ids)), view_type)
            return window_of().keys(scope, ks or KINDS, q, limit)
        try:
            return await asyncio.to_thread(work)
        except MetricflowError as e:
            return _error(e)

    @router.get("/experiments")
    async def experiments(q: str = "", view_type: str = "active",
                          max_results: int = PAGE_EXPERIMENTS, page_token: str = "") -> Any:
        def work() -> dict[str, Any]:
            if len(q) > 1000:
                raise InvalidArgument("q is at most 1000 characters", field="q", limit=1000,
                                      received=len(q))
            if not 1 <= max_results <= MAX_PAGE_EXPERIMENTS:
                raise InvalidArgument(f"max_results must be in [1, {MAX_PAGE_EXPERIMENTS}], "
                                      f"got {max_results}", field="max_results",
                                      limit=MAX_PAGE_EXPERIMENTS, received=max_results)
            readable = core.scope([], view_type).readable_experiments  # None: all
            exps, token = experiments_page(core.metadata, readable, q, view_type,
                                           max_results, page_token)
            ids = [e.experiment_id for e in exps]
            stats = window_of().experiment_stats(core.scope(ids, "active")) if ids else {}
            out = []
            for e in exps:
                n, last = stats.get(e.experiment_id, (0, 0))
                out.append({"experiment_id": e.experiment_id, "name": e.name,
                            "lifecycle_stage": e.lifecycle_stage,
                            "creation_time": e.creation_time,
                            "last_update_time": e.last_update_time,
                            "tags": dict(e.tags), "run_count": n,
                            "last_activity": max(last, e.last_update_time or 0) or None})
            return {"experiments": out, "next_page_token": token}
        try:
            return await asyncio.to_thread(work)
        except MetricflowError as e:
            return _error(e)

    for fn in (runs_window, keys, experiments):
        fn.mf_rule = search()  # type: ignore[attr-defined, union-attr]  # like /api/v1/runs/search
    return router


def _like(q: str) -> str:
    """A filter_string literal of `%q%` (the grammar's backslash escapes)."""
    return "'%" + q.replace("\\", "\\\\").replace("'", "\\'") + "%'"


def experiments_page(metadata: Any, readable: frozenset[str] | None, q: str, view_type: str,
                     max_results: int, page_token: str) -> tuple[list[Any], str | None]:
    """One page of the experiments the caller may read whose name contains `q` (case
    insensitive) or whose id is `q`, most recently updated first, and the next page's
    token. The name filter and the readable set go into the store's search (SQL), so
    every experiment is reachable by paging and nothing says how many others exist.
    A readable set larger than `_IN_CHUNK` ids is searched chunk by chunk (each chunk in
    that order); the token is `<chunk>:<store token>`."""
    if metadata is None:
        return [], None
    chunk_s, _, inner = page_token.partition(":")
    if page_token and not chunk_s.isdigit():
        raise InvalidArgument("page_token is not one this endpoint gave", field="page_token",
                              received=page_token[:100])
    chunk = int(chunk_s or 0)
    needle = q.strip().lower()
    base = f"name ILIKE {_like(needle)}" if needle else ""
    ids = None if readable is None else sorted((x for x in readable if x.isdigit()),
                                               key=int, reverse=True)
    n_chunks = 1 if ids is None else max(1, -(-len(ids) // _IN_CHUNK))
    out: list[Any] = []
    if not page_token and needle and _id_key(needle)[0] == 0 and \
            (readable is None or needle in readable):
        # the experiment whose id is q, first (its name need not contain q)
        try:
            e = metadata.get_experiment(needle)
            stages = {"active": ("active",), "deleted": ("deleted",)}.get(view_type.lower(),
                                                                          ("active", "deleted"))
            if e.lifecycle_stage in stages:
                out.append(e)
        except MetricflowError:
            pass
    token: str | None = inner or None
    while chunk < n_chunks and len(out) < max_results:
        f = base
        if ids is not None:
            part = ids[chunk * _IN_CHUNK:(chunk + 1) * _IN_CHUNK]
            if not part:
                return out, None
            f = " AND ".join(x for x in (base, f"experiment_id IN ({','.join(part)})") if x)
        page, token = metadata.search_experiments(
            f, view_type, max_results - len(out), ("last_update_time DESC", "experiment_id DESC"),
            token)
        # LIKE treats % and _ in q as wildcards: keep only real substring matches
        out.extend(e for e in page if not needle or needle in e.name.lower())
        if token is None:
            chunk += 1
        if len(out) >= max_results:
            break
    uniq: dict[str, Any] = {}
    for e in out:
        uniq.setdefault(e.experiment_id, e)  # the id match first, once
    out = list(uniq.values())
    if chunk >= n_chunks:
        return out, None
    return out, f"{chunk}:{token or ''}"


def _id_key(eid: str) -> tuple[int, int | str]:
    return (0, int(eid)) if eid.isdigit() else (1, eid)
