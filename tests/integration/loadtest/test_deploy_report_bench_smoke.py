"""deploy_report_bench at a tiny size: it starts a real server, writes the request log as
`serve` does, and the report it times counts every request (the bench asserts it)."""

from __future__ import annotations

from loadtests.deploy_report_bench import run_bench


def test_the_bench_reports_every_logged_request() -> None:
    got = run_bench(requests_n=400, repeat=1, polls=5)
    assert got["requests"] == 400 and got["points"] == 1600
    assert got["report_s"] > 0 and got["poll_ms_p50"] > 0
    assert 0 <= got["welch_p_revenue"] <= 1
