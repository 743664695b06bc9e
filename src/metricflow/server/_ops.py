"""The ops-only HTTP app of roles that serve no query API: /, /health, /ready, /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI  # server extra
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metricflow.server._index import add_apis_elsewhere, add_index_and_docs

if TYPE_CHECKING:
    from metricflow.ingest import KafkaWriter


def ops_app(ready: Callable[[], bool], facts: dict[str, object], api: bool = False) -> FastAPI:
    """FastAPI app with /, /health, /ready and /metrics.

    `api`: the app will also serve an API (the registry's), so it gets `/docs`;
    otherwise `/api/...` answers 404 with where the HTTP APIs are served.
    """
    app = FastAPI(title="metricflow", docs_url=None, redoc_url=None)
    add_index_and_docs(app, facts, docs=api)

    @app.get("/health")
    async def health_() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", response_model=None)
    async def ready_() -> Response:
        ok = bool(ready())
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/metrics", response_model=None)
    async def metrics_() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if not api:
        add_apis_elsewhere(app, facts)
    return app


def add_writer_stats(app: FastAPI, writer: KafkaWriter) -> None:
    """GET /stats: the writer's counters and end-to-end lag quantiles (`reset` clears them)."""
    @app.get("/stats")
    async def stats_(reset: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "points_written": writer.points_written,
            "messages_written": writer.messages_written,
            "consumer_lag": writer.consumer_lag, "in_backoff": not writer.ready,
            "peak_pending_bytes": writer.peak_pending_bytes,
            "e2e_lag_s": writer.lags.quantiles()}
        if reset:
            writer.lags.reset()
        return out
