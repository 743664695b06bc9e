"""HTTP/JSON front end (FastAPI): health, Prometheus /metrics and /api/v1 reads."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

# Server extras; this module is only imported by servers. Route annotations must
# resolve at module level for FastAPI/OpenAPI (this file uses postponed annotations).
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.query import DEFAULT_BUCKETS, keepable, kept_answer, kept_run_answer, pinned_runs


def _num(x: float) -> float | str:
    # JSON has no NaN/Inf; send them as strings so nothing is rewritten silently.
    return x if math.isfinite(x) else str(x)


def run_to_json(run: Any) -> dict[str, Any]:
    i = run.info
    return {
        "info": {"run_id": i.run_id, "experiment_id": i.experiment_id, "run_name": i.run_name,
                 "user_id": i.user_id, "status": i.status, "start_time": i.start_time,
                 "end_time": i.end_time or None, "parent_run_id": i.parent_run_id or None,
                 "lifecycle_stage": i.lifecycle_stage, "artifact_uri": i.artifact_uri},
        "params": run.params,
        "tags": run.tags,
        "metrics": {k: {"last_value": _num(s.last_value), "last_step": s.last_step,
                        "last_timestamp": s.last_timestamp, "min_value": _num(s.min_value),
                        "max_value": _num(s.max_value), "count": s.count}
                    for k, s in run.metrics.items()},
    }


class SearchBody(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list,
                                      description="empty = every readable experiment")
    filter: str = ""
    order_by: list[str] = Field(default_factory=list)
    max_results: int = 1000
    page_token: str = ""
    view_type: str = "active"

SEARCH_CACHE_RUNS = 100
"""Only pages of at most this many runs are kept (a run page's lookup, a small list)."""
PINNED_CACHE_RUNS = 200
"""A search pinned to more run ids (`pinned_runs`, with their lower-case forms) is kept
only until the next write to any run, as other searches."""
MAX_DOWNSAMPLE_KEYS = 100
"""Keys one downsample request may ask for (`keys`); the run page draws at most 60 charts."""
DOWNSAMPLE_CACHE_RUNS = 10
"""Only answers over at most this many runs are kept (a run page's, a small overlay's)."""


class DownsampleBody(BaseModel):
    run_ids: list[str]
    key: str = ""
    keys: list[str] = Field(default_factory=list)
    """Instead of `key`: several keys of the same runs, buckets and range in one request
    (series of every key, in this order). A browser opens ~6 connections per server, so
    a run page's 10 charts in 10 requests waited for each other's."""
    buckets: int = 1000
    step_min: int | None = None
    step_max: int | None = None
    ends: bool = True
    """False: no exact first_point / last_point (null), one primary-key lookup less."""
    px: int | None = None
    """Instead of `buckets` (one run only): the chart's plot width in CSS pixels. Each key
    gets the count the web UI picks for that width over the key's steps: one per pixel,
    or a nearby count the rollup answers (`buckets` in the answer says which)."""
    run_keys: int | None = None
    """Instead of `key`/`keys` (one run only): the run's first N (1..100) metric keys in
    the run page's order (UTF-16 code units, as JavaScript sorts)."""

class CompareBody(BaseModel):
    run_ids: list[str]
    metric_keys: list[str] = Field(default_factory=list)
    param_keys: list[str] = Field(default_factory=list)

class TailBody(BaseModel):
    run_ids: list[str] = Field(description="1 to 100 runs")
    keys: list[str] = Field(default_factory=list, description="empty = every key")
    from_start: bool = Field(False, description="first send the points already stored")
    poll_interval_ms: int = Field(200, description="50..60000")

class GroupBody(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str = ""
    view_type: str = "active"
    param_key: str
    metric_key: str


def _f64(a: Any) -> list[float | str]:
    return [_num(v) for v in a.tolist()]


def series_to_json(s: Any) -> dict[str, Any]:
    def pt(p: Any) -> dict[str, Any] | None:
        return None if p is None else {"step": p[0], "timestamp": p[1], "value": _num(p[2])}

    return {"run_id": s.run_id, "key": s.key, "step_lo": s.step_lo, "step_hi": s.step_hi,
            **{c: getattr(s, c).tolist() for c in ("bucket", "count", "step_first",
                                                   "step_last", "nan_count", "inf_count")},
            **{c: _f64(getattr(s, c)) for c in ("min", "max", "avg", "last")},
            "first_point": pt(s.first_point), "last_point": pt(s.last_point)}


MAX_PX = 100_000
"""Widest chart `px` may describe (bucket counts stop at 10,000 anyway)."""


def _one_run(body: DownsampleBody, field: str) -> None:
    if len(body.run_ids) != 1:
        raise InvalidArgument(f"{field} needs exactly one run in run_ids, got "
                              f"{len(body.run_ids)}", field="run_ids", limit=1,
                              received=len(body.run_ids))


def check_px(body: DownsampleBody) -> None:
    """The `px` / `run_keys` options: one run, within their limits, not mixed with
    the fields they replace."""
    if body.px is not None:
        _one_run(body, "px")
        if not 1 <= body.px <= MAX_PX:
            raise InvalidArgument(f"px must be 1..{MAX_PX}, got {body.px}", field="px",
                                  limit=MAX_PX, received=body.px)
    if body.run_keys is not None:
        _one_run(body, "run_keys")
        if body.key or body.keys:
            raise InvalidArgument("give run_keys or key/keys, not both", field="run_keys")
        if not 1 <= body.run_keys <= MAX_DOWNSAMPLE_KEYS:
            raise InvalidArgument(f"run_keys must be 1..{MAX_DOWNSAMPLE_KEYS}, got "
                                  f"{body.run_keys}", field="run_keys",
                                  limit=MAX_DOWNSAMPLE_KEYS, received=body.run_keys)
        if body.px is None:
            raise InvalidArgument("run_keys needs px (each key's bucket count is chosen "
                                  "for the chart's width)", field="px")


def downsample_keys(body: DownsampleBody) -> list[str]:
    """The keys a downsample request names (`key` or `keys`, not both), each once;
    empty for `run_keys` (the run's own)."""
    if body.run_keys is not None:
        return []
    if body.key and body.keys:
        raise InvalidArgument("give key or keys, not both", field="keys")
    if len(body.keys) > MAX_DOWNSAMPLE_KEYS:
        raise InvalidArgument(f"keys must hold at most {MAX_DOWNSAMPLE_KEYS} keys, got "
                              f"{len(body.keys)}", field="keys", limit=MAX_DOWNSAMPLE_KEYS,
                              received=len(body.keys))
    return list(dict.fromkeys(body.keys)) or [body.key]


def add_query_routes(app: Any, core: Any) -> None:
    """POST routes of the query API (search, downsample, compare, group-by)."""
    # These answers are JSON-native (str, int, float, list, dict, None; NaN/Inf as
    # strings): a JSONResponse skips FastAPI's per-value encoder walk, ~4.4 of ~4.6 ms of
    # encoding a 377-bucket series here.
    @app.post("/api/v1/runs/search")
    async def search_runs(body: SearchBody) -> Response:
        def answer(scope: Any = None, seen: set[str] | None = None) -> bytes:
            runs, nxt = core.search_runs(body.experiment_ids, body.filter, body.order_by,
                                         body.max_results, body.page_token, body.view_type,
                                         scope=scope, seen=seen)
            return bytes(JSONResponse({"runs": [run_to_json(r) for r in runs],
                                       "next_page_token": nxt or None}).body)

        def work() -> bytes:
            if not 0 < body.max_results <= SEARCH_CACHE_RUNS:  # (0: the default page)
                return answer()
            # Kept as the runs window is (ui/_api.py): the scope holds the caller's
            # readable and the deleted experiments, so callers who may read different
            # runs never share an answer; the answer is computed from that same scope
            # (worked out again, a grant in between would be in the answer, not the key).
            scope = core.scope(body.experiment_ids, body.view_type)
            if not keepable(scope):
                return answer(scope)
            key = ("search", core.store.db, scope, body.filter, tuple(body.order_by),
                   body.max_results, body.page_token)
            pinned = pinned_runs(body.filter)
            if pinned is not None and len(pinned) <= PINNED_CACHE_RUNS:
                # Only the named runs' rows can be in it (a run page's lookup), and those
                # of their ancestors if they are forks or resumed: kept while other runs
                # are written.
                seen = set(pinned)
                return kept_run_answer(core.store.client, key,
                                       lambda: (answer(scope, seen), seen))
            return kept_answer(core.store.client, key, lambda: (answer(scope), True))

        return Response(await asyncio.to_thread(work), media_type="application/json")

    @app.post("/api/v1/metrics/downsample")
    async def downsample(body: DownsampleBody) -> Response:
        check_px(body)
        keys = downsample_keys(body)

        def answer(seen: set[str] | None = None) -> bytes:
            if body.px is not None:
                series, counts = core.downsample_px(
                    body.run_ids[0], keys, body.run_keys or 0, body.px, body.step_min,
                    body.step_max, ends=body.ends, seen=seen)
            else:
                series = core.downsample_keys(body.run_ids, keys, body.buckets, body.step_min,
                                              body.step_max, ends=body.ends, seen=seen)
                counts = dict.fromkeys(keys, body.buckets or DEFAULT_BUCKETS)
            return bytes(JSONResponse({"series": [series_to_json(s) for s in series],
                                       "buckets": counts}).body)

        def work() -> bytes:
            if len(body.run_ids) > DOWNSAMPLE_CACHE_RUNS:
                return answer()
            # The policy has checked READ on every run before this handler: the answer
            # is every such caller's, and stays right until the next write to a run it
            # read, the listed ones or a fork's ancestors (kept only when this process
            # is the store's only writer: embedded).
            key = ("downsample", core.store.db, tuple(body.run_ids), tuple(keys),
                   body.run_keys, body.px, body.buckets, body.step_min, body.step_max,
                   body.ends)
            seen = set(body.run_ids)
            return kept_run_answer(core.store.client, key, lambda: (answer(seen), seen))

        return Response(await asyncio.to_thread(work), media_type="application/json")

    @app.post("/api/v1/runs/compare")
    async def compare(body: CompareBody) -> dict[str, Any]:
        t = await asyncio.to_thread(core.compare, body.run_ids, body.metric_keys,
                                    body.param_keys)
        return {"run_ids": t.run_ids,
                "metrics": {k: {"last": _f64(c["last"]), "min": _f64(c["min"]),
                                "max": _f64(c["max"]), "present": c["present"].tolist()}
                            for k, c in t.metrics.items()},
                "params": {k: {"values": v, "present": p.tolist()}
                           for k, (v, p) in t.params.items()}}

    @app.post("/api/v1/runs/group-by-param")
    async def group_by_param(body: GroupBody) -> dict[str, Any]:
        groups = await asyncio.to_thread(core.group_by_param, body.experiment_ids, body.filter,
                                         body.view_type, body.param_key, body.metric_key)
        return {"groups": [{"param_value": g.param_value, "run_count": g.run_count,
                            "finite_count": g.finite_count, "mean": _num(g.mean),
                            "std": _num(g.std), "min": _num(g.min), "max": _num(g.max)}
                           for g in groups]}


HEARTBEAT_S = 15.0
"""An idle tail stream sends `{"heartbeat": true}` this often (keeps proxies open,
and lets the server notice a client that went away)."""

_TAIL_DOC = """Live tail as a stream of JSON lines (`application/x-ndjson`).

Each line is one chunk of new committed points of one series:
`{"run_id", "key", "steps", "timestamps", "values"}` (values as in the other
routes: NaN/Inf as strings), or `{"heartbeat": true}` when idle. The stream
runs until the client closes it. With auth on, the credential is checked again
every few seconds; when it is refused (token revoked or expired, grant removed)
the last line is `{"error_code", "message"}` and the stream ends. Live tails are
bounded (docs/query.md): over a stream limit the request gets 429; a reader that
does not keep up is cut off with a last line `{"error_code": "RESOURCE_EXHAUSTED"}`.
Same semantics as gRPC `TailMetrics` (which ends with the error status).
"""


def tail_line(c: Any) -> str:
    """One NDJSON line for a TailChunk."""
    return json.dumps({"run_id": c.run_id, "key": c.key, "steps": c.steps.tolist(),
                       "timestamps": c.timestamps.tolist(), "values": _f64(c.values)},
                      separators=(",", ":")) + "\n"


def add_tail_route(app: Any, core: Any) -> None:
    """POST /api/v1/metrics/tail: the live tail over HTTP (streamed NDJSON)."""
    @app.post("/api/v1/metrics/tail", response_class=StreamingResponse, description=_TAIL_DOC,
              responses={200: {"content": {"application/x-ndjson": {}},
                               "description": "one JSON object per line"}})
    async def tail(body: TailBody, request: Request) -> StreamingResponse:
        # Admit and validate before the stream starts, so a refused request gets a JSON
        # error status (429 over a live-stream limit, 400 for a bad field).
        principal = getattr(request.state, "principal", None)
        stream = await core.open_tail(body.run_ids, body.keys, body.from_start,
                                      body.poll_interval_ms,
                                      (principal.user or None) if principal else None)

        # Set by the auth layer: the credential and grant are checked again while
        # the stream runs, and a refusal ends it (the status line was sent already).
        recheck = getattr(request.state, "recheck", None)

        async def lines() -> AsyncIterator[str]:
            quiet_since = time.monotonic()
            try:
                while not await request.is_disconnected():
                    if recheck is not None:
                        await recheck()
                    c = await stream.next_chunk(min(HEARTBEAT_S, 1.0))
                    now = time.monotonic()
                    if c is not None:
                        quiet_since = now
                        yield tail_line(c)
                    elif now - quiet_since >= HEARTBEAT_S:
                        quiet_since = now
                        yield '{"heartbeat":true}\n'
            except MetricflowError as e:  # refused on a recheck, cut off, or a failed poll
                yield json.dumps({"error_code": e.code.value, "message": e.message}) + "\n"
            finally:
                stream.close()

        return StreamingResponse(lines(), media_type="application/x-ndjson",
                                 headers={"cache-control": "no-cache"})


def create_app(core: Any, extra_routers: list[Any] | None = None,
               ready: Any = None, index: dict[str, Any] | None = None) -> Any:
    """Build the FastAPI app on one QueryCore (the same core the gRPC service uses).

    Args:
        index: facts `/` reports (role, grpc_port, ...); see `index_document`.
    """
    from fastapi import FastAPI  # server extra
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from metricflow.server._index import add_index_and_docs

    # The docs page is our own route (guarded like the others); FastAPI's is unguarded.
    app = FastAPI(title="metricflow", version="0.1.0", docs_url=None, redoc_url=None)
    add_index_and_docs(app, index if index is not None else {"role": "server"})

    @app.exception_handler(MetricflowError)
    async def _mf_error(request: Request, exc: MetricflowError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status,
                            content={"error_code": exc.code.value, "message": exc.message})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def readiness() -> Response:
        ok = ready() if ready is not None else True
        return JSONResponse(status_code=200 if ok else 503,
                            content={"ready": bool(ok)})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, Any]:
        return run_to_json(await asyncio.to_thread(core.get_run, run_id))

    @app.get("/api/v1/runs/{run_id}/metrics/{key:path}/history")
    async def history(run_id: str, key: str, max_results: int = 0,
                      page_token: str = "") -> dict[str, Any]:
        steps, ts, values, nxt = await asyncio.to_thread(
            core.history_page, run_id, key, max_results, page_token)
        return {"key": key, "steps": steps.tolist(), "timestamps": ts.tolist(),
                "values": [_num(v) for v in values.tolist()], "next_page_token": nxt or None}

    add_query_routes(app, core)
    add_tail_route(app, core)
    for router in extra_routers or []:
        app.include_router(router)
    return app
