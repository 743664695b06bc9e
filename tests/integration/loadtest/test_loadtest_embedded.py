"""`metricflow loadtest` end to end: the smoke scenario, numbers vs the store, injected loss."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loadtests.loadtest import RunOptions, VerifyContext, load_scenario, run_loadtest
from loadtests.loadtest._scenario import Phases, Workers

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "loadtests" / "scenarios" / "smoke.toml"


def _tiny() -> Any:
    """The smoke scenario shrunk further: these tests check correctness, not speed."""
    s = load_scenario(SMOKE)
    return replace(s, workers=Workers(processes=1, per_process=3),
                   runs=replace(s.runs, per_worker=2, keys=7, steps=60, rate=200.0),
                   phases=Phases(ramp_up_s=0.2, steady_s=30.0))


def test_smoke_cli_writes_report_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "metricflow.server.cli", "loadtest", str(SMOKE),
         "--report", str(out), "--no-live"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "metricflow.loadtest/v1"
    assert report["passed"] is True
    assert report["verification"]["status"] == "PASS"
    planned = 8 * 2 * 300 * 20  # workers x runs x steps x keys, as in smoke.toml
    markers = report["queryable_lag_ms"]["samples"] + report["queryable_lag_ms"]["timeouts"]
    assert report["throughput"]["points_logged"] >= planned
    assert report["verification"]["expected_points"] == report["throughput"]["points_logged"]
    assert report["verification"]["stored_points"] == report["throughput"]["points_acked"]
    assert report["throughput"]["points_logged"] - planned <= markers + 2 * 2
    assert report["ack_latency_ms"]["points"] > 0 and report["ack_latency_ms"]["p99"] > 0
    assert report["queryable_lag_ms"]["samples"] > 0
    assert report["runs"]["finished"] == 16
    assert report["errors"]["total"] == 0, report["errors"]
    for png in ("throughput.png", "latency.png", "lag.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in report["plots"]
    md = (out / "report.md").read_text()
    assert "**PASS**" in md and "DATA LOSS" not in md


def _stored(server: Any, experiment_id: str) -> tuple[int, float, int]:
    """(points, sum of values, runs) of an experiment, read straight from ClickHouse."""
    store = server.server.store
    db = store.db
    row = store.client.query(
        f"SELECT count(), sum(value), uniqExact(run_id) FROM {db}.metrics FINAL "
        f"WHERE run_id IN (SELECT run_id FROM {db}.runs FINAL "
        "WHERE experiment_id = {e:String})", parameters={"e": experiment_id}).result_rows[0]
    return int(row[0]), float(row[1]), int(row[2])


def test_report_numbers_agree_with_store(embedded_server: Any, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def capture(ctx: VerifyContext) -> None:
        seen["exp"] = ctx.experiment_id
        seen["expected"] = dict(ctx.expected)

    report = run_loadtest(_tiny(), RunOptions(
        report_dir=tmp_path, target=f"grpc://{embedded_server.target}", live=False,
        plots=False, before_verify=capture))
    count, total, runs = _stored(embedded_server, seen["exp"])
    v = report["verification"]
    assert v["status"] == "PASS"
    assert count == v["stored_points"] == v["expected_points"]
    assert count == report["throughput"]["points_acked"] == report["throughput"]["points_logged"]
    assert total == pytest.approx(v["stored_checksum"], abs=0) == v["expected_checksum"]
    assert runs == v["runs_checked"] == len(seen["expected"])  # 6 runs + 1 probe run
    assert report["runs"]["started"] == 6
    assert json.loads((tmp_path / "report.json").read_text())["verification"] == v


def test_injected_loss_is_flagged(embedded_server: Any, tmp_path: Path) -> None:
    store = embedded_server.server.store
    hit: dict[str, Any] = {}

    def delete_behind_its_back(ctx: VerifyContext) -> None:
        victim = max((r for r in ctx.expected if ctx.expected[r][0] > 100),
                     key=lambda r: ctx.expected[r][0])
        other = next(r for r in ctx.expected if r != victim and ctx.expected[r][0] > 100)
        before = store.count_points([victim])[0]
        store.client.command(
            f"ALTER TABLE {store.db}.metrics DELETE WHERE run_id = {{r:String}} AND step < 10",
            parameters={"r": victim}, settings={"mutations_sync": 2})
        # A silent corruption keeps the count but changes values: only the checksum sees it.
        # (value is part of the sort key, so rewrite the rows instead of UPDATE.)
        rows = store.client.query(
            f"SELECT run_id, key, step, timestamp, value FROM {store.db}.metrics FINAL "
            "WHERE run_id = {r:String} AND step = 3", parameters={"r": other}).result_rows
        store.client.command(
            f"ALTER TABLE {store.db}.metrics DELETE WHERE run_id = {{r:String}} AND step = 3",
            parameters={"r": other}, settings={"mutations_sync": 2})
        store.client.insert(f"{store.db}.metrics", [(*r[:4], r[4] + 1) for r in rows],
                            column_names=["run_id", "key", "step", "timestamp", "value"])
        hit.update(victim=victim, other=other,
                   deleted=before - store.count_points([victim])[0])

    report = run_loadtest(_tiny(), RunOptions(
        report_dir=tmp_path, target=f"grpc://{embedded_server.target}", live=False,
        plots=False, before_verify=delete_behind_its_back))
    v = report["verification"]
    assert hit["deleted"] == 10 * 7  # steps 0..9 x 7 keys
    assert v["status"] == "LOSS"
    assert report["passed"] is False
    assert v["missing_points"] == hit["deleted"]
    assert v["runs_with_missing_points"] == 1
    assert v["runs_with_checksum_mismatch"] == 1
    bad = {m["run_id"]: m for m in v["mismatched_runs"]}
    assert bad[hit["victim"]]["expected_points"] - bad[hit["victim"]]["stored_points"] == 70
    assert bad[hit["other"]]["stored_points"] == bad[hit["other"]]["expected_points"]
    assert bad[hit["other"]]["stored_checksum"] == bad[hit["other"]]["expected_checksum"] + 7
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# ❌ DATA LOSS: 70 point(s) missing")
    assert hit["victim"] in md
