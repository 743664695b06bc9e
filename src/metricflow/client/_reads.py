"""Read calls of the Client (query API): runs, search, metric history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow._validation import check_run_id
from metricflow.client._types import MetricHistory, Run, run_from_pb


class ReadsMixin:
    """Mixed into Client; uses its `_call(method, request, response_type)`."""

    _call: Any

    # ------------------------------------------------------------------ reads
    def get_run(self, run_id: str) -> Run:
        check_run_id(run_id)
        return run_from_pb(self._call("/metricflow.query.v1.QueryService/GetRun",
                                      qpb.GetRunRequest(run_id=run_id), qpb.Run))

    def get_metric_history(self, run_id: str, key: str,
                           page_size: int = 0) -> MetricHistory:
        """The whole history of one metric as numpy columns (paged under the hood)."""
        parts = list(self._history_pages(run_id, key, page_size))
        return MetricHistory(key, *(np.concatenate([p[i] for p in parts]) if parts
                                    else np.empty(0, dt) for i, dt in
                                    enumerate(("int64", "int64", "float64"))))

    def _history_pages(self, run_id: str, key: str,
                       page_size: int) -> Iterator[tuple[np.ndarray, ...]]:
        token = ""
        while True:
            resp = self._call("/metricflow.query.v1.QueryService/GetMetricHistory",
                              qpb.GetMetricHistoryRequest(run_id=run_id, key=key,
                                                          max_results=page_size,
                                                          page_token=token), qpb.MetricHistory)
            yield (np.frombuffer(resp.steps, "<i8"), np.frombuffer(resp.timestamps, "<i8"),
                   np.frombuffer(resp.values, "<f8"))
            token = resp.next_page_token
            if not token:
                return

    def search_runs(self, experiment_ids: list[str] | None = None, filter_string: str = "",
                    order_by: list[str] | None = None, max_results: int = 1000,
                    page_token: str = "", view_type: str = "active") -> tuple[list[Run], str]:
        """One page of runs and the token of the next page ('' at the end)."""
        req = qpb.SearchRunsRequest(experiment_ids=[str(e) for e in experiment_ids or ["0"]],
                                    filter=filter_string, order_by=order_by or [],
                                    max_results=max_results, page_token=page_token,
                                    view_type=view_type)
        resp = self._call("/metricflow.query.v1.QueryService/SearchRuns", req,
                          qpb.SearchRunsResponse)
        return [run_from_pb(r) for r in resp.runs], resp.next_page_token

    def count_points(self, run_ids: list[str] | None = None) -> tuple[int, float]:
        """Exact stored point count and sum of finite values (for loss checks)."""
        resp = self._call("/metricflow.query.v1.QueryService/CountPoints",
                          qpb.CountPointsRequest(run_ids=run_ids or []), qpb.CountPointsResponse)
        return int(resp.count), float(resp.sum_finite_values)
