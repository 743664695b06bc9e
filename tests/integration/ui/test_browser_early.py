"""Early requests (ui/src/boot.ts): on a cold load of an experiment's runs table or a run
page in their default state, the page uses the answers boot.ts started for it, so it
asks the server once, not twice. If a page's first requests change and boot.ts is not
changed with them, these tests fail (the early answers would go unused)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ui_support import Watched, base_url, start_server

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    exp: str
    run: str


def _load(store_client: Any) -> tuple[str, str]:
    exp = store_client.get_or_create_experiment("early-requests")
    rid = store_client.create_run(exp, run_name="early-run").run_id
    for step in range(20):
        store_client.log_metrics(rid, {"loss": 1.0 / (step + 1)}, step=step)
    store_client.flush()
    return exp, rid


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import metricflow as mf

    srv = start_server(str(tmp_path_factory.mktemp("mf-ui-early")))
    try:
        c = mf.Client(f"grpc://{srv.target}", linger_ms=10)
        exp, rid = _load(c)
        c.close()
        yield Site(base_url(srv), exp, rid)
    finally:
        srv.stop()


def _requests(page: Any) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    page.on("request", lambda r: seen.append((r.method, r.url.split("/", 3)[3],
                                              r.post_data or "")) if "api/" in r.url else None)
    return seen


def _taken(page: Any) -> list[str]:
    return list(page.evaluate("window.__mf.earlyTaken || []"))


def test_runs_table_uses_the_early_answers(watched: Watched, site: Site) -> None:
    page = watched.page
    seen = _requests(page)
    page.goto(site.base + f"/#/experiments/{site.exp}")
    page.get_by_test_id("run-row").filter(has_text="early-run").wait_for()
    taken = _taken(page)
    assert any(k.startswith("POST /ui-api/v1/runs/window ") for k in taken), taken
    assert f"GET /api/v1/experiments/get?experiment_id={site.exp} " in taken, taken
    assert f"GET /ui-api/v1/keys?experiment_ids={site.exp} " in taken, taken
    # each of them went to the server once (boot.ts's request; the page asked no copy)
    first = [s for s in seen if s[1] == "ui-api/v1/runs/window"
             and json.loads(s[2])["order_by"] == "attributes.start_time DESC"
             and json.loads(s[2])["columns"] == []]
    assert len(first) == 1, seen
    assert sum(1 for s in seen if s[1].startswith("ui-api/v1/keys")) == 1, seen
    watched.assert_clean()


def test_the_early_requests_do_not_wait_for_the_stylesheet(watched: Watched, site: Site) -> None:
    # boot.ts is a classic script ahead of the stylesheet: its requests leave as soon as it
    # has run. (As a module script it ran only once the stylesheet was in, as every module
    # script does; here the stylesheet is held back until the rows' answer has arrived.)
    page = watched.page
    held: list[Any] = []
    page.route("**/assets/*.css", lambda route: held.append(route))
    page.goto(site.base + f"/#/experiments/{site.exp}", wait_until="commit")
    # (polled by time: there are no animation frames before a first paint)
    page.wait_for_function("() => performance.getEntriesByType('resource').some(e =>"
                           " e.name.endsWith('/ui-api/v1/runs/window') && e.responseEnd > 0)",
                           timeout=15_000, polling=50)
    assert len(held) == 1 and not page.evaluate(
        "[...document.styleSheets].some(s => s.href && s.href.endsWith('.css'))")
    held[0].continue_()
    page.get_by_test_id("run-row").filter(has_text="early-run").wait_for()
    assert any(k.startswith("POST /ui-api/v1/runs/window ") for k in _taken(page))
    watched.assert_clean()


def test_run_page_uses_the_early_answers(watched: Watched, site: Site) -> None:
    page = watched.page
    seen = _requests(page)
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.run}")
    page.locator("[data-testid=chart][data-metric=loss][data-buckets]").wait_for()
    taken = _taken(page)
    assert any(k.startswith("POST /api/v1/runs/search ") and site.run in k for k in taken), taken
    assert sum(1 for s in seen if s[1] == "api/v1/runs/search") == 1, seen
    # the chart's buckets too, asked for by boot.ts beside the run (the run's first keys,
    # sized for the chart's width by the server): the chart asked no copy
    assert "downsample loss" in taken, taken
    asks = [json.loads(s[2]) for s in seen if s[1] == "api/v1/metrics/downsample"]
    assert len(asks) == 1 and asks[0]["run_ids"] == [site.run] and asks[0]["run_keys"] >= 1, asks
    drawn = page.locator("[data-testid=chart][data-metric=loss]").get_attribute("data-buckets")
    assert drawn is not None and int(drawn) == 20, drawn  # one bucket per step of 20
    watched.assert_clean()


def test_a_view_with_a_query_asks_nothing_early(watched: Watched, site: Site) -> None:
    page = watched.page
    query = "?q=attributes.run_name%20%3D%20'early-run'"
    page.goto(site.base + f"/#/experiments/{site.exp}{query}")
    page.get_by_test_id("run-row").filter(has_text="early-run").wait_for()
    assert _taken(page) == []
    assert page.evaluate("Object.keys(window.__mfEarly || {}).length") == 0
    watched.assert_clean()


def _chart_library(page: Any) -> list[str]:
    """Requests for uPlot's chunk (ui/src/charts/uplot.ts), as the page's resource timing
    has them."""
    return list(page.evaluate("performance.getEntriesByType('resource').map(e => e.name)"
                              ".filter(n => /\\/assets\\/uPlot[^/]*\\.js$/.test(n))"))


def test_the_runs_table_shows_its_rows_without_the_chart_library(watched: Watched,
                                                                 site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}")
    page.get_by_test_id("run-row").filter(has_text="early-run").wait_for()
    assert _chart_library(page) == []
    # it is loaded once the page has settled, so a run opened next draws at once
    page.wait_for_function("() => performance.getEntriesByType('resource')"
                           ".some(e => /\\/assets\\/uPlot[^/]*\\.js$/.test(e.name))",
                           timeout=15_000)
    page.get_by_test_id("run-row").get_by_role("link", name="early-run").click()
    page.locator("[data-testid=chart][data-metric=loss][data-buckets]").wait_for()
    assert len(_chart_library(page)) == 1
    watched.assert_clean()


def test_a_run_page_fetches_the_chart_library_beside_the_bundle(watched: Watched,
                                                                site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.run}")
    page.locator("[data-testid=chart][data-metric=loss][data-buckets]").wait_for()
    assert len(_chart_library(page)) == 1
    # boot.ts preloads it (the link it adds), not the app after it has started
    assert page.evaluate("!!document.querySelector('link[rel=modulepreload][href*=uPlot]')")
    watched.assert_clean()


def test_a_chart_says_so_when_the_chart_library_does_not_load(watched: Watched,
                                                              site: Site) -> None:
    """A network error, or a tab older than the server's build (its chunk is gone): the
    chart shows why instead of staying blank."""
    page = watched.page
    page.route("**/assets/uPlot*.js", lambda route: route.abort())
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.run}")
    chart = page.locator("[data-testid=chart][data-metric=loss]")
    chart.get_by_role("alert").filter(has_text="The chart library did not load").wait_for()
    assert chart.get_attribute("data-buckets") is None
