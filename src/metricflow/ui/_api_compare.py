"""Compare chart data for the web UI: one metric of up to 1,000 runs in one request.

POST /ui-api/v1/compare/series {run_ids, key, buckets, step_min?, step_max?} downsamples
the runs over one shared step range (`QueryCore.downsample`, so their buckets line up)
and answers a dense binary block instead of JSON: 1,000 runs x 200 buckets is 800,000
numbers, which JSON would spend seconds building and parsing.

Body (little endian): u32 header length, the header (UTF-8 JSON: run_ids in the order of
the blocks, buckets = the count asked for, columns = K, step_lo, step_hi), zero padding to
a multiple of 8, then float64 blocks of K values: the bucket numbers that hold a point of
any run (ascending; empty buckets are not sent, so 1,000 runs of 10 steps stay small),
x (the largest last step of any run in each of them), then per run last, avg, min, max.
NaN marks a bucket where the run has no point (and a NaN metric value, which a chart
cannot draw either). Runs without points in the range are left out of run_ids. Errors
are the usual JSON `{error_code, message}`.

Auth: READ on every listed run (the `runs(R)` rule of POST /api/v1/metrics/downsample),
checked after the counts and step range (`check_series`: 1..1,000 runs, 1..10,000 buckets,
steps within int64), so an oversized request costs no lookup.
"""

from __future__ import annotations

import asyncio
import json
import struct
from functools import partial
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from metricflow.auth.policy import R, Rule, runs
from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.query import check_step_bound

PREFIX = "/ui-api/v1"
MEDIA_TYPE = "application/octet-stream"
MAX_BUCKETS = 10_000


class SeriesBody(BaseModel):
    run_ids: list[str] = Field(description="1 to 1,000 runs")
    key: str
    buckets: int = Field(500, description="1..10,000 buckets over the shared step range")
    step_min: int | None = None
    step_max: int | None = None


def pack_overlay(series: list[Any], buckets: int) -> bytes:
    """The binary body for `series` (DownsampledSeries of one key, one shared range)."""
    n_runs = len(series)
    x = np.full(buckets, np.nan)
    blocks = np.full((n_runs, 4, buckets), np.nan)
    for i, s in enumerate(series):  # per run; the points stay in numpy columns
        b = np.asarray(s.bucket, dtype=np.int64)
        ok = (b >= 0) & (b < buckets)
        b = b[ok]
        for j, col in enumerate((s.last, s.avg, s.min, s.max)):
            blocks[i, j, b] = np.asarray(col, dtype=np.float64)[ok]
        np.fmax.at(x, b, np.asarray(s.step_last, dtype=np.float64)[ok])
    keep = np.flatnonzero(~np.isnan(x))  # buckets some run has a point in
    lo = series[0].step_lo if series else 0
    hi = series[0].step_hi if series else 0
    header = json.dumps({"run_ids": [s.run_id for s in series], "buckets": buckets,
                         "columns": len(keep), "step_lo": lo, "step_hi": hi},
                        separators=(",", ":")).encode()
    pad = (-(4 + len(header))) % 8
    return b"".join((struct.pack("<I", len(header)), header, b"\0" * pad,
                     keep.astype("<f8").tobytes(), x[keep].astype("<f8").tobytes(),
                     blocks[:, :, keep].astype("<f8").tobytes()))


def _error(e: MetricflowError) -> JSONResponse:
    body: dict[str, Any] = {"error_code": e.code.value, "message": e.message}
    for k in ("field", "limit", "received"):
        if k in e.details:
            body[k] = e.details[k]
    return JSONResponse(body, status_code=e.http_status)


MAX_RUNS = 1_000


def check_series(run_ids: Any, buckets: Any, step_min: Any, step_max: Any) -> None:
    """400 for counts and ranges out of bounds, before any run is looked up (the auth
    rule below runs this first: 100,000 ids must not cost 100,000 permission checks).
    Values of the wrong JSON type are left to the body's model (422)."""
    if isinstance(run_ids, list) and not 1 <= len(run_ids) <= MAX_RUNS:
        raise InvalidArgument(f"run_ids must list 1 to {MAX_RUNS} runs, got {len(run_ids)}",
                              field="run_ids", limit=MAX_RUNS, received=len(run_ids))
    if isinstance(buckets, int) and not isinstance(buckets, bool) \
            and not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidArgument(f"buckets must be in [1, {MAX_BUCKETS}], got {buckets}",
                              field="buckets", limit=MAX_BUCKETS, received=buckets)
    for name, v in (("step_min", step_min), ("step_max", step_max)):
        if isinstance(v, int) and not isinstance(v, bool):
            check_step_bound(name, v)


def _series_rule() -> Rule:
    inner = runs(R)

    def resolve(a: Any, r: Any) -> Any:
        check_series(r.param_list("run_ids"), r.param("buckets"), r.param("step_min"),
                     r.param("step_max"))
        return inner.resolve(a, r)
    return Rule(resolve)


def ui_router(core: Any) -> APIRouter:
    """/ui-api/v1/compare/* bound to `core` (with auth on, the caller-scoped core)."""
    r = APIRouter(prefix=PREFIX)

    @r.post("/compare/series", response_class=Response)
    async def compare_series(body: SeriesBody) -> Response:
        try:
            check_series(body.run_ids, body.buckets, body.step_min, body.step_max)
            series = await asyncio.to_thread(partial(
                core.downsample, body.run_ids, body.key, body.buckets, body.step_min,
                body.step_max, ends=False))  # the block carries no end points
            data = await asyncio.to_thread(pack_overlay, series, body.buckets)
        except MetricflowError as e:
            return _error(e)
        return Response(data, media_type=MEDIA_TYPE, headers={"cache-control": "no-store"})

    compare_series.mf_rule = _series_rule()  # type: ignore[attr-defined]
    return r
