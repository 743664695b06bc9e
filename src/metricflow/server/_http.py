"""HTTP/JSON front end (FastAPI): health, Prometheus /metrics and /api/v1 reads."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from metricflow.errors import MetricflowError


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


def create_app(core: Any, extra_routers: list[Any] | None = None,
               ready: Any = None) -> Any:
    """Build the FastAPI app on one QueryCore (the same core the gRPC service uses)."""
    from fastapi import FastAPI, Request  # noqa: PLC0415 - server extra
    from fastapi.responses import JSONResponse, Response  # noqa: PLC0415
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

    app = FastAPI(title="metricflow", version="0.1.0")

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

    for router in extra_routers or []:
        app.include_router(router)
    return app
