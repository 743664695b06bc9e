"""loadtests/alerts_bench.py runs end to end at tiny sizes and prints its keys (the
figures themselves are measured by running it, docs/alerts.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_prints_its_keys() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "loadtests" / "alerts_bench.py"), "--workers", "2",
         "--keys", "10", "--points-per-worker", "2000", "--rules", "50", "--repeats", "2",
         "--probes", "3", "--stalled-s", "1", "--skip-kafka", "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    res = json.loads(lines[0])
    for key in ("fire_latency_p99_ms", "ingest_slowdown_pct", "stalled_detect_s"):
        assert key in res
    assert res["probes"] >= 1 and res["fire_latency_p99_ms"] > 0
    assert 1.0 <= res["stalled_detect_s"] <= 1.0 + 10  # fired after T, on the timer
    # rounds of three trials in alternating order, each round's figures and their median
    assert res["trial_order"] == ["none", "quiet", "alerting", "alerting", "quiet", "none"]
    for kind in ("", "_alerting"):
        assert len(res[f"ingest_slowdown_pct{kind}_pairs"]) == 2
        # one per round; None where a tiny trial's CPU read 0 ticks (/proc: 10 ms each)
        pairs = res[f"server_cpu_overhead_pct{kind}_pairs"]
        assert len(pairs) == 2 and all(x is None or isinstance(x, float) for x in pairs)
    # the same without chDB's background merges, and what the merges used, per trial
    assert len(res["server_cpu_overhead_excl_merges_pct_pairs"]) == 2
    for kind in ("no_rules", "rules", "alerting"):
        merged = res[f"server_merge_cpu_s_per_mpoint_{kind}"]
        assert len(merged) == 2 and all(x >= 0 for x in merged)
    assert res["probes_missed"] == 0
    # the evaluating process's alerts threads and latency stages, per trial with rules:
    # the alerting trials announce the probe's alerts, the quiet ones announce nothing
    assert len(res["alerts_during_load"]) == len(res["alerts_during_quiet_load"]) == 2
    for d in res["alerts_during_load"]:
        assert d["cpu_s_per_mpoint"]["evaluate"] > 0
        assert d["stages"]["deliver"]["n"] >= 1 and d["stages"]["write"]["n"] >= 1
    for d in res["alerts_during_load"] + res["alerts_during_quiet_load"]:
        # every point of the load evaluated (none dropped), and when
        assert d["evaluated_lag_s"] >= 0 and d["dropped_points"] == 0
    for d in res["alerts_during_quiet_load"]:
        assert d["cpu_s_per_mpoint"]["evaluate"] > 0
        # no alert changed state during the load (the warm-up's resolution may still be
        # recorded as delivered just after the snapshot: its sender observes the stage
        # once the receiver has answered, which is when the warm-up returns)
        assert "write" not in d["stages"]
        assert d["stages"].get("deliver", {}).get("n", 0) <= 1
