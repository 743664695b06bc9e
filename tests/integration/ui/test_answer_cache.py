"""The embedded server keeps runs-window, search and downsample answers until its
store's next write: a kept answer is served again, a write (a new run, a renamed or
deleted one, new points) shows at once, a kept window is never built on counts read
before a write, callers with different readable experiments never get each other's
answers, not even when a grant lands during a request, and only small answers are kept
(auth on, a real server)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ui_support import ROOT_HEADERS, auth_server, create_experiment, grant

from metricflow.auth._store import AuthStore

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    srv: Any
    admin: dict[str, str]
    bob: dict[str, str]  # READ on `mine` only
    mine: str
    secret: str
    secret_run: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    srv, base, store = auth_server(str(tmp_path_factory.mktemp("mf-answer-cache")))
    try:
        ids = [create_experiment(base, ROOT_HEADERS, name) for name in ("shared", "secret")]
        grant(base, ids[0], "bob", "READ")
        runs = [_create_run(base, ROOT_HEADERS, exp, f"{tag}-{i}")
                for exp, tag in ((ids[0], "open"), (ids[1], "secret")) for i in range(2)]
        token = store.create_token("bob", scopes=("read",))[1]
        yield Site(base, srv, ROOT_HEADERS, {"authorization": f"Bearer {token}"}, ids[0],
                   ids[1], runs[-1])
    finally:
        srv.stop()


def _create_run(base: str, headers: dict[str, str], exp: str, name: str) -> str:
    r = httpx.post(base + "/api/2.0/mlflow/runs/create", headers=headers,
                   json={"experiment_id": exp, "run_name": name})
    assert r.status_code == 200, r.text
    return str(r.json()["run"]["info"]["run_id"])


def _names(site: Site, headers: dict[str, str], exps: list[str]) -> list[str]:
    r = httpx.post(site.base + "/ui-api/v1/runs/window", headers=headers,
                   json={"experiment_ids": exps, "order_by": "attributes.run_name ASC"})
    assert r.status_code == 200, r.text
    return [row["run_name"] for row in r.json()["rows"]]


def _eventually(fn: Callable[[], Any], want: Any) -> Any:
    """The write path applies points after it acknowledges them (docs/ingest.md)."""
    deadline = time.monotonic() + 30
    while True:
        got = fn()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _kept(site: Site, family: str) -> int:
    pool = site.srv.server.store._pool
    return sum(int(a.size(family)[0]) for a in (getattr(pool, "answers", None),
                                                 getattr(pool, "run_answers", None)) if a)


def test_a_kept_window_is_served_until_a_write_changes_it(site: Site) -> None:
    assert _names(site, site.admin, [site.mine]) == ["open-0", "open-1"]
    kept = _kept(site, "ui_window")
    assert kept >= 1  # this process is the store's only writer: the answer is kept
    assert _names(site, site.admin, [site.mine]) == ["open-0", "open-1"]
    assert _kept(site, "ui_window") == kept  # served from what was kept
    new = _create_run(site.base, site.admin, site.mine, "open-2")
    assert _names(site, site.admin, [site.mine]) == ["open-0", "open-1", "open-2"]
    r = httpx.post(site.base + "/api/2.0/mlflow/runs/update", headers=site.admin,
                   json={"run_id": new, "run_name": "open-renamed"})
    assert r.status_code == 200, r.text
    assert _names(site, site.admin, [site.mine]) == ["open-0", "open-1", "open-renamed"]
    r = httpx.post(site.base + "/api/2.0/mlflow/runs/delete", headers=site.admin,
                   json={"run_id": new})
    assert r.status_code == 200, r.text
    assert _names(site, site.admin, [site.mine]) == ["open-0", "open-1"]


def test_callers_never_get_each_others_windows(site: Site) -> None:
    everything = ["open-0", "open-1", "secret-0", "secret-1"]
    # the same body: every experiment the caller may read
    assert _names(site, site.admin, []) == everything
    assert _names(site, site.bob, []) == ["open-0", "open-1"]
    assert _names(site, site.admin, []) == everything
    assert _names(site, site.bob, [site.secret]) == []


def test_a_kept_downsample_follows_new_points_and_the_runs_permission(site: Site) -> None:
    def log(steps: range) -> None:
        r = httpx.post(site.base + "/api/2.0/mlflow/runs/log-batch", headers=site.admin,
                       json={"run_id": site.secret_run, "metrics": [
                           {"key": "loss", "value": float(s), "timestamp": 1000 + s, "step": s}
                           for s in steps]})
        assert r.status_code == 200, r.text

    def points(headers: dict[str, str]) -> Any:
        r = httpx.post(site.base + "/api/v1/metrics/downsample", headers=headers,
                       json={"run_ids": [site.secret_run], "key": "loss", "px": 300,
                             "ends": False})
        if r.status_code != 200:
            return r.status_code
        series = r.json()["series"]
        return sum(series[0]["count"]) if series else 0

    log(range(10))
    assert _eventually(lambda: points(site.admin), 10) == 10
    assert _kept(site, "downsample") >= 1
    # bob may not read the run: the policy answers (as for a missing run) before anything
    # kept is looked at
    assert points(site.bob) == 404
    log(range(10, 20))
    assert _eventually(lambda: points(site.admin), 20) == 20


def test_a_run_pages_answers_stay_kept_while_other_runs_are_written(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chart's downsample and a search pinned to run ids read only those runs' rows:
    writes to other runs leave them kept; a write to the run computes them again."""
    from metricflow.query import QueryCore

    exp = create_experiment(site.base, ROOT_HEADERS, "pinned")
    run, other = (_create_run(site.base, ROOT_HEADERS, exp, n) for n in ("viewed", "busy"))

    def log(run_id: str, step: int) -> None:
        r = httpx.post(site.base + "/api/2.0/mlflow/runs/log-metric", headers=ROOT_HEADERS,
                       json={"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 1,
                             "step": step})
        assert r.status_code == 200, r.text

    def page() -> tuple[int, str]:
        r = httpx.post(site.base + "/api/v1/metrics/downsample", headers=ROOT_HEADERS,
                       json={"run_ids": [run], "run_keys": 4, "px": 300, "ends": False})
        assert r.status_code == 200, r.text
        s = httpx.post(site.base + "/api/v1/runs/search", headers=ROOT_HEADERS, json={
            "experiment_ids": [exp], "filter": f"attributes.run_id = '{run}'",
            "view_type": "all", "max_results": 1})
        assert s.status_code == 200, s.text
        series = r.json()["series"]
        return (int(sum(series[0]["count"])) if series else 0,
                s.json()["runs"][0]["info"]["run_name"])

    log(run, 0)
    assert _eventually(page, (1, "viewed")) == (1, "viewed")
    computed: list[str] = []
    for name in ("downsample_px", "search_runs"):
        orig = getattr(QueryCore, name)
        monkeypatch.setattr(QueryCore, name, lambda self, *a, _o=orig, _n=name, **k: (
            computed.append(_n), _o(self, *a, **k))[1])
    for step in range(3):  # another run logs, is renamed, gets a tag
        log(other, step)
    r = httpx.post(site.base + "/api/2.0/mlflow/runs/update", headers=ROOT_HEADERS,
                   json={"run_id": other, "run_name": "busy-2"})
    assert r.status_code == 200, r.text
    assert page() == (1, "viewed") and computed == []
    log(run, 1)
    assert _eventually(page, (2, "viewed")) == (2, "viewed")
    assert "downsample_px" in computed and "search_runs" in computed
    computed.clear()
    r = httpx.post(site.base + "/api/2.0/mlflow/runs/update", headers=ROOT_HEADERS,
                   json={"run_id": run, "run_name": "renamed"})
    assert r.status_code == 200, r.text
    assert page() == (2, "renamed") and computed == ["downsample_px", "search_runs"]


