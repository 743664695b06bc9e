"""Governance fixtures: every test runs on SQLite and on a real PostgreSQL (devservices)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from metricflow.store.metadata import open_metadata_store


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty control-plane database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    make: Callable[[], str] = request.getfixturevalue("make_postgres_database")
    return make()


@pytest.fixture
def gstore(metadata_uri: str) -> Iterator[object]:
    """A store with model `m` (version 1 from run r1) and approvers bob, carol and dave."""
    s = open_metadata_store(metadata_uri)
    s.create_registered_model("m", actor="admin")
    s.create_model_version("m", "s3://bucket/m/1", run_id="r1", description="first",
                           actor="alice")
    for user in ("bob", "carol", "dave"):
        s.grant_approver(user, actor="admin")  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.close()
