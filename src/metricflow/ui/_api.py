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
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from metricflow.auth.policy import search
from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.query import MAX_KEYS, RunWindow, parse_columns

PREFIX = "/ui-api/v1"
MAX_EXPERIMENTS = 10_000
MAX_EXPERIMENT_IDS = 1_000
"""Most experiment ids one /ui-api request may name (like columns <= 500)."""
KINDS = ("metrics", "params", "tags")


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

    def window_of() -> RunWindow:
        store = core.store
        return RunWindow(store.db, store.client, lambda: store.client)

    @router.post("/runs/window")
    async def runs_window(body: WindowBody) -> Any:
        def work() -> dict[str, Any]:
            cols = parse_columns(body.columns)
            scope = core.scope(check_experiment_ids(body.experiment_ids), body.view_type)
            w = window_of().window(scope, body.filter, body.order_by, body.offset, body.limit,
                                   cols, with_total=body.with_total, top_level=body.top_level)
            for r in w.rows:
                r["metrics"] = {k: _num(v) for k, v in r["metrics"].items()}
                r["end_time"] = r["end_time"] or None
            return {"offset": w.offset, "total": w.total, "rows": w.rows}
        try:
            return await asyncio.to_thread(work)
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
    async def experiments(q: str = "", view_type: str = "active") -> Any:
        def work() -> dict[str, Any]:
            if len(q) > 1000:
                raise InvalidArgument("q is at most 1000 characters", field="q", limit=1000,
                                      received=len(q))
            scope = core.scope([], view_type)  # readable_experiments set with auth on
            stats = window_of().experiment_stats(core.scope([], "active"))
            exps = _all_experiments(core.metadata, view_type)
            needle = q.lower()
            out = []
            for e in exps:
                if scope.readable_experiments is not None and \
                        e.experiment_id not in scope.readable_experiments:
                    continue
                if needle and needle not in e.name.lower() and needle != e.experiment_id:
                    continue
                n, last = stats.get(e.experiment_id, (0, 0))
                out.append({"experiment_id": e.experiment_id, "name": e.name,
                            "lifecycle_stage": e.lifecycle_stage,
                            "creation_time": e.creation_time,
                            "last_update_time": e.last_update_time,
                            "tags": dict(e.tags), "run_count": n,
                            "last_activity": max(last, e.last_update_time or 0) or None})
            out.sort(key=lambda x: -(x["last_activity"] or 0))
            return {"experiments": out, "truncated": len(exps) >= MAX_EXPERIMENTS}
        try:
            return await asyncio.to_thread(work)
        except MetricflowError as e:
            return _error(e)

    for fn in (runs_window, keys, experiments):
        fn.mf_rule = search()  # type: ignore[attr-defined, union-attr]  # like /api/v1/runs/search
    return router


def _all_experiments(metadata: Any, view_type: str) -> list[Any]:
    if metadata is None:
        return []
    out: list[Any] = []
    token = None
    while len(out) < MAX_EXPERIMENTS:
        page, token = metadata.search_experiments("", view_type, 1000, (), token)
        out.extend(page)
        if not token:
            break
    return out