def test_a_kept_search_follows_writes_and_is_never_shared(site: Site) -> None:
    def names(headers: dict[str, str]) -> list[str]:
        r = httpx.post(site.base + "/api/v1/runs/search", headers=headers, json={
            "filter": f"attributes.run_id = '{site.secret_run}'", "view_type": "all",
            "max_results": 1})
        assert r.status_code == 200, r.text
        return [run["info"]["run_name"] for run in r.json()["runs"]]

    assert names(site.admin) == ["secret-1"]
    assert _kept(site, "search") >= 1
    assert names(site.bob) == []  # the same body: bob may not read the run
    r = httpx.post(site.base + "/api/2.0/mlflow/runs/update", headers=site.admin,
                   json={"run_id": site.secret_run, "run_name": "secret-renamed"})
    assert r.status_code == 200, r.text
    assert names(site.admin) == ["secret-renamed"]
    assert names(site.bob) == []


def test_a_grant_during_a_search_is_not_kept_for_others(site: Site,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer is computed from the scope its key names: alice is granted the secret
    experiment while her search runs; bob, who may read what alice could before, asks the
    same and must not get the secret run."""
    from metricflow.query import ScopedQueryCore

    auth = AuthStore(site.srv.server.metadata.engine)
    auth.create_user("alice", password="alice-pass-1")
    grant(site.base, site.mine, "alice", "READ")
    alice = {"authorization": "Basic " + base64.b64encode(b"alice:alice-pass-1").decode()}
    body = {"filter": "attributes.run_name = 'secret-0'", "view_type": "all", "max_results": 5}
    search = ScopedQueryCore.search_runs
    granted: list[int] = []

    def grant_midway(self: Any, *a: Any, **k: Any) -> Any:
        if not granted:
            granted.append(1)
            grant(site.base, site.secret, "alice", "READ")
        return search(self, *a, **k)

    monkeypatch.setattr(ScopedQueryCore, "search_runs", grant_midway)
    r = httpx.post(site.base + "/api/v1/runs/search", headers=alice, json=body)
    assert r.status_code == 200 and granted, r.text
    monkeypatch.setattr(ScopedQueryCore, "search_runs", search)
    r = httpx.post(site.base + "/api/v1/runs/search", headers=site.bob, json=body)
    assert r.status_code == 200 and r.json()["runs"] == [], r.text
    r = httpx.post(site.base + "/api/v1/runs/search", headers=alice, json=body)
    assert [x["info"]["run_name"] for x in r.json()["runs"]] == ["secret-0"]


def test_a_kept_window_is_not_built_on_counts_read_before_a_write(site: Site) -> None:
    """A window sorted by a metric counts the runs that have it (reused for a while);
    after a write that count must be read again, or the wrong window is kept."""
    exp = create_experiment(site.base, ROOT_HEADERS, "counted")
    ids = {n: _create_run(site.base, ROOT_HEADERS, exp, n) for n in ("a", "b", "c", "d")}

    def log(run: str, v: float) -> None:
        r = httpx.post(site.base + "/api/2.0/mlflow/runs/log-metric", headers=ROOT_HEADERS,
                       json={"run_id": ids[run], "key": "loss", "value": v, "timestamp": 1,
                             "step": 0})
        assert r.status_code == 200, r.text

    def shown() -> list[tuple[str, Any]]:
        r = httpx.post(site.base + "/ui-api/v1/runs/window", headers=ROOT_HEADERS, json={
            "experiment_ids": [exp], "order_by": "metrics.loss DESC", "offset": 2,
            "limit": 2, "columns": ["metrics.loss"]})
        assert r.status_code == 200, r.text
        return [(x["run_name"], x["metrics"].get("loss")) for x in r.json()["rows"]]

    log("a", 1.0)
    log("b", 2.0)
    # (the runs without a loss come last, in an order of their own)
    assert _eventually(lambda: sorted(shown()), [("c", None), ("d", None)]) == [
        ("c", None), ("d", None)]
    log("c", 0.5)  # c now sorts third: the count of runs with a loss changed
    assert _eventually(shown, [("c", 0.5), ("d", None)]) == [("c", 0.5), ("d", None)]


def test_only_small_answers_are_kept(site: Site) -> None:
    before = _kept(site, "search")
    for n in (0, 101):  # 0 asks for the default page of 1,000 runs
        r = httpx.post(site.base + "/api/v1/runs/search", headers=ROOT_HEADERS,
                       json={"max_results": n, "view_type": "all"})
        assert r.status_code == 200, r.text
    assert _kept(site, "search") == before
