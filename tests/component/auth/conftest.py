"""An AuthStore on a fresh SQLite control plane (migrated to head, 0003 included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def md(tmp_path: Path) -> Iterator[Any]:
    from metricflow.store.metadata import open_metadata_store

    store = open_metadata_store(f"sqlite:///{tmp_path}/meta.db")
    yield store
    store.close()


@pytest.fixture
def auth(md: Any) -> Any:
    from metricflow.auth._store import AuthStore

    return AuthStore(md.engine)
