"""Pure pieces of the web UI's serving: which requests get the page, the asset cache,
the CSRF double-submit check, the not-built page."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from metricflow.auth import CSRF_COOKIE, SESSION_COOKIE, check_csrf, csrf_of
from metricflow.errors import PermissionDenied
from metricflow.ui import CSP, index_response, prefers_html
from metricflow.ui._static import Assets


def _req(accept: str = "", encoding: str = "") -> Request:
    headers = [(b"accept", accept.encode())] if accept else []
    if encoding:
        headers.append((b"accept-encoding", encoding.encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize(("accept", "html"), [
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Chromium
    ("text/html", True),
    ("*/*", False),  # curl, httpx, requests
    ("", False),
    ("application/json", False),
    ("application/json, text/html;q=0.5", False),
    ("text/html;q=0.9, application/json;q=0.9", True),
    ("text/html;q=0", False),
    ("text/html;q=bogus", False),
])
def test_only_browsers_get_the_page(accept: str, html: bool) -> None:
    assert prefers_html(_req(accept)) is html


def test_csp_has_no_inline_or_eval() -> None:
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    for directive in ("script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                      "object-src 'none'"):
        assert directive in CSP


def test_not_built_page(tmp_path: Path) -> None:
    r = index_response(tmp_path)
    assert r.status_code == 503 and b"npm run build" in bytes(r.body)
    (tmp_path / "index.html").write_text("<!doctype html><div id=app></div>")
    r = index_response(tmp_path)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert r.headers["content-security-policy"] == CSP


def test_assets_stay_inside_assets_dir(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app-1a2b.js").write_text("let x = 1;\n" * 500)
    (tmp_path / "secret.txt").write_text("no")
    a = Assets(tmp_path)
    r = a.response("app-1a2b.js", _req(encoding="gzip, br"))
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert a.response("app-1a2b.js", _req()).headers.get("content-encoding") is None
    for bad in ("../secret.txt", "/etc/passwd", "nope.js", ""):
        assert a.response(bad, _req()).status_code == 404, bad


def test_csrf_double_submit() -> None:
    session = "mft_abc_def"
    good = csrf_of(session)
    cookies = {SESSION_COOKIE: session, CSRF_COOKIE: good}
    check_csrf("GET", {}, cookies)  # safe methods need nothing
    check_csrf("POST", {"x-csrf-token": good}, cookies)
    check_csrf("POST", {}, {})  # no session cookie: not a cookie request
    with pytest.raises(PermissionDenied, match="header missing"):
        check_csrf("POST", {}, cookies)
    with pytest.raises(PermissionDenied, match="mismatch"):
        check_csrf("DELETE", {"x-csrf-token": csrf_of("mft_other_x")}, cookies)
    # The header must match the cookie the server set for this very session.
    forged = {SESSION_COOKIE: session, CSRF_COOKIE: "f" * 64}
    with pytest.raises(PermissionDenied):
        check_csrf("POST", {"x-csrf-token": "f" * 64}, forged)
    assert csrf_of(session) != csrf_of(session + "x") and session not in good
