"""The server's choice of bucket count for a chart width (`buckets_for_px`, used by the
downsample route's `px`) is the web UI's (ui/src/charts/data.ts `bucketsFor`): both are
tested on the same cases, so boot.ts's early request gets the counts the charts ask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metricflow.query._rollup_read import buckets_for_px

CASES = json.loads((Path(__file__).parents[3] / "ui/src/charts/buckets_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_same_count_as_the_ui(case: dict) -> None:
    assert buckets_for_px(case["px"], case.get("span"), case.get("lo", 0)) == case["buckets"]


def test_the_cases_cover_every_rule() -> None:
    whys = " ".join(c["why"] for c in CASES)
    for rule in ("at least 10", "at most 10,000", "1,024-step", "block", "no span"):
        assert rule in whys
