"""Fixtures shared by the component tier.

chDB runs one engine per process, bound to the first path it opens: a second path in
the same pytest process fails with "EmbeddedServer already initialized". So the whole
tier shares one chDB directory, and each test module isolates itself with its own
database name inside it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('component-chdb')}"
