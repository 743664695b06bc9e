"""Fixtures of the alert component tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metricflow.alerts import AlertStore
from metricflow.store.metadata import open_metadata_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlertStore]:
    md = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    try:
        yield AlertStore(md.engine)  # type: ignore[attr-defined]
    finally:
        md.close()
