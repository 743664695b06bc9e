"""The loss check against a fake store, and how loudly the report says it."""

from __future__ import annotations

from typing import Any

import pytest

from loadtests.loadtest import render_markdown, verify_points


class FakeStore:
    """count_points over an in-memory {run_id: (count, checksum)} table."""

    def __init__(self, table: dict[str, tuple[int, float]]) -> None:
        self.table = table
        self.calls = 0

    def count_points(self, run_ids: list[str]) -> tuple[int, float]:
        self.calls += 1
        assert run_ids, "count_points([]) would count every run"
        got = [self.table.get(r, (0, 0.0)) for r in run_ids]
        return sum(c for c, _ in got), sum(s for _, s in got)


def _expected(n: int) -> dict[str, tuple[int, float]]:
    return {f"run{i:04d}": (100 + i, (100 + i) * 0.5) for i in range(n)}


def test_pass_when_every_run_matches() -> None:
    exp = _expected(1200)
    store = FakeStore(dict(exp))
    v = verify_points(store, exp, timeout_s=1)
    assert v["status"] == "PASS" and v["missing_points"] == 0 and not v["mismatched_runs"]
    assert store.calls <= 2 * 3  # chunked: one total pass and one per-chunk pass


def test_missing_points_and_checksum_are_pinned_to_runs() -> None:
    exp = _expected(1200)
    stored = dict(exp)
    stored["run0700"] = (exp["run0700"][0] - 5, exp["run0700"][1] - 2.5)
    stored["run0042"] = (exp["run0042"][0], exp["run0042"][1] + 1.0)  # same count, new values
    v = verify_points(FakeStore(stored), exp, timeout_s=0.1)
    assert v["status"] == "LOSS"
    assert v["missing_points"] == 5
    assert v["runs_with_missing_points"] == 1 and v["runs_with_checksum_mismatch"] == 1
    assert {m["run_id"] for m in v["mismatched_runs"]} == {"run0700", "run0042"}


def test_duplicates_show_as_extra() -> None:
    exp = _expected(10)
    stored = dict(exp)
    stored["run0003"] = (exp["run0003"][0] + 1, exp["run0003"][1] + 0.5)
    v = verify_points(FakeStore(stored), exp, timeout_s=0.1)
    assert v["status"] == "EXTRA" and v["extra_points"] == 1


def _report(status: str, missing: int) -> dict[str, Any]:
    lat = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0, "points": 10, "method": "m"}
    return {
        "scenario": {"name": "t", "description": "d", "workers": {"per_process": 1}},
        "target": "grpc://x", "embedded_server": False, "started_at": "now",
        "duration_s": 1.0, "interrupted": False,
        "load_generator": {"simulated_workers": 1, "processes": 1, "mode": "async",
                           "behind_schedule_pct": 0.0, "loadavg_start": [],
                           "loadavg_end": [], "host_cpus": 2},
        "throughput": {"sustained_points_per_s": 1.0, "overall_points_per_s": 1.0,
                       "peak_points_per_s": 1.0, "points_logged": 10, "points_acked": 10},
        "ack_latency_ms": lat,
        "queryable_lag_ms": {**lat, "samples": 1, "timeouts": 0},
        "queries": {}, "runs": {"started": 1, "finished": 1},
        "artifacts": {"uploaded": 0, "bytes": 0, "p50_ms": None},
        "server": {"source": "none", "cpu_avg_pct": None, "cpu_peak_pct": None,
                   "rss_mb_peak": None, "rss_mb_end": None},
        "errors": {"total": 0, "by_type": {}}, "plots": [],
        "verification": {"status": status, "missing_points": missing, "extra_points": 0,
                         "runs_with_missing_points": 1 if missing else 0,
                         "runs_with_checksum_mismatch": 0, "runs_checked": 1,
                         "expected_points": 10, "stored_points": 10 - missing,
                         "expected_checksum": 5.0, "stored_checksum": 5.0,
                         "mismatched_runs": []},
    }


@pytest.mark.parametrize("status, missing, banner", [
    ("PASS", 0, False), ("LOSS", 3, True)])
def test_markdown_banner(status: str, missing: int, banner: bool) -> None:
    md = render_markdown(_report(status, missing))
    assert md.startswith("# ❌ DATA LOSS: 3 point(s) missing") is banner
    assert f"**{status}**" in md
