"""Every RPC and every HTTP route refuses a caller without valid credentials.

Methods are enumerated from the compiled protos and routes from the served
app's OpenAPI schema, so a new RPC or route is covered without editing this.
"""

from __future__ import annotations

import re

import grpc
import httpx
import pytest
from rawgrpc import call_raw, grpc_methods

from metricflow.auth.policy import GRPC_RULES, HTTP_RULES

METHODS = grpc_methods()
BAD_CREDENTIALS = [None, "Bearer mft_0123456789abcdef_not-the-secret", "Bearer garbage",
                   "Basic bm9ib2R5Om5vcGFzc3dvcmQ=", "Token abc"]


def test_methods_were_found_and_all_have_a_rule() -> None:
    assert len(METHODS) >= 50
    missing = [m for m, *_ in METHODS if m not in GRPC_RULES]
    assert not missing, f"add these RPCs to auth/policy/_tables.py GRPC_RULES: {missing}"


@pytest.mark.parametrize("cred", BAD_CREDENTIALS, ids=lambda c: str(c)[:14])
def test_every_rpc_refuses_missing_or_bad_credentials(secured, channel, cred) -> None:
    md = (("authorization", cred),) if cred else ()
    got = {m: call_raw(channel, m, cs, ss, md) for m, cs, ss in METHODS}
    refused = {grpc.StatusCode.UNAUTHENTICATED}
    if cred and cred.startswith("Basic"):
        # Failed password attempts from one address are limited before argon2 runs: once
        # the burst is spent the refusal is RESOURCE_EXHAUSTED (a retry hint), not a check.
        refused.add(grpc.StatusCode.RESOURCE_EXHAUSTED)
    wrong = {m: c for m, c in got.items() if c not in refused}
    assert not wrong
    assert grpc.StatusCode.UNAUTHENTICATED in got.values()


def _routes(routes: list, prefix: str = "") -> list[tuple[str, object]]:
    """(full path, route) of every endpoint, through FastAPI's included routers."""
    out: list[tuple[str, object]] = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            out += _routes(inner.routes, prefix + r.include_context.prefix)
        else:
            out.append((prefix + getattr(r, "path", ""), r))
    return out


def test_every_route_has_a_rule_and_refuses_anonymous_callers(secured) -> None:
    from metricflow.auth._http import api_routes

    app = secured.srv.server.http_app
    routes = api_routes(app)
    assert len(routes) >= 40
    public = secured.srv.server.config.security.auth.public_routes
    assert public == {"/health", "/ready"}
    rules = {(m, re.sub(r"{(\w+):\w+}", r"{\1}", p)) for m, p in HTTP_RULES}
    # The guard's other rule source: a route's endpoint may carry its own rule (`mf_rule`,
    # as the alerts, governance and serving routers do) or be declared public (`mf_public`).
    rules |= {(m, re.sub(r"{(\w+):\w+}", r"{\1}", path)) for path, r in _routes(app.routes)
              for m in getattr(r, "methods", None) or ()
              if getattr(getattr(r, "endpoint", None), "mf_rule", None) is not None
              or getattr(getattr(r, "endpoint", None), "mf_public", False)}
    assert not [r for r in routes if r not in rules and r[1] not in public], \
        "add routes to auth/policy/_tables.py HTTP_RULES, or give the endpoint an mf_rule"
    for method, path in routes:
        if path in public:
            continue
        url = secured.http + path.replace("{run_id}", "0" * 32).replace("{key:path}", "k") \
            .replace("{key}", "k")
        for cred in BAD_CREDENTIALS[:3]:  # Basic (argon2, slow by design) is covered by gRPC
            headers = {"authorization": cred} if cred else {}
            r = httpx.request(method, url, headers=headers, json={}, timeout=30)
            assert r.status_code == 401, (method, path, cred, r.status_code, r.text)
            assert r.json()["error_code"] == "UNAUTHENTICATED"
    # The schema and the docs are not public either; only the probes are.
    assert httpx.get(secured.http + "/openapi.json").status_code == 401
    assert httpx.get(secured.http + "/docs").status_code == 401
    assert httpx.get(secured.http + "/").status_code == 401
    assert httpx.get(secured.http + "/health").status_code == 200


def test_failures_are_audited(secured) -> None:
    entries, _ = secured.store.engine and __import__(
        "metricflow.store.metadata", fromlist=["x"]).SqlMetadataStore.search_audit_log(
        secured.srv.server.metadata, action="auth_failure")
    assert entries and all(e.actor == "anonymous" for e in entries)
    reasons = {e.after["reason"] for e in entries}
    assert any("credentials required" in r for r in reasons)
    assert any("invalid API token" in r or "malformed" in r for r in reasons)
    assert not any("mft_" in str(e.after) for e in entries)  # no secrets in the log
