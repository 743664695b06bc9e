"""The UI's pages in a real browser over one server with a small, known data set:
load, filter (valid and invalid), sort, open a run, charts with the server's buckets,
zoom, compare, artifact preview, models. (Deep scrolling: test_browser_scroll.py.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ui_support import Watched, base_url, start_server

pytestmark = pytest.mark.timeout(300)
N_RUNS = 24
LONG = 20_000  # points of the long series
SPIKE_STEP, SPIKE = 12_345, 1000.0


@dataclass
class Site:
    base: str
    exp: str
    runs: list[str]  # run ids by index i (run name r-i)
    long_run: str
    loss: dict[str, float] = field(default_factory=dict)  # last loss per run id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import metricflow as mf

    srv = start_server(str(tmp_path_factory.mktemp("mf-ui-pages")))
    try:
        c = mf.Client(f"grpc://{srv.target}", linger_ms=10)
        exp = c.get_or_create_experiment("pages")
        ids, loss = [], {}
        for i in range(N_RUNS):
            r = c.create_run(exp, run_name=f"r-{i:02d}", tags={"team": f"t{i % 3}"})
            c.log_params(r.run_id, {"lr": str(0.001 * (i + 1)), "layers": str(2 + i % 4)})
            for step in range(10):
                c.log_metrics(r.run_id, {"loss": (i + 1) / (step + 1), "acc": i / N_RUNS},
                              step=step)
            ids.append(r.run_id)
            loss[r.run_id] = (i + 1) / 10
        long = c.create_run(exp, run_name="long", parent_run_id=ids[0])
        for step in range(LONG):
            v = SPIKE if step == SPIKE_STEP else math.sin(step / 300.0)
            c.log_metrics(long.run_id, {"wave": v}, step=step)
        c.flush()
        for rid in ids:
            c.update_run(rid, status="FINISHED")
        art = Path(str(tmp_path_factory.mktemp("art")))
        (art / "config.yaml").write_text("lr: 0.01\nlayers: 4\n")
        (art / "metrics.json").write_text(json.dumps({"loss": 0.25, "acc": 0.9}))
        (art / "table.csv").write_text("a,b\n1,2\n3,4\n")
        (art / "readme.txt").write_text("hello from the artifact\n")
        for f in art.iterdir():
            c.artifacts.log_artifact(ids[0], f, "outputs")
        reg = c.registry
        reg.create_registered_model("pages-model", description="a model of the pages test")
        reg.create_model_version("pages-model", f"runs:/{ids[0]}/outputs", run_id=ids[0])
        reg.set_registered_model_alias("pages-model", "champion", 1)
        c.close()
        yield Site(base_url(srv), exp, ids, long.run_id, loss)
    finally:
        srv.stop()


def _rows(page: Any) -> list[str]:
    return page.get_by_test_id("run-row").all_inner_texts()


def test_load_experiments_then_runs(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + "/")
    page.get_by_test_id("exp-row").filter(has_text="pages").first.wait_for()
    page.get_by_test_id("exp-row").filter(has_text="pages").first.get_by_role("link").first \
        .click()
    page.get_by_test_id("run-row").first.wait_for()
    assert f"#/experiments/{site.exp}" in page.url
    assert page.get_by_test_id("runs-total").inner_text().replace(",", "").find(
        str(N_RUNS)) >= 0
    watched.assert_clean()


def test_filter_valid_and_invalid(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}")
    page.get_by_test_id("run-row").first.wait_for()
    box = page.get_by_test_id("filter-input")
    box.fill("metrics.loss < 0.5 AND tags.team = 't0'")
    box.press("Enter")
    want = sorted(f"r-{i:02d}" for i in range(N_RUNS) if (i + 1) / 10 < 0.5 and i % 3 == 0)
    # n rows, each showing its run (a column change landing meanwhile shows placeholders)
    page.wait_for_function("n => { const r = document.querySelectorAll('[data-testid=run-row]');"
                           " return r.length == n"
                           " && [...r].every(x => x.innerText.includes('r-')); }", arg=len(want))
    got = sorted(n for n in (f"r-{i:02d}" for i in range(N_RUNS))
                 if any(n in r for r in _rows(page)))
    assert got == want
    assert "metrics.loss" in page.url  # the filter is in the URL (shareable)
    box.fill("metrics.loss << 1")
    box.press("Enter")
    err = page.get_by_test_id("filter-error")
    err.wait_for()
    assert err.inner_text().strip()  # the parser's message, shown next to the box
    watched.assert_clean()


def test_sort_by_a_metric_column(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}?cols=metrics.loss")
    page.get_by_test_id("run-row").first.wait_for()
    head = page.get_by_test_id("sort-header-metrics.loss")
    first = ("() => { const r = document.querySelector('[data-testid=run-row]');"
             " return r && r.innerText.includes(%r); }")
    head.click()  # descending: the largest loss first
    page.wait_for_function("() => location.hash.includes('sort=metrics.loss')")
    page.wait_for_function(first % f"r-{N_RUNS - 1}")
    head.click()  # ascending: the smallest first, and the direction is in the URL
    page.wait_for_function("() => location.hash.includes('dir=asc')")
    page.wait_for_function(first % "r-00")
    page.go_back()  # back restores the previous sort
    page.wait_for_function(first % f"r-{N_RUNS - 1}")
    watched.assert_clean()


def downsample_calls(page: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request body, answer) of each downsample the page makes from now on."""
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def on_response(resp: Any) -> None:
        if resp.url.endswith("/api/v1/metrics/downsample") and resp.ok:
            calls.append((resp.request.post_data_json, resp.json()))

    page.on("response", on_response)
    return calls


