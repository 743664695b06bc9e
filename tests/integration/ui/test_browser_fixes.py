"""Small UI defects found in review, in a real browser: an invalid filter's header and
error box, the compare title's plural, the favicon, the run page's breadcrumb."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from ui_support import Watched, base_url, start_server

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    base: str
    exp: str
    runs: list[str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import metricflow as mf

    srv = start_server(str(tmp_path_factory.mktemp("mf-ui-fixes")))
    try:
        c = mf.Client(f"grpc://{srv.target}", linger_ms=10)
        exp = c.get_or_create_experiment("fixes-experiment")
        runs = []
        for i in range(3):
            rid = c.create_run(exp, run_name=f"f-{i}").run_id
            # constant params that sort before the one the sweep varies
            c.log_params(rid, {"lr": str(0.1 * (i + 1)), "a1": "x", "a2": "x", "a3": "x"})
            for step in range(5):
                c.log_metrics(rid, {"loss": 1.0 / (step + 1 + i)}, step=step)
                if i == 0:  # for the log-scale test
                    c.log_metrics(rid, {"neg": -1.0 - step,
                                        "mixed": (step + 1.0) * (-1) ** step}, step=step)
            if i == 0:
                c.log_metrics(rid, {"one": 3.0}, step=0)
            runs.append(rid)
        c.flush()
        for rid in runs:
            c.update_run(rid, status="FINISHED")
        c.close()
        yield Site(base_url(srv), exp, runs)
    finally:
        srv.stop()


def test_invalid_filter_header_and_error_box(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}")
    page.get_by_test_id("run-row").first.wait_for()
    box = page.get_by_test_id("filter-input")
    box.fill("metrics.loss << 1")
    box.press("Enter")
    page.get_by_test_id("filter-error").wait_for()
    total = page.get_by_test_id("runs-total")
    page.wait_for_timeout(500)
    assert "counting" not in total.inner_text()
    assert "invalid filter" in total.inner_text()
    # editing the text hides the old error until the new text is submitted
    box.press("End")
    box.type(" x")
    page.get_by_test_id("filter-error").wait_for(state="detached")
    watched.assert_clean()


def test_compare_title_counts_runs(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/compare?runs={site.runs[0]}&m=loss")
    page.get_by_text("Compare 1 run", exact=True).wait_for()
    page.goto(site.base + f"/#/compare?runs={','.join(site.runs[:2])}&m=loss")
    page.get_by_text("Compare 2 runs", exact=True).wait_for()


def test_favicon_and_breadcrumb(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.runs[0]}")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href, "no icon link"
    r = httpx.get(site.base + "/" + href.lstrip("./"), timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/")
    crumb = page.get_by_test_id("crumb-experiment")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=crumb-experiment]')?.textContent"
        " === 'fixes-experiment'")
    assert crumb.inner_text() == "fixes-experiment"
    watched.assert_clean()


def test_compare_skips_missing_and_deleted_runs(watched: Watched, site: Site) -> None:
    page = watched.page
    r = httpx.post(site.base + "/api/2.0/mlflow/runs/delete", json={"run_id": site.runs[2]},
                   timeout=30)
    assert r.status_code == 200, r.text
    ghost = "0" * 32
    ids = ",".join([site.runs[0], ghost, site.runs[1], site.runs[2]])
    page.goto(site.base + f"/#/compare?runs={ids}&m=loss")
    missing = page.get_by_test_id("compare-missing")
    missing.wait_for()
    assert ghost in missing.inner_text() and site.runs[2] in missing.inner_text()
    page.wait_for_function("() => document.querySelector('[data-testid=compare-chart]')"
                           "?.dataset.phase === 'full'")
    chart = page.get_by_test_id("compare-chart")
    assert chart.get_attribute("data-runs") == "2"
    page.get_by_test_id("diff-table").filter(has_text="f-1").wait_for()


def test_log_scale_counts_hidden_values(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.runs[0]}?log=1")
    for metric in ("neg", "mixed", "one", "loss"):
        page.locator(f"[data-testid=chart][data-metric={metric}][data-buckets]").wait_for()
    neg = page.locator("[data-testid=chart][data-metric=neg] [data-testid=log-hidden]")
    assert neg.inner_text() == "5 buckets ≤ 0 hidden"
    mixed = page.locator("[data-testid=chart][data-metric=mixed] [data-testid=log-hidden]")
    assert mixed.inner_text() == "2 buckets ≤ 0 hidden"
    assert page.locator("[data-testid=chart][data-metric=loss] [data-testid=log-hidden]") \
        .count() == 0
    assert page.locator("[data-testid=chart][data-metric=one] [data-testid=log-hidden]") \
        .count() == 0
    watched.assert_clean()


def test_a_metric_logged_once_shows_its_point(watched: Watched, site: Site) -> None:
    # one point draws no line segment: on a linear axis too, the chart shows its points
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}/runs/{site.runs[0]}")
    page.locator("[data-testid=chart][data-metric=one][data-buckets]").wait_for()
    assert page.locator("[data-testid=chart][data-metric=one]").get_attribute(
        "data-points") == "shown"
    assert page.locator("[data-testid=chart][data-metric=loss]").get_attribute(
        "data-points") is None
    watched.assert_clean()


def test_default_columns_prefer_what_varies(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/experiments/{site.exp}")
    page.wait_for_function("() => location.hash.includes('cols=')")
    page.get_by_test_id("run-row").first.wait_for()
    from urllib.parse import parse_qs, urlsplit

    cols = parse_qs(urlsplit(page.url.split("#", 1)[1]).query)["cols"][0].split(",")
    assert "params.lr" in cols, cols
    # the constant ones (a1, a2, a3: the same in every run) are left out
    assert not {"params.a1", "params.a2", "params.a3"} & set(cols), cols
    assert cols[0] == "metrics.loss", cols  # logged by every run, and varying
    watched.assert_clean()


def test_compare_log_scale_counts_hidden_values(watched: Watched, site: Site) -> None:
    page = watched.page
    page.goto(site.base + f"/#/compare?runs={site.runs[0]},{site.runs[1]}&m=mixed&log=1")
    page.wait_for_function("() => document.querySelector('[data-testid=compare-chart]')"
                           "?.dataset.phase === 'full'")
    badge = page.locator("[data-testid=compare-chart] [data-testid=log-hidden]")
    assert badge.inner_text() == "2 buckets ≤ 0 hidden"
    watched.assert_clean()


# Notes, from the first frame that shows a run's row, any later frame in which a row is
# blank again (data-loaded="0"): a new column set used to blank every row for a round trip.
BLANK_WATCH = """(() => { if (window.top !== window) return; window.__mfBlank = [];
  let shown = false;
  const tick = () => {
    const rows = document.querySelectorAll('[data-testid=run-row]');
    const blank = [...rows].filter((r) => r.dataset.loaded === '0').length;
    if (rows.length && !blank) shown = true;
    else if (shown && blank) window.__mfBlank.push([Math.round(performance.now()), blank]);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick); })();"""


def test_rows_stay_on_screen_while_columns_change(watched: Watched, site: Site) -> None:
    page = watched.page
    page.add_init_script(BLANK_WATCH)
    page.goto(site.base + f"/#/experiments/{site.exp}")  # default columns come after the rows
    page.wait_for_function("() => location.hash.includes('cols=')")
    loss = page.locator("[data-testid=run-row] .gcell.num", has_text="0.2").first
    loss.wait_for()  # a default column's value (f-0's last loss, 1/5) is on screen
    page.get_by_test_id("column-picker-open").click()
    page.get_by_test_id("column-picker-item").filter(has_text="neg").locator("input").check()
    page.wait_for_function("() => location.hash.includes('metrics.neg')")
    page.locator("[data-testid=run-row] .gcell.num", has_text="-5").first.wait_for()
    assert page.evaluate("window.__mfBlank") == []
    watched.assert_clean()
