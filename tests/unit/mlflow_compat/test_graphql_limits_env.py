"""MLflow's GraphQL limits are read through their declarations in metricflow._env."""

from __future__ import annotations

import graphql
import pytest

from metricflow import _env


def _check(query: str) -> str | None:
    from metricflow.mlflow_compat._graphql import check_limits

    return check_limits(graphql.parse(query), None)


def test_declared_in_env() -> None:
    assert _env.GRAPHQL_MAX_ROOT_FIELDS.name == "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS"
    assert _env.GRAPHQL_MAX_ALIASES.name == "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES"


def test_root_field_limit_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    three = "{ a b c }"
    monkeypatch.delenv("MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", raising=False)
    assert _check(three) is None
    monkeypatch.setenv("MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", "2")
    assert _check(three) is not None
    monkeypatch.setenv("MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", "many")  # MLflow's default
    assert _check(three) is None


def test_alias_limit_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SERVER_GRAPHQL_MAX_ALIASES", "1")
    assert _check("{ x: a y: b }") is not None
    monkeypatch.setenv("MLFLOW_SERVER_GRAPHQL_MAX_ALIASES", "5")
    assert _check("{ x: a y: b }") is None
