"""The web UI's built files (ui/ -> `npm run build` -> static/), served with security headers.

index.html is served with `no-cache` (it names the current hashed bundles);
files under assets/ have content hashes in their names and are cached for a
year. JS, CSS and SVG are gzipped once per file and kept in memory when the
browser accepts gzip. A checkout whose UI was never built answers `/` with a
page that says how to build it.
"""

from __future__ import annotations

import gzip
import mimetypes
import threading
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Where `cd ui && npm ci && npm run build` writes (vite build.outDir)."""

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
"""No inline script or style element anywhere; charts set styles through the CSSOM."""

SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
"""Headers of every UI response (pages, assets, /ui-api)."""

IMMUTABLE = "public, max-age=31536000, immutable"
_GZIP_TYPES = ("text/javascript", "text/css", "image/svg+xml", "application/json")
_MEDIA = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".svg": "image/svg+xml", ".json": "application/json", ".map": "application/json",
          ".woff2": "font/woff2", ".png": "image/png", ".ico": "image/x-icon"}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>metricflow: web UI not built</title></head>
<body><h1>The metricflow web UI is not built</h1>
<p>This server serves the UI from <code>{where}</code>, which has no
<code>index.html</code>. Build it with Node.js and npm:</p>
<pre>make install
# or: cd ui &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>Then reload this page. The HTTP APIs work without it: <a href="/docs">/docs</a>.</p>
</body></html>
"""


def built(static_dir: Path = STATIC_DIR) -> bool:
    """Whether the UI's build output is present."""
    return (static_dir / "index.html").is_file()


def prefers_html(request: Request) -> bool:
    """The request's Accept header names text/html at least as high as JSON (a browser).

    `*/*` alone (curl, httpx, requests) is not a preference: API clients keep JSON.
    """
    html = json = 0.0
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, q)
        elif media == "application/json":
            json = max(json, q)
    return html > 0 and html >= json


def index_response(static_dir: Path = STATIC_DIR) -> Response:
    """index.html (never cached: it names the current bundles), or how to build it."""
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache"}
    try:
        body = (static_dir / "index.html").read_bytes()
    except FileNotFoundError:
        return HTMLResponse(NOT_BUILT.format(where=static_dir), status_code=503,
                            headers=headers)
    return HTMLResponse(body, headers=headers)


class Assets:
    """Files under static/assets, read once and kept (with a gzipped copy) in memory."""

    def __init__(self, static_dir: Path = STATIC_DIR) -> None:
        self.root = (static_dir / "assets").resolve()
        self._cache: dict[str, tuple[bytes, bytes | None, str]] = {}
        self._lock = threading.Lock()

    def _load(self, name: str) -> tuple[bytes, bytes | None, str] | None:
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None:
            return hit
        path = (self.root / name).resolve()
        # Only plain files inside assets/: no "..", no absolute names, no symlinks out.
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        body = path.read_bytes()
        media = _MEDIA.get(path.suffix) or mimetypes.guess_type(path.name)[0] \
            or "application/octet-stream"
        gz = gzip.compress(body, 6) if media in _GZIP_TYPES and len(body) > 1024 else None
        with self._lock:
            if len(self._cache) < 1000:
                self._cache[name] = (body, gz, media)
        return body, gz, media

    def response(self, name: str, request: Request) -> Response:
        got = self._load(name)
        if got is None:
            return JSONResponse(status_code=404, headers=SECURITY_HEADERS, content={
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"no UI asset {name!r} (rebuild the UI: cd ui && npm run build)"})
        body, gz, media = got
        headers = {**SECURITY_HEADERS, "cache-control": IMMUTABLE, "vary": "accept-encoding"}
        if gz is not None and "gzip" in request.headers.get("accept-encoding", ""):
            headers["content-encoding"] = "gzip"
            body = gz
        return Response(body, media_type=media, headers=headers)


def static_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    """GET /assets/{name}: the UI's hashed bundles (public: they hold no data)."""
    router = APIRouter()
    assets = Assets(static_dir)

    @router.get("/assets/{name:path}", include_in_schema=False, response_model=None)
    async def asset(name: str, request: Request) -> Response:
        return assets.response(name, request)

    asset.mf_public = True  # type: ignore[attr-defined]  # read by the auth layer
    return router
