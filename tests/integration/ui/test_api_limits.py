"""/ui-api/v1 request sizes are bounded before any lookup (auth on, a non-admin caller):
experiment_ids of runs/window and keys at most 1,000; compare/series' run_ids 1..1,000,
buckets 1..10,000 and steps within int64 are 400s naming the field, the limit and the
count received, answered before the per-run permission checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from ui_support import ROOT_HEADERS, auth_server, create_experiment, grant

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    bob: dict[str, str]
    run: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    srv, base, store = auth_server(str(tmp_path_factory.mktemp("mf-ui-limits")))
    try:
        exp = create_experiment(base, ROOT_HEADERS, "e")
        grant(base, exp, "bob", "READ")
        r = httpx.post(base + "/api/2.0/mlflow/runs/create", headers=ROOT_HEADERS,
                       json={"experiment_id": exp})
        run = r.json()["run"]["info"]["run_id"]
        token = store.create_token("bob", scopes=("read",))[1]
        yield Site(base, {"authorization": f"Bearer {token}"}, run)
    finally:
        srv.stop()


def _bad(r: httpx.Response, field: str, limit: int, received: int | str) -> None:
    assert r.status_code == 400, r.text[:300]
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    # the handler's answer carries field and limit; the guard's names them in the message
    assert body.get("field", field) == field and body.get("limit", limit) == limit, body
    msg = body["message"]
    assert field in msg and str(received) in msg, body
    assert str(limit) in msg or (limit == 2**63 - 1 and "int64" in msg), body


def test_window_and_keys_cap_experiment_ids(site: Site) -> None:
    ids = [str(i) for i in range(1, 100_001)]
    t0 = time.monotonic()
    r = httpx.post(site.base + "/ui-api/v1/runs/window", headers=site.bob, timeout=120,
                   json={"experiment_ids": ids})
    took = time.monotonic() - t0
    _bad(r, "experiment_ids", 1000, 100_000)
    assert took < 10, f"100,000 ids took {took:.1f} s to refuse"
    r = httpx.post(site.base + "/ui-api/v1/runs/window", headers=site.bob, timeout=60,
                   json={"experiment_ids": ids[:1001]})
    _bad(r, "experiment_ids", 1000, 1001)
    r = httpx.get(site.base + "/ui-api/v1/keys", headers=site.bob, timeout=60,
                  params={"experiment_ids": ",".join(ids[:1001])})
    _bad(r, "experiment_ids", 1000, 1001)
    # at the limit it is answered (ids bob may not read just match nothing)
    r = httpx.post(site.base + "/ui-api/v1/runs/window", headers=site.bob, timeout=120,
                   json={"experiment_ids": ids[:1000]})
    assert r.status_code == 200, r.text[:300]


def test_compare_series_counts_before_permissions(site: Site) -> None:
    url = site.base + "/ui-api/v1/compare/series"
    many = [f"{i:032x}" for i in range(1, 1002)]  # none exists: a lookup would be a 404
    r = httpx.post(url, headers=site.bob, timeout=60, json={"run_ids": many, "key": "m"})
    _bad(r, "run_ids", 1000, 1001)
    r = httpx.post(url, headers=site.bob, timeout=60, json={"run_ids": [], "key": "m"})
    _bad(r, "run_ids", 1000, 0)
    r = httpx.post(url, headers=site.bob, timeout=60,
                   json={"run_ids": many[:3], "key": "m", "buckets": 10**6})
    _bad(r, "buckets", 10_000, 10**6)
    for name, v in (("step_min", 2**70), ("step_max", -(2**64))):
        r = httpx.post(url, headers=site.bob, timeout=60,
                       json={"run_ids": [site.run], "key": "m", name: v})
        _bad(r, name, 2**63 - 1, v)
    # valid counts on a readable run still pass the guard and are answered
    r = httpx.post(url, headers=site.bob, timeout=60, json={"run_ids": [site.run], "key": "m"})
    assert r.status_code == 200, r.text[:300]
