"""Which objects of this server a model-version source resolves to (registry/_sources.py)."""

from __future__ import annotations

import pytest

from metricflow.registry._sources import SourceTarget, is_local_source, store_targets

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
    # The server's own filesystem: refused at creation (check_new_source); a version
    # registered before that resolves for admins only.
    ("file:///tmp/model", [SourceTarget("admin", "")]),
    ("/tmp/model", [SourceTarget("admin", "")]),
    ("relative/model", [SourceTarget("admin", "")]),
    ("C:\\models\\m", [SourceTarget("admin", "")]),
    # Dot segments, inner empty segments, encoded separators: never read as the first
    # segment's experiment (mlflow-artifacts:/2/../1/... is not experiment 2's).
    (f"mlflow-artifacts:/2/../1/{RUN}/artifacts/model", [SourceTarget("admin", "")]),
    (f"mlflow-artifacts:/2/%2e%2e/1/{RUN}/artifacts", [SourceTarget("admin", "")]),
    (f"mlflow-artifacts:/2/%252E%252E/1/{RUN}/artifacts", [SourceTarget("admin", "")]),
    (f"mlflow-artifacts:/2/./{RUN}/artifacts", [SourceTarget("admin", "")]),
    ("mlflow-artifacts:/2//x", [SourceTarget("admin", "")]),
    ("mlflow-artifacts:/2/a%2F..%2F1/x", [SourceTarget("admin", "")]),
    (f"mlflow-artifacts:/3/{RUN}/artifacts/model/", [SourceTarget("run", RUN)]),
    (f"runs:/{RUN}/../../1/x", [SourceTarget("admin", "")]),
    ("models:/a/../model-c/1", [SourceTarget("admin", "")]),
])
def test_store_targets(source: str, expected: list[SourceTarget]) -> None:
    assert store_targets(source) == expected


def test_linked_run_and_logged_model_are_targets_too() -> None:
    assert store_targets("s3://b/m", model_id=LM, run_id=RUN) == [
        SourceTarget("run", RUN), SourceTarget("logged_model", LM)]


@pytest.mark.parametrize(("source", "local"), [
    ("/etc", True), ("file:///etc", True), ("FILE://localhost/etc", True), ("model", True),
    ("./model", True), ("../model", True), ("C:\\m", True), ("c:/m", True),
    ("%2Fetc", True), ("s3://b/k", False), ("runs:/x/m", False), ("models:/m/1", False),
    ("mlflow-artifacts:/1/x", False), ("hdfs://h/p", False), ("", False),
])
def test_local_sources(source: str, local: bool) -> None:
    assert is_local_source(source) is local
