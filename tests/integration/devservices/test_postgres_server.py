"""A real PostgreSQL server: SQLAlchemy round trip, fresh databases, restart."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import psycopg  # noqa: F401 - installed by the server extra; missing must fail
import pytest
import sqlalchemy as sa

from metricflow.devservices import PostgresServer


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with PostgresServer() as pg:
        yield pg


def _roundtrip(url: str, value: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS runs (id serial, name text)"))
            conn.execute(sa.text("INSERT INTO runs (name) VALUES (:name)"), {"name": value})
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(sa.text("SELECT name FROM runs ORDER BY id"))]
    finally:
        engine.dispose()


def test_url_is_psycopg3_on_loopback(server: PostgresServer) -> None:
    assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/metricflow"
    engine = sa.create_engine(server.url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == "metricflow"
        assert conn.execute(sa.text("SHOW server_version_num")).scalar() >= "150000"
    engine.dispose()


def test_table_round_trip_and_isolated_databases(server: PostgresServer) -> None:
    first, second = server.create_database(), server.create_database()
    assert first != second
    assert _roundtrip(first, "alpha") == ["alpha"]
    # A fresh database does not see the other one's table contents.
    assert _roundtrip(second, "beta") == ["beta"]


def test_create_database_rejects_unsafe_names(server: PostgresServer) -> None:
    with pytest.raises(ValueError, match="database name"):
        server.create_database('x"; DROP DATABASE metricflow; --')


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["fast", "crash"])
def test_restart_keeps_committed_rows(server: PostgresServer, sig: int) -> None:
    url = server.create_database()
    _roundtrip(url, "before")
    port = server.port
    server.stop(sig)
    assert not server.running
    server.start()
    assert server.port == port
    assert _roundtrip(url, "after") == ["before", "after"]


def test_close_stops_postmaster_and_removes_dir() -> None:
    pg = PostgresServer().start()
    workdir = pg.workdir
    proc_pid = pg.pid
    assert proc_pid is not None
    pg.close()
    assert not pg.running and not workdir.exists()
