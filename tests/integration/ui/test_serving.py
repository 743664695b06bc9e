"""The web UI as served over HTTP with auth off: the page at `/` for browsers (JSON for
API clients), hashed assets, security headers (test_session.py: auth on).

Browser-driven tests are in the test_browser_*.py modules; these need no browser.
"""

from __future__ import annotations

import re

import httpx
import pytest

from metricflow.ui import STATIC_DIR

pytestmark = pytest.mark.timeout(300)
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _assets() -> list[str]:
    html = (STATIC_DIR / "index.html").read_text()
    return re.findall(r'(?:src|href)="\.?/?(assets/[^"]+)"', html)


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    assert (STATIC_DIR / "index.html").is_file(), (
        f"the UI is not built in {STATIC_DIR}: run `make install` (cd ui && npm ci && "
        "npm run build)")


def test_browser_gets_the_page_api_clients_get_json(embedded_server) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{embedded_server.server.http_port}"
    page = httpx.get(base + "/", headers=BROWSER)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    # No inline script in the page (CSP would block it anyway).
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)
    # API clients (Accept */* or JSON) keep the JSON listing.
    doc = httpx.get(base + "/").json()
    assert doc["service"] == "metricflow" and doc["ui"].startswith("web UI")
    assert httpx.get(base + "/", headers={"accept": "application/json"}).json() == doc


def test_assets_are_cached_long_and_gzipped(embedded_server) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{embedded_server.server.http_port}"
    names = _assets()
    assert any(n.endswith(".js") for n in names), names
    for name in names:
        raw = httpx.get(f"{base}/{name}", headers={"accept-encoding": "identity"})
        assert raw.status_code == 200, name
        assert raw.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "content-encoding" not in raw.headers
        gz = httpx.get(f"{base}/{name}", headers={"accept-encoding": "gzip"})
        assert gz.content == raw.content  # httpx decodes the gzip
        if len(raw.content) > 1024:
            assert gz.headers["content-encoding"] == "gzip"
    for bad in ("assets/../index.html", "assets/%2e%2e/index.html", "assets/nope.js",
                "assets/..%2f..%2f__init__.py"):
        r = httpx.get(f"{base}/{bad}")
        assert r.status_code == 404, bad
        assert "<html" not in r.text


def test_not_built_page_says_how_to_build(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from metricflow.ui import index_response

    r = index_response(tmp_path)
    assert r.status_code == 503
    body = bytes(r.body).decode()
    assert "npm ci &amp;&amp; npm run build" in body and "make install" in body
    assert "<script" not in body
