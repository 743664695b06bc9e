"""The gRPC QueryService over the MetricStore."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc

from metricflow import _grpc_errors as ge
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow._proto.metricflow.query.v1 import query_pb2_grpc as qgrpc
from metricflow._validation import check_key, check_run_id
from metricflow.errors import InvalidArgument
from metricflow.query._convert import run_to_pb
from metricflow.store._metric_store import MetricStore
from metricflow.store._types import Run

MAX_HISTORY_PAGE = 1_000_000
DEFAULT_HISTORY_PAGE = 100_000
MAX_SEARCH_PAGE = 50_000


def encode_token(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_token(token: str, field: str = "page_token") -> dict[str, Any]:
    try:
        obj = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(obj, dict):
            raise ValueError
        return obj
    except Exception:  # noqa: BLE001 - any garbage token is the caller's
        raise InvalidArgument(f"{field} is not a token this server issued",
                              field=field, received=token[:80]) from None


class QueryCore:
    """Read operations shared by the gRPC and HTTP front ends."""

    def __init__(self, store: MetricStore, metadata: Any) -> None:
        self.store, self.metadata = store, metadata

    def get_run(self, run_id: str) -> Run:
        check_run_id(run_id)
        return self.store.get_run(run_id)

    def history_page(self, run_id: str, key: str, max_results: int, page_token: str):
        check_run_id(run_id)
        check_key(key, "key")
        if not 0 <= max_results <= MAX_HISTORY_PAGE:
            raise InvalidArgument(f"max_results must be in [0, {MAX_HISTORY_PAGE}], "
                                  f"got {max_results}", field="max_results", received=max_results)
        limit = max_results or DEFAULT_HISTORY_PAGE
        after = None
        if page_token:
            tok = decode_token(page_token)
            after = (int(tok["s"]), int(tok["t"]))
        steps, ts, values = self.store.metric_history(run_id, key, limit=limit, after=after)
        nxt = ""
        if len(steps) >= limit:
            nxt = encode_token({"s": int(steps[-1]), "t": int(ts[-1])})
        return steps, ts, values, nxt

    def search_runs(self, experiment_ids: list[str], filter_string: str, order_by: list[str],
                    max_results: int, page_token: str, view_type: str) -> tuple[list[Run], str]:
        if filter_string or order_by:
            raise InvalidArgument("filter and order_by are not supported by this server yet",
                                  field="filter")
        if view_type not in ("", "active", "deleted", "all"):
            raise InvalidArgument(f"view_type must be active, deleted or all, got {view_type!r}",
                                  field="view_type", received=view_type)
        if not 0 <= max_results <= MAX_SEARCH_PAGE:
            raise InvalidArgument(f"max_results must be in [0, {MAX_SEARCH_PAGE}]",
                                  field="max_results", received=max_results)
        limit = max_results or 1000
        offset = int(decode_token(page_token)["o"]) if page_token else 0
        ids = self.store.list_run_ids(experiment_ids or ["0"], view_type or "active",
                                      limit=limit, offset=offset)
        infos = self.store.get_run_infos(ids)
        params, tags = self.store.get_params(ids), self.store.get_tags(ids)
        summaries = self.store.get_summaries(ids)
        runs = [Run(infos[r], params[r], tags[r], summaries[r]) for r in ids if r in infos]
        nxt = encode_token({"o": offset + limit}) if len(ids) == limit else ""
        return runs, nxt


class QueryServicer(qgrpc.QueryServiceServicer):
    def __init__(self, core: QueryCore) -> None:
        self.core = core

    @ge.handles_errors
    async def GetRun(self, request: qpb.GetRunRequest, context: grpc.aio.ServicerContext):
        run = await asyncio.to_thread(self.core.get_run, request.run_id)
        return run_to_pb(run)

    @ge.handles_errors
    async def SearchRuns(self, request: qpb.SearchRunsRequest, context):
        runs, nxt = await asyncio.to_thread(
            self.core.search_runs, list(request.experiment_ids), request.filter,
            list(request.order_by), request.max_results, request.page_token, request.view_type)
        resp = qpb.SearchRunsResponse(next_page_token=nxt)
        for r in runs:
            run_to_pb(r, resp.runs.add())
        return resp

    @ge.handles_errors
    async def GetMetricHistory(self, request: qpb.GetMetricHistoryRequest, context):
        steps, ts, values, nxt = await asyncio.to_thread(
            self.core.history_page, request.run_id, request.key, request.max_results,
            request.page_token)
        return qpb.MetricHistory(key=request.key, steps=steps.astype("<i8").tobytes(),
                                 timestamps=ts.astype("<i8").tobytes(),
                                 values=values.astype("<f8").tobytes(), next_page_token=nxt)

    @ge.handles_errors
    async def CountPoints(self, request: qpb.CountPointsRequest, context):
        ids = list(request.run_ids)
        for r in ids:
            check_run_id(r)
        count, total = await asyncio.to_thread(self.core.store.count_points, ids or None)
        return qpb.CountPointsResponse(count=count, sum_finite_values=total)


def add_to_server(server: grpc.aio.Server, core: QueryCore) -> None:
    qgrpc.add_QueryServiceServicer_to_server(QueryServicer(core), server)
