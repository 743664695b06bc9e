"""`metricflow admin` and `metricflow gc` take their store defaults from the same
METRICFLOW_* declarations as the roles (metricflow._env)."""

from __future__ import annotations

import pytest

from metricflow.server.cli import build_parser


def test_admin_metadata_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_METADATA_URI", "sqlite:////tmp/x/shared.db")
    args = build_parser().parse_args(["admin", "user", "list"])
    assert args.metadata == "sqlite:////tmp/x/shared.db"
    # The flag still wins over the variable.
    args = build_parser().parse_args(["admin", "--metadata", "sqlite:////y.db", "user", "list"])
    assert args.metadata == "sqlite:////y.db"


def test_admin_without_env_uses_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICFLOW_METADATA_URI", raising=False)
    assert build_parser().parse_args(["admin", "user", "list"]).metadata is None


def test_gc_stores_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_CLICKHOUSE_DSN", "http://ch:8123")
    monkeypatch.setenv("METRICFLOW_ARTIFACT_ROOT", "s3://bucket/p")
    args = build_parser().parse_args(["gc"])
    assert (args.clickhouse, args.artifacts) == ("http://ch:8123", "s3://bucket/p")
    monkeypatch.delenv("METRICFLOW_CLICKHOUSE_DSN")
    monkeypatch.delenv("METRICFLOW_ARTIFACT_ROOT")
    args = build_parser().parse_args(["gc"])
    assert (args.clickhouse, args.artifacts) == (None, None)
