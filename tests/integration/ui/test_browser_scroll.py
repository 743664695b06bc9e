"""Scrolling deep into a large runs table in the browser: 100,000 runs bulk-loaded through
the server's own write path (loadtests/_bulk_load.py), rows fetched by window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ui_support import Watched, base_url, start_server

pytestmark = pytest.mark.timeout(600)
N = 40_000  # enough to need windows; the bulk load is most of this module's time


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from loadtests._bulk_load import load_metricflow_in_child

    data = str(tmp_path_factory.mktemp("mf-ui-scroll"))
    exp, _ = load_metricflow_in_child(data, "big", N)
    srv = start_server(data)
    try:
        yield base_url(srv), exp
    finally:
        srv.stop()


def _row(page: Any, index: int) -> Any:
    return page.locator(f"[data-testid=run-row][data-row-index='{index}']")


def test_jump_and_scroll_deep(watched: Watched, big: tuple[str, str]) -> None:
    base, exp = big
    page = watched.page
    page.goto(f"{base}/#/experiments/{exp}")
    page.get_by_test_id("run-row").first.wait_for()
    assert page.evaluate("window.__mf.table.total()") == N
    # Newest first (start_time descending): row k is run search-(N-1-k).
    _row(page, 0).filter(has_text=f"search-{N - 1}").wait_for()
    box = page.get_by_test_id("goto-row")
    for target in (30_000, N - 1, 20_000):
        box.fill(str(target))
        box.press("Enter")
        # The row is placed at once and filled when its window arrives.
        _row(page, target).filter(has_text=f"search-{N - 1 - target}").wait_for()
    # Then scroll by wheel from there: later rows arrive without loading the rest.
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/runs/window" in r.url else None)
    table = page.get_by_test_id("runs-table")
    table.hover()
    for _ in range(10):
        page.mouse.wheel(0, 3000)
        page.wait_for_timeout(100)
    page.wait_for_timeout(800)
    shown = [int(i) for i in page.locator("[data-testid=run-row]").evaluate_all(
        "els => els.map(e => e.dataset.rowIndex)")]
    assert min(shown) > 20_000, shown[:5]
    for i in shown[:3]:
        _row(page, i).filter(has_text=f"search-{N - 1 - i}").wait_for()
    assert len(requests) < 50  # windows, not the table
    watched.assert_clean()
