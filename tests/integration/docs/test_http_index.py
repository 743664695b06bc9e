"""`/`, `/docs` and `/openapi.json` where the docs say, open on loopback with auth off
(test_http_index_auth.py: behind auth when it is on)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.timeout(300)


def test_index_says_what_is_served_where(embedded_server) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{embedded_server.server.http_port}"
    doc = httpx.get(base + "/").json()
    assert doc["role"] == "server"
    assert doc["grpc"]["port"] == embedded_server.server.grpc_port
    assert {k: v["path"] for k, v in doc["http"].items()} == {
        "mlflow_rest": "/api/2.0/mlflow", "mlflow_artifacts": "/api/2.0/mlflow-artifacts",
        "api_v1": "/api/v1", "docs": "/docs", "openapi": "/openapi.json",
        "metrics": "/metrics", "health": "/health", "ready": "/ready"}
    page = httpx.get(base + "/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    # The page loads its JS and CSS from this server, not a CDN (works offline).
    assert "cdn." not in page.text and "/docs/static/swagger-ui-bundle.js" in page.text
    js = httpx.get(base + "/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 100_000
    assert httpx.get(base + "/docs/static/swagger-ui.css").status_code == 200
    assert httpx.get(base + "/docs/static/..%2fLICENSE").status_code == 404
    assert httpx.get(base + "/docs/static/index.html").status_code == 404
    schema = httpx.get(base + "/openapi.json").json()
    assert "/api/v1/runs/search" in schema["paths"]
    assert "/api/v1/experiments/get" in schema["paths"]


def test_a_port_without_client_services_offers_no_tracking_uri() -> None:
    from metricflow.server._index import index_document

    writer = index_document(["/health"], {"role": "writer", "grpc_port": 1, "serves": [],
                                          "forwards": []})
    assert "tracking_uri" not in writer["grpc"] and writer["grpc"]["serves"] == []
    ingest = index_document(["/health"], {"role": "ingest", "grpc_port": 2,
                                          "serves": ["IngestService"], "forwards": []})
    assert "tracking_uri" in ingest["grpc"]
    assert "tracking_uri" in index_document([], {"role": "server", "grpc_port": 3})["grpc"]
