"""MLflow metric history routes: paged history and the sampled bulk-interval read.

Responses are assembled column-wise (`metric_points_json`), so a 100k-point
page never becomes 100k Python dicts.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from fastapi.responses import Response

from metricflow.errors import InvalidArgument
from metricflow.mlflow_compat._context import Compat, check_run
from metricflow.mlflow_compat._convert import metric_points_json
from metricflow.mlflow_compat._routing import Args, MlflowRoutes
from metricflow.mlflow_compat._rules import runs_param

MAX_RUNS_BULK = 100
MAX_RESULTS_PER_RUN = 2500
MAX_HISTORY_PAGE = 1_000_000


def sample_step_indices(total: int, max_results: int) -> np.ndarray:
    """At most `max_results` evenly spaced indices into `total` items, first and last kept."""
    if total <= 0:
        return np.empty(0, np.int64)
    if total <= max_results:
        return np.arange(total)
    if max_results == 1:
        return np.array([total - 1])
    return np.unique(np.round(np.linspace(0, total - 1, max_results)).astype(np.int64))


class MetricRoutes:
    """Handlers of /mlflow/metrics/*."""

    def __init__(self, c: Compat) -> None:
        self.c = c

    def _history(self, run_id: str, key: str, max_results: int, token: str) -> bytes:
        self.c.run_info(run_id)
        steps, ts, values, nxt = self.c.query.history_page(run_id, key, max_results, token)
        body = '{"metrics":[' + metric_points_json(key, steps, ts, values) + "]"
        if nxt:
            body += ',"next_page_token":"' + nxt + '"'
        return (body + "}").encode() if len(values) or nxt else b"{}"

    async def get_history(self, a: Args) -> Response:
        run_id = check_run(a.required("run_id", "run_uuid"))
        max_results = a.integer("max_results", 0) or 0
        if not 0 <= max_results <= MAX_HISTORY_PAGE:
            raise InvalidArgument(f"max_results must be between 1 and {MAX_HISTORY_PAGE}, "
                                  f"got {max_results}", field="max_results",
                                  limit=MAX_HISTORY_PAGE, received=max_results)
        body = await self.c.call(self._history, run_id, a.required("metric_key"), max_results,
                                 a.text("page_token"))
        return Response(body, media_type="application/json")

    def _bulk(self, run_ids: list[str], key: str, max_results: int,
              lo: int | None, hi: int | None) -> bytes:
        parts = []
        plan = self.c.store.read_plan(run_ids)
        for run_id in dict.fromkeys(run_ids):
            steps, ts, values = self.c.store.metric_history(run_id, key, plan=plan)
            if lo is not None and hi is not None:
                keep = (steps >= lo) & (steps <= hi)
                steps, ts, values = steps[keep], ts[keep], values[keep]
            uniq = np.unique(steps)
            chosen = uniq[sample_step_indices(len(uniq), max_results)]
            keep = np.isin(steps, chosen)
            # history is ordered by (step, timestamp, value) already
            steps, ts, values = steps[keep][:max_results], ts[keep][:max_results], \
                values[keep][:max_results]
            if len(values):
                parts.append(metric_points_json(key, steps, ts, values,
                                                np.full(len(values), run_id, dtype=object)))
        if not parts:
            return b"{}"
        return ('{"metrics":[' + ",".join(parts) + "]}").encode()

    async def get_history_bulk_interval(self, a: Args) -> Response:
        run_ids = [str(r) for r in a.items("run_ids")]
        if not run_ids:
            raise InvalidArgument("Missing value for required parameter 'run_ids'.",
                                  field="run_ids")
        if len(run_ids) > MAX_RUNS_BULK:
            raise InvalidArgument(f"GetMetricHistoryBulkInterval request must specify at most "
                                  f"{MAX_RUNS_BULK} run_ids. Received {len(run_ids)} run_ids.",
                                  field="run_ids", limit=MAX_RUNS_BULK, received=len(run_ids))
        max_results = a.integer("max_results", MAX_RESULTS_PER_RUN)
        assert max_results is not None
        if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
            raise InvalidArgument(f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}, "
                                  f"got {max_results}.", field="max_results",
                                  limit=MAX_RESULTS_PER_RUN, received=max_results)
        lo, hi = a.integer("start_step"), a.integer("end_step")
        if (lo is None) != (hi is None):
            raise InvalidArgument("If either start step or end step are specified, both must "
                                  "be specified.", field="start_step")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidArgument(f"end_step must be greater than start_step. Found "
                                  f"start_step={lo} and end_step={hi}.", field="end_step")
        key = a.required("metric_key")
        for r in run_ids:  # after the parameters, as MLflow validates them first
            check_run(r)
        body = await self.c.call(self._bulk, run_ids, key, max_results, lo, hi)
        return Response(body, media_type="application/json")


class BulkHistory:
    """GET /metrics/get-history-bulk: one metric's full history for up to 100 runs
    (MLflow's UI route), ordered by run id, then as `get-history`."""

    MAX_RUNS = 100
    MAX_RESULTS = 25_000

    def __init__(self, c: Compat) -> None:
        self.c = c

    def _read(self, run_ids: list[str], key: str, max_results: int) -> bytes:
        parts, left = [], max_results
        plan = self.c.store.read_plan([r for r in run_ids if re.fullmatch(r"[0-9a-f]{32}", r)])
        for run_id in sorted(set(run_ids)):
            if left <= 0 or not re.fullmatch(r"[0-9a-f]{32}", run_id):
                continue  # MLflow answers no points for an id that names no run
            steps, ts, values = self.c.store.metric_history(run_id, key, plan=plan)
            steps, ts, values = steps[:left], ts[:left], values[:left]
            left -= len(values)
            if len(values):
                parts.append(metric_points_json(key, steps, ts, values,
                                                np.full(len(values), run_id, dtype=object)))
        return ('{"metrics":[' + ",".join(parts) + "]}").encode()  # MLflow: [] if none

    async def handle(self, a: Args) -> Response:
        run_ids = [str(r) for r in a.items("run_id")]
        if not run_ids:
            raise InvalidArgument("GetMetricHistoryBulk request must specify at least one "
                                  "run_id.", field="run_id")
        if len(run_ids) > self.MAX_RUNS:
            raise InvalidArgument(f"GetMetricHistoryBulk request cannot specify more than "
                                  f"{self.MAX_RUNS} run_ids. Received {len(run_ids)} run_ids.",
                                  field="run_id", limit=self.MAX_RUNS, received=len(run_ids))
        key = a.text("metric_key")
        if not key:
            raise InvalidArgument("GetMetricHistoryBulk request must specify a metric_key.",
                                  field="metric_key")
        max_results = a.integer("max_results", self.MAX_RESULTS) or self.MAX_RESULTS
        if not 1 <= max_results <= self.MAX_RESULTS:
            raise InvalidArgument(f"max_results must be between 1 and {self.MAX_RESULTS}, "
                                  f"got {max_results}", field="max_results",
                                  limit=self.MAX_RESULTS,
                                  received=max_results)
        return Response(await self.c.call(self._read, run_ids, key, max_results),
                        media_type="application/json")


def add_routes(routes: MlflowRoutes, c: Compat) -> Any:
    h = MetricRoutes(c)
    routes.add("GET", "/metrics/get-history-bulk", BulkHistory(c).handle,
               rule=runs_param("run_id"))
    routes.add("GET", "/metrics/get-history", h.get_history)
    routes.add("GET", "/metrics/get-history-bulk-interval", h.get_history_bulk_interval)
    return h
