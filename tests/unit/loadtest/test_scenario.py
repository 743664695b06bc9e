"""Scenario parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.loadtest import ScenarioError, load_scenario, scaled
from loadtests.loadtest._scenario import scenario_from_dict

SCENARIOS = Path(__file__).resolve().parents[3] / "loadtests" / "scenarios"


@pytest.mark.parametrize("name", ["smoke", "many-workers", "wide", "sweep", "soak", "mixed"])
def test_shipped_scenarios_load(name: str) -> None:
    s = load_scenario(SCENARIOS / f"{name}.toml")
    assert s.name == name
    assert s.description


def test_shipped_scenarios_have_the_advertised_shapes() -> None:
    many = load_scenario(SCENARIOS / "many-workers.toml")
    assert many.workers.total == 2000 and many.runs.rate == 10.0
    assert load_scenario(SCENARIOS / "wide.toml").runs.keys == 10_000
    sweep = load_scenario(SCENARIOS / "sweep.toml")
    assert sweep.workers.total * sweep.runs.per_worker == 50_000
    soak = load_scenario(SCENARIOS / "soak.toml")
    assert soak.phases.total_s == 30 * 60
    mixed = load_scenario(SCENARIOS / "mixed.toml")
    assert mixed.queries.search_qps > 0 and mixed.queries.history_qps > 0


def test_unknown_field_is_named() -> None:
    with pytest.raises(ScenarioError, match=r"\[runs\].*'stepz'"):
        scenario_from_dict({"name": "x", "runs": {"stepz": 3}})
    with pytest.raises(ScenarioError, match="top-level.*'phase'"):
        scenario_from_dict({"name": "x", "phase": {}})


@pytest.mark.parametrize("data, field", [
    ({"workers": {"processes": 0}}, "workers.processes"),
    ({"workers": {"mode": "fibers"}}, "workers.mode"),
    ({"workers": {"mode": "threads", "per_process": 5000}}, "workers.per_process"),
    ({"runs": {"keys": 0}}, "runs.keys"),
    ({"runs": {"rate": -1.0}}, "runs.rate"),
    ({"runs": {"steps": 0}, "phases": {"steady_s": 0}}, "runs.steps"),
    ({"queries": {"lag_probe_interval_s": 0}}, "queries.lag_probe_interval_s"),
    ({"client": {"max_inflight": -1}}, "client.max_inflight"),
    ({"client": {"max_inflight": 5000}}, "client.max_inflight"),
])
def test_out_of_range_values_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        scenario_from_dict({"name": "x", **data})


def test_overrides_and_time_scale(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "s"\n[workers]\nprocesses = 1\n[phases]\nsteady_s = 100.0\n')
    s = load_scenario(f, ["workers.processes=3", "runs.keys=7", "description=hello world"])
    assert (s.workers.processes, s.runs.keys, s.description) == (3, 7, "hello world")
    assert scaled(s, 0.1).phases.steady_s == pytest.approx(10.0)
    assert s.planned_points == 3 * 1 * 100 * 7
    assert s.client.max_inflight == 0  # 0 keeps the Client's own window
    assert load_scenario(f, ["client.max_inflight=64"]).client.max_inflight == 64
    with pytest.raises(ScenarioError, match="section.field=value"):
        load_scenario(f, ["workers.processes"])
