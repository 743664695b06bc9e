"""Read calls of the Client (query API): runs, search, metric history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import grpc
import numpy as np

from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow._validation import check_run_id
from metricflow.client._types import (
    DownsampledSeries,
    MetricHistory,
    Run,
    run_from_pb,
    series_from_pb,
)
from metricflow.client._types import series_columns as series_columns  # the old import path


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
        """One page of runs and the token of the next page ('' at the end).

        experiment_ids None/empty searches every experiment the caller may read.
        Filter grammar and order_by: docs/query.md.
        """
        req = qpb.SearchRunsRequest(experiment_ids=[str(e) for e in experiment_ids or []],
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

    def search_runs_df(self, experiment_ids: list[str] | None = None, filter_string: str = "",
                       order_by: list[str] | None = None, max_results: int = 1000,
                       view_type: str = "active") -> Any:
        """All matching runs (up to max_results) as a pandas DataFrame (needs pandas)."""
        runs: list[Run] = []
        token = ""
        while len(runs) < max_results:
            page, token = self.search_runs(experiment_ids, filter_string, order_by,
                                           min(1000, max_results - len(runs)), token, view_type)
            runs.extend(page)
            if not token:
                break
        return runs_to_dataframe(runs)

    def downsample_history(self, run_ids: list[str], key: str, buckets: int = 1000,
                           step_min: int | None = None, step_max: int | None = None
                           ) -> list[DownsampledSeries]:
        """One metric of up to 1,000 runs in `buckets` step buckets, as numpy columns.

        Returns:
            One `DownsampledSeries` per run that has points in range: `s.min`,
            `s.max`, `s.avg`, `s.last`, `s.count`, ... are arrays with one entry
            per non-empty bucket (`len(s)` of them); `series_columns(s)` gives
            them as a dict.
        """
        req = qpb.DownsampleRequest(run_ids=run_ids, key=key, buckets=buckets)
        if step_min is not None:
            req.step_min = step_min
        if step_max is not None:
            req.step_max = step_max
        resp = self._call("/metricflow.query.v1.QueryService/DownsampleHistory", req,
                          qpb.DownsampleResponse)
        return [series_from_pb(m) for m in resp.series]

    def compare_runs(self, run_ids: list[str], metric_keys: list[str] | None = None,
                     param_keys: list[str] | None = None) -> qpb.CompareRunsResponse:
        """Latest/min/max of metrics and param values of up to 1,000 runs."""
        return self._call("/metricflow.query.v1.QueryService/CompareRuns",
                          qpb.CompareRunsRequest(run_ids=run_ids, metric_keys=metric_keys or [],
                                                 param_keys=param_keys or []),
                          qpb.CompareRunsResponse)

    def group_by_param(self, param_key: str, metric_key: str,
                       experiment_ids: list[str] | None = None, filter_string: str = "",
                       view_type: str = "active") -> list[qpb.ParamGroup]:
        """Mean/std/min/max of a metric's latest value per value of a param."""
        resp = self._call("/metricflow.query.v1.QueryService/GroupByParam",
                          qpb.GroupByParamRequest(experiment_ids=experiment_ids or [],
                                                  filter=filter_string, view_type=view_type,
                                                  param_key=param_key, metric_key=metric_key),
                          qpb.GroupByParamResponse)
        return list(resp.groups)

    def tail_metrics(self, run_ids: list[str], keys: list[str] | None = None,
                     from_start: bool = False, poll_interval_ms: int = 0,
                     timeout: float | None = None) -> Iterator[TailPoints]:
        """Yield new points of the runs/keys as they are committed (a server stream).

        Args:
            timeout: seconds after which the stream ends: the iteration stops, no
                error (None = until the server ends it or the caller stops iterating).
        Raises:
            grpc.RpcError: the server ended the stream with an error (for example
                RESOURCE_EXHAUSTED when a live-stream limit is reached).
        """
        channel = self._channel  # type: ignore[attr-defined]
        fn = channel.unary_stream("/metricflow.query.v1.QueryService/TailMetrics",
                                  request_serializer=qpb.TailMetricsRequest.SerializeToString,
                                  response_deserializer=qpb.TailMetricsResponse.FromString)
        stream = fn(qpb.TailMetricsRequest(run_ids=run_ids, keys=keys or [],
                                           from_start=from_start,
                                           poll_interval_ms=poll_interval_ms),
                    timeout=timeout, metadata=self._metadata or None)  # type: ignore[attr-defined]
        try:
            for m in stream:
                yield TailPoints(m.run_id, MetricHistory(
                    m.key, np.frombuffer(m.steps, "<i8"), np.frombuffer(m.timestamps, "<i8"),
                    np.frombuffer(m.values, "<f8")))
        except grpc.RpcError as e:
            # The caller's own deadline is the end of the tail it asked for, not a failure.
            if timeout is not None and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return
            raise
        finally:
            stream.cancel()  # a caller that stops early frees its server-side stream


class TailPoints(NamedTuple):
    run_id: str
    points: MetricHistory


def runs_to_dataframe(runs: list[Run]) -> Any:
    """One row per run: info columns, metrics.<key> (latest), params.<key>, tags.<key>."""
    try:
        import pandas as pd  # optional dependency
    except ImportError as e:
        raise ImportError("search_runs_df needs pandas: pip install pandas") from e
    rows = []
    for r in runs:
        row: dict[str, Any] = dict(vars(r.info))
        row.update({f"metrics.{k}": m.last_value for k, m in r.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.params.items()})
        row.update({f"tags.{k}": v for k, v in r.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)
