"""Browser fixtures: Debian's Chromium driven by Playwright for Python (no browser download).

- `browser`: one headless /usr/bin/chromium for the whole session (`--no-sandbox`: CI
  runs as root).
- `page`: a fresh context and page per test, watching for what must never happen:
  a CSP violation, an uncaught page error, or the XSS canary `window.__pwned` set.
  A failing test saves a screenshot (path printed) under METRICFLOW_UI_ARTIFACTS
  (default /tmp/metricflow-ui-artifacts).
- `ui_server(...)`: an embedded server on a fresh data dir (one per module: chDB opens
  one data path per process).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import Watched

from metricflow.ui import STATIC_DIR

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("METRICFLOW_UI_ARTIFACTS", "/tmp/metricflow-ui-artifacts"))

# Set by every watched page before any of the app's scripts run: CSP violations and the
# XSS canary are recorded on window so a test can read them after the fact.
WATCH = """
window.__pwned = window.__pwned || [];
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""


def _need_browser() -> None:
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
        "(scripts/services/prefetch.sh), or run: apt-get install -y chromium")
    assert (STATIC_DIR / "index.html").is_file(), (
        f"the UI is not built in {STATIC_DIR}: run `make install` "
        "(or cd ui && npm ci && npm run build)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium per test module. Not per session: Playwright's sync API keeps
    its event loop marked as running in the main thread while it is open, so a test
    module of another directory run after this one in the same process (pytest-xdist
    hands each worker files of every directory) would fail in asyncio.run()."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu",
                                     "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def watched(browser: Any, request: pytest.FixtureRequest) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(15_000)
    w = Watched(page)
    yield w
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"\npage errors: {w.errors}\nconsole errors: {w.console[-20:]}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
        path = ARTIFACTS / f"{name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"\nscreenshot of the failed test: {path}")
        except Exception as e:  # the page may be gone; the failure itself is what matters
            print(f"\nno screenshot ({e})")
    context.close()


@pytest.fixture
def page(watched: Watched) -> Any:
    return watched.page
