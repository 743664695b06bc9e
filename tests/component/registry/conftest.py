"""Fixtures for control-plane unit tests: a fresh SQLite metadata store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metricflow.store.metadata import MetadataStore, open_metadata_store


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta.db'}"


@pytest.fixture
def store(sqlite_uri: str) -> Iterator[MetadataStore]:
    s = open_metadata_store(sqlite_uri, default_artifact_root="file:///data/artifacts")
    yield s
    s.close()
