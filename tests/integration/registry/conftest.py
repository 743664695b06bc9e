"""Control-plane fixtures: the same suite on SQLite and on a real PostgreSQL.

PostgreSQL comes from the shared `metricflow.devservices` plugin
(`make_postgres_database`) when it is loaded; otherwise from
METRICFLOW_TEST_POSTGRES_URL, or from a server this session starts itself
(see _pg_server.py). Every test gets a fresh database with a random name.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from _pg_server import start_local_postgres  # sibling helper (rootdir import mode)

from metricflow.store.metadata import MetadataStore, open_metadata_store


@pytest.fixture(scope="session")
def registry_postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database for this session."""
    env = os.environ.get("METRICFLOW_TEST_POSTGRES_URL")
    if env:
        yield env
        return
    pg = start_local_postgres()
    if pg is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql) and "
                    "METRICFLOW_TEST_POSTGRES_URL is not set")
    try:
        yield pg.url
    finally:
        pg.stop()


def _fresh_pg_database(server_url: str) -> str:
    url = sa.make_url(server_url)
    name = f"mf_registry_{secrets.token_hex(4)}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty control-plane database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    try:
        make = request.getfixturevalue("make_postgres_database")
    except pytest.FixtureLookupError:
        return _fresh_pg_database(request.getfixturevalue("registry_postgres_url"))
    return str(make())


@pytest.fixture
def store(metadata_uri: str) -> Iterator[MetadataStore]:
    s = open_metadata_store(metadata_uri, default_artifact_root="s3://bucket/mlruns")
    yield s
    s.close()
