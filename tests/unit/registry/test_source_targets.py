"""Which objects of this server a model-version source resolves to (registry/_sources.py)."""

from __future__ import annotations

import pytest

from metricflow.registry._sources import SourceTarget, store_targets

RUN = "0123456789abcdef0123456789abcdef"
LM = "m-" + "f" * 32


@pytest.mark.parametrize(("source", "expected"), [
    (f"runs:/{RUN}/model", [SourceTarget("run", RUN)]),
    (f"mlflow-artifacts:/3/{RUN}/artifacts/model", [SourceTarget("run", RUN)]),
    (f"mlflow-artifacts://host:5000/3/{RUN}/artifacts", [SourceTarget("run", RUN)]),
    (f"MLFLOW-ARTIFACTS:///3/{RUN}/artifacts", [SourceTarget("run", RUN)]),
    (f"mlflow-artifacts:/3/models/{LM}/artifacts/x", [SourceTarget("logged_model", LM)]),
    ("mlflow-artifacts:/3/somewhere/else", [SourceTarget("experiment", "3")]),
    ("mlflow-artifacts:/", [SourceTarget("admin", "")]),
    (f"models:/{LM}", [SourceTarget("logged_model", LM)]),
    (f"models:/{LM}/sub/path", [SourceTarget("logged_model", LM)]),
    ("models:/model-c/1", [SourceTarget("model", "model-c")]),
    ("models:/model-c/Production", [SourceTarget("model", "model-c")]),
    ("models:/model-c@champion", [SourceTarget("model", "model-c")]),
    ("models:/", [SourceTarget("admin", "")]),  # not resolvable: refused, never "anything"
    ("s3://bucket/model", []),
    ("file:///tmp/model", []),
])
def test_store_targets(source: str, expected: list[SourceTarget]) -> None:
    assert store_targets(source) == expected


def test_linked_run_and_logged_model_are_targets_too() -> None:
    assert store_targets("s3://b/m", model_id=LM, run_id=RUN) == [
        SourceTarget("run", RUN), SourceTarget("logged_model", LM)]