def test_run_page_charts_use_server_buckets_and_zoom(watched: Watched, site: Site) -> None:
    page = watched.page
    calls = downsample_calls(page)
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.long_run}")
    chart = page.locator("[data-testid=chart][data-metric=wave]")
    chart.wait_for()
    page.wait_for_function("() => document.querySelector("
                           "'[data-testid=chart][data-metric=wave]').dataset.buckets")
    drawn = int(chart.get_attribute("data-buckets") or 0)
    # (on this cold load boot.ts asked for the run's first charts: the answer says each
    # key's bucket count)
    req, resp = [c for c in calls if "wave" in c[1]["buckets"]][-1]
    asked = resp["buckets"]["wave"]
    width = chart.bounding_box()["width"]
    # One bucket per pixel (at most), from the server, and the chart drew all of them.
    assert 100 <= asked <= width, (asked, width)
    s = next(x for x in resp["series"] if x["key"] == "wave")
    assert drawn == len(s["bucket"]) == asked  # 20,000 points fill every bucket
    assert max(s["max"]) == SPIKE  # the single spike survives downsampling
    assert page.evaluate("window.__mf.lastDraw.some(d => d.metric === 'wave')")
    # over steps the chart needs no time anchors: the server skips the exact end points
    assert req.get("ends") is False and s["first_point"] is None
    # Drag-zoom: a narrower step range re-bucketed by the server, kept in the URL.
    n = len(calls)
    over = chart.locator(".u-over")
    bb = over.bounding_box()
    y = bb["y"] + bb["height"] / 2
    page.mouse.move(bb["x"] + bb["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(bb["x"] + bb["width"] * 0.5, y, steps=5)
    page.mouse.up()
    page.wait_for_function("() => location.hash.includes('z.wave')")
    page.wait_for_timeout(1000)
    zoomed = [c for c in calls[n:] if c[0].get("key") == "wave"]
    assert zoomed, "zooming fetched no new buckets"
    zreq = zoomed[-1][0]
    assert zreq.get("step_min", 0) > 0 and zreq.get("step_max", LONG) < LONG - 1
    watched.assert_clean()


def test_run_link_with_another_experiment_still_opens_the_run(watched: Watched,
                                                             site: Site) -> None:
    # the run page looks its run up within the URL's experiment first, then by id
    page = watched.page
    other = str(int(site.exp) + 1000) if site.exp.isdigit() else "0"
    page.goto(site.base + f"/#/experiments/{other}/runs/{site.runs[3]}")
    page.locator(".runpage").get_by_text("r-03").first.wait_for()
    page.locator("[data-testid=chart][data-metric=loss]").wait_for()
    watched.assert_clean()


def test_run_chart_over_wall_time_asks_for_its_time_anchors(watched: Watched,
                                                             site: Site) -> None:
    page = watched.page
    calls = downsample_calls(page)
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.long_run}")
    sel = "[data-testid=chart][data-metric=wave]"
    page.wait_for_function(f"() => document.querySelector({sel!r})?.dataset.buckets")
    n = len(calls)
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.long_run}?x=wall")
    page.wait_for_function(f"() => document.querySelector({sel!r})?.dataset.buckets")
    page.wait_for_function("n => window.__mf.lastDraw.filter(d => d.metric === 'wave').length"
                           " > n", arg=1)
    def wall_calls() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [c for c in calls[n:] if c[0].get("key") == "wave" and c[0].get("ends", True)]

    for _ in range(50):  # the page's events reach this side a little after the page shows them
        if wall_calls():
            break
        page.wait_for_timeout(100)
    assert wall_calls(), [c[0] for c in calls]
    s = wall_calls()[-1][1]["series"][0]
    assert s["first_point"]["step"] == 0 and s["last_point"]["step"] == LONG - 1
    # drawn from these buckets (the draw waited for buckets with anchors)
    page.wait_for_function(f"n => document.querySelector({sel!r}).dataset.buckets == n",
                           arg=str(len(s["bucket"])))
    watched.assert_clean()


def test_compare_runs(watched: Watched, site: Site) -> None:
    page = watched.page
    runs = ",".join(site.runs[:5])
    page.goto(site.base + f"/#/compare?runs={runs}&m=loss")
    chart = page.get_by_test_id("compare-chart")
    chart.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=compare-chart]')"
                           ".dataset.phase === 'full'")
    assert int(chart.get_attribute("data-buckets") or 0) > 0
    # The diff table (fetched after the chart) names every run.
    table = page.get_by_test_id("diff-table")
    for i in range(5):
        table.filter(has_text=f"r-{i:02d}").wait_for()
    watched.assert_clean()


def test_artifact_preview(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.runs[0]}?tab=artifacts")
    page.get_by_test_id("artifact-tree").wait_for()
    page.get_by_test_id("artifact-item").filter(has_text="outputs").first.click()
    for name, text in (("readme.txt", "hello from the artifact"), ("config.yaml", "layers"),
                       ("metrics.json", "0.25"), ("table.csv", "3")):
        page.get_by_test_id("artifact-item").filter(has_text=name).first.click()
        page.get_by_test_id("artifact-preview").filter(has_text=text).wait_for()
    watched.assert_clean()


def test_models_page(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + "/#/models")
    row = page.get_by_test_id("model-row").filter(has_text="pages-model")
    row.wait_for()
    page.goto(site.base + "/#/models/pages-model")
    page.get_by_test_id("model-name").wait_for()
    assert "champion" in page.get_by_test_id("aliases").inner_text()
    body = page.inner_text("body")
    assert site.runs[0][:8] in body or "r-00" in body  # the source run is linked
    watched.assert_clean()
