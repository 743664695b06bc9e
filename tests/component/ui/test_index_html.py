"""The built index.html (make ui): the early-request script ui/src/boot.ts is a classic
script after the viewport's <meta> (it measures the viewport) and before the stylesheet
and the app's bundle (it must not wait for either), and the chunk it names for the
charts' library is there."""

from __future__ import annotations

import re

from metricflow.ui._static import STATIC_DIR as STATIC


def test_boot_is_a_classic_script_between_the_viewport_and_the_stylesheet() -> None:
    html = (STATIC / "index.html").read_text()
    boot = re.search(r'<script src="\./assets/(boot-[^"]+\.js)"></script>', html)
    assert boot, html
    viewport = html.index('<meta name="viewport"')
    assert viewport < boot.start() < html.index('<link rel="stylesheet"')
    assert boot.start() < html.index('<script type="module"')
    uplot = re.search(r'<meta name="mf-uplot" content="\./assets/([^"]+)">', html)
    assert uplot and uplot.start() < boot.start() and (STATIC / "assets" / uplot[1]).is_file()
    code = (STATIC / "assets" / boot[1]).read_text()
    # wrapped in a function (its names stay out of the page's global scope), no module syntax
    assert code.startswith('(()=>{"use strict";') and code.rstrip().endswith("})();")
    assert not re.search(r"\bimport\s*[.(]|^\s*(import|export)\b", code, re.M)
