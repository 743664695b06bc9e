"""Fixtures for query tests: one chDB path per session (chDB allows one per process)
and a fresh database per module."""

from __future__ import annotations

import uuid

import pytest
from querydata import generate

from metricflow.query._core import QueryCore
from metricflow.store._metric_store import MetricStore


@pytest.fixture(scope="module")
def store(chdb_dsn: str):
    s = MetricStore(chdb_dsn, f"q_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    yield s
    s.client.command(f"DROP DATABASE IF EXISTS {s.db}")


@pytest.fixture(scope="module")
def dataset(store: MetricStore):
    core = QueryCore(store, None)
    runs = generate(store)
    return core, runs
