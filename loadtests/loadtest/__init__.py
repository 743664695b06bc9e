"""`metricflow loadtest`: scenario-driven load tests of any metricflow deployment."""

from __future__ import annotations

from loadtests.loadtest._report import SCHEMA, render_markdown
from loadtests.loadtest._runner import RunOptions, VerifyContext, run_loadtest
from loadtests.loadtest._scenario import Scenario, ScenarioError, load_scenario, scaled
from loadtests.loadtest._verify import verify_points

__all__ = ["SCHEMA", "RunOptions", "Scenario", "ScenarioError", "VerifyContext",
           "load_scenario", "render_markdown", "run_loadtest", "scaled", "verify_points"]
