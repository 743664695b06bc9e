"""Stored XSS through artifacts: an uploaded HTML/SVG file opened from the server never
runs as script on its origin.

Every artifact download (MLflow's proxy /api/2.0/mlflow-artifacts/artifacts/...,
/get-artifact, logged-model files) carries `Content-Security-Policy: sandbox;
default-src 'none'` and `X-Content-Type-Options: nosniff`; active types (HTML, SVG,
XML, JavaScript, ... whatever type the uploader claimed) are sent as
application/octet-stream with `Content-Disposition: attachment`. The bytes are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ui_support import Watched, base_url, start_server

pytestmark = pytest.mark.timeout(300)

HTML = b"<html><body><script>fetch('/pwned-html')</script>hello</body></html>"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/pwned-svg")</script>'
       b'<rect width="10" height="10"/></svg>')
CSV = b"a,b\n1,2\n"


@dataclass
class Site:
    base: str
    exp: str
    run: str
    model: str


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return r.json() if r.content else {}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    srv = start_server(str(tmp_path_factory.mktemp("mf-art-xss")))
    try:
        base = base_url(srv)
        with httpx.Client(base_url=base, timeout=60) as h:
            exp = _ok(h.post("/api/2.0/mlflow/experiments/create",
                             json={"name": "xss-artifacts"}))["experiment_id"]
            run = _ok(h.post("/api/2.0/mlflow/runs/create",
                             json={"experiment_id": exp}))["run"]["info"]["run_id"]
            arts = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts"
            _ok(h.put(f"{arts}/evil.html", content=HTML, headers={"content-type": "text/html"}))
            _ok(h.put(f"{arts}/evil.svg", content=SVG))  # type from the extension
            # a harmless name with an active type claimed by the uploader
            _ok(h.put(f"{arts}/claims.txt", content=HTML,
                      headers={"content-type": "text/html"}))
            _ok(h.put(f"{arts}/table.csv", content=CSV, headers={"content-type": "text/csv"}))
            _ok(h.post("/api/2.0/mlflow/upload-artifact", params={"run_uuid": run,
                                                                 "path": "ui/evil2.html"},
                       content=HTML))
            model = _ok(h.post("/api/2.0/mlflow/logged-models",
                               json={"experiment_id": exp, "name": "m"}))["model"]["info"]
            mid = model["model_id"]
            _ok(h.put(f"/api/2.0/mlflow-artifacts/artifacts/{exp}/models/{mid}/artifacts/"
                      "card.html", content=HTML, headers={"content-type": "text/html"}))
        yield Site(base, exp, run, mid)
    finally:
        srv.stop()


def _urls(s: Site) -> dict[str, str]:
    arts = f"/api/2.0/mlflow-artifacts/artifacts/{s.exp}/{s.run}/artifacts"
    return {
        "proxy-html": f"{arts}/evil.html",
        "proxy-svg": f"{arts}/evil.svg",
        "proxy-claimed": f"{arts}/claims.txt",
        "ajax-html": f"/ajax-api/2.0/mlflow-artifacts/artifacts/{s.exp}/{s.run}/artifacts/"
                     "evil.html",
        "get-artifact-html": f"/get-artifact?run_uuid={s.run}&path=ui/evil2.html",
        "get-artifact-svg": f"/get-artifact?run_uuid={s.run}&path=evil.svg",
        "model-file": f"/api/2.0/mlflow/logged-models/{s.model}/artifacts/files"
                      "?artifact_file_path=card.html",
        "model-proxy": f"/api/2.0/mlflow-artifacts/artifacts/{s.exp}/models/{s.model}/"
                       "artifacts/card.html",
    }


def test_active_artifacts_are_opaque_downloads(site: Site) -> None:
    with httpx.Client(base_url=site.base, timeout=60) as h:
        for label, url in _urls(site).items():
            r = h.get(url)
            assert r.status_code == 200, (label, r.text)
            assert r.content in (HTML, SVG), label  # byte for byte
            assert r.headers["content-security-policy"] == "sandbox; default-src 'none'", label
            assert r.headers["x-content-type-options"] == "nosniff", label
            assert r.headers["content-type"] == "application/octet-stream", label
            assert r.headers["content-disposition"].startswith("attachment;"), label
        # safe types stay inline with their type (the UI previews them), still sandboxed
        r = h.get(f"/api/2.0/mlflow-artifacts/artifacts/{site.exp}/{site.run}/artifacts/"
                  "table.csv")
        assert r.content == CSV
        assert r.headers["content-type"].startswith("text/csv")
        assert "content-disposition" not in r.headers
        assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_opened_in_the_browser_nothing_runs(watched: Watched, site: Site) -> None:
    page = watched.page
    hits: list[str] = []
    page.on("request", lambda req: hits.append(req.url) if "/pwned" in req.url else None)
    for label, url in _urls(site).items():
        try:
            page.goto(site.base + url)
        except Exception as e:  # an attachment starts a download instead of a page
            assert "Download is starting" in str(e) or "net::ERR_ABORTED" in str(e), (label, e)
        page.wait_for_timeout(300)
        assert hits == [], f"{label}: the uploaded file ran script: {hits}"
