"""The gRPC QueryService over QueryCore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np

from metricflow import _grpc_errors as ge
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow._proto.metricflow.query.v1 import query_pb2_grpc as qgrpc
from metricflow._validation import check_run_id
from metricflow.auth import current_user
from metricflow.entities.pb import run_to_pb
from metricflow.errors import MetricflowError
from metricflow.query._core import (  # noqa: F401 - re-exported for the server wiring
    DEFAULT_HISTORY_PAGE,
    MAX_HISTORY_PAGE,
    MAX_SEARCH_PAGE,
    QueryCore,
    decode_token,
    encode_token,
)
from metricflow.query._history import DownsampledSeries


def _b(a: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(a, dtype).tobytes()


def series_to_pb(s: DownsampledSeries, out: qpb.DownsampledSeries) -> None:
    out.run_id, out.key, out.step_lo, out.step_hi = s.run_id, s.key, s.step_lo, s.step_hi
    for name in ("bucket", "count", "step_first", "step_last", "nan_count", "inf_count"):
        setattr(out, name, _b(getattr(s, name), "<i8"))
    for name in ("min", "max", "avg", "last"):
        setattr(out, name, _b(getattr(s, name), "<f8"))
    if s.first_point is not None:
        out.first_point.step, out.first_point.timestamp, out.first_point.value = s.first_point
    if s.last_point is not None:
        out.last_point.step, out.last_point.timestamp, out.last_point.value = s.last_point


class QueryServicer(qgrpc.QueryServiceServicer):
    """gRPC front end; authorization (issue 7) passes readable experiments to the core."""

    def __init__(self, core: QueryCore) -> None:
        self.core = core

    def readable_experiments(self, context: Any) -> frozenset[str] | None:
        """Authorization hook: the experiments the caller may read (None = all)."""
        return None

    @ge.handles_errors
    async def GetRun(self, request: qpb.GetRunRequest, context: grpc.aio.ServicerContext):
        run = await asyncio.to_thread(self.core.get_run, request.run_id)
        return run_to_pb(run)

    @ge.handles_errors
    async def SearchRuns(self, request: qpb.SearchRunsRequest, context):
        runs, nxt = await asyncio.to_thread(
            self.core.search_runs, list(request.experiment_ids), request.filter,
            list(request.order_by), request.max_results, request.page_token, request.view_type,
            self.readable_experiments(context))
        resp = qpb.SearchRunsResponse(next_page_token=nxt)
        for r in runs:
            run_to_pb(r, resp.runs.add())
        return resp

    @ge.handles_errors
    async def GetMetricHistory(self, request: qpb.GetMetricHistoryRequest, context):
        steps, ts, values, nxt = await asyncio.to_thread(
            self.core.history_page, request.run_id, request.key, request.max_results,
            request.page_token)
        return qpb.MetricHistory(key=request.key, steps=_b(steps, "<i8"),
                                 timestamps=_b(ts, "<i8"), values=_b(values, "<f8"),
                                 next_page_token=nxt)

    @ge.handles_errors
    async def CountPoints(self, request: qpb.CountPointsRequest, context):
        ids = list(request.run_ids)
        for r in ids:
            check_run_id(r)
        count, total = await asyncio.to_thread(self.core.store.count_points, ids or None)
        return qpb.CountPointsResponse(count=count, sum_finite_values=total)

    @ge.handles_errors
    async def DownsampleHistory(self, request: qpb.DownsampleRequest, context):
        series = await asyncio.to_thread(
            self.core.downsample, list(request.run_ids), request.key, request.buckets,
            request.step_min if request.HasField("step_min") else None,
            request.step_max if request.HasField("step_max") else None)
        resp = qpb.DownsampleResponse()
        for s in series:
            series_to_pb(s, resp.series.add())
        return resp

    @ge.handles_errors
    async def CompareRuns(self, request: qpb.CompareRunsRequest, context):
        t = await asyncio.to_thread(self.core.compare, list(request.run_ids),
                                    list(request.metric_keys), list(request.param_keys))
        resp = qpb.CompareRunsResponse(run_ids=t.run_ids)
        for k, cols in t.metrics.items():
            resp.metrics.add(key=k, last=_b(cols["last"], "<f8"), min=_b(cols["min"], "<f8"),
                             max=_b(cols["max"], "<f8"), present=_b(cols["present"], "u1"))
        for k, (vals, present) in t.params.items():
            resp.params.add(key=k, values=vals, present=_b(present, "u1"))
        return resp

    @ge.handles_errors
    async def GroupByParam(self, request: qpb.GroupByParamRequest, context):
        groups = await asyncio.to_thread(
            self.core.group_by_param, list(request.experiment_ids), request.filter,
            request.view_type, request.param_key, request.metric_key,
            self.readable_experiments(context))
        resp = qpb.GroupByParamResponse()
        for g in groups:
            resp.groups.add(param_value=g.param_value, run_count=g.run_count,
                            finite_count=g.finite_count, mean=g.mean, std=g.std,
                            min=g.min, max=g.max)
        return resp

    async def TailMetrics(self, request: qpb.TailMetricsRequest, context
                          ) -> AsyncIterator[qpb.TailMetricsResponse]:
        try:
            stream = await self.core.open_tail(list(request.run_ids), list(request.keys),
                                               request.from_start, request.poll_interval_ms,
                                               current_user())
        except MetricflowError as e:
            await ge.abort(context, e)
            return
        try:
            while True:
                try:
                    c = await stream.next_chunk(_IDLE_WAIT_S)
                except MetricflowError as e:  # cut off (slow reader) or a failed poll
                    await ge.abort(context, e)
                    return
                if c is not None:
                    yield qpb.TailMetricsResponse(run_id=c.run_id, key=c.key,
                                                  steps=_b(c.steps, "<i8"),
                                                  timestamps=_b(c.timestamps, "<i8"),
                                                  values=_b(c.values, "<f8"))
        finally:
            stream.close()  # the client went away, or the stream ended: free its slot


_IDLE_WAIT_S = 15.0
"""How long a tail handler waits for a chunk before looking again (no message is sent)."""


def add_to_server(server: grpc.aio.Server, core: QueryCore) -> None:
    qgrpc.add_QueryServiceServicer_to_server(QueryServicer(core), server)
