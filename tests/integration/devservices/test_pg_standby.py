"""The streaming-replication launcher: a synchronous standby that applies before the
primary acknowledges, blocks commits while it is gone, and can be promoted."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import psycopg
import pytest

from metricflow.devservices import (
    REPLICATION_SETTINGS,
    PostgresServer,
    PostgresStandby,
    failover_url,
    set_sync_standbys,
    wait_for_sync_standby,
)


@pytest.fixture
def pair() -> Iterator[tuple[PostgresServer, PostgresStandby]]:
    primary = PostgresServer(settings=REPLICATION_SETTINGS).start()
    standby = PostgresStandby(primary, name="standby1")
    try:
        standby.start()
        set_sync_standbys(primary, ["standby1"])
        wait_for_sync_standby(primary, "standby1")
        yield primary, standby
    finally:
        standby.close()
        primary.close()


def _dsn(server: PostgresServer) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname={server.database}"


def test_a_commit_is_visible_on_the_standby_when_the_primary_returns(
        pair: tuple[PostgresServer, PostgresStandby]) -> None:
    primary, standby = pair
    assert standby.in_recovery()
    with psycopg.connect(_dsn(primary), autocommit=True) as p, \
            psycopg.connect(_dsn(standby), autocommit=True) as s:
        p.execute("CREATE TABLE t (x int)")
        for i in range(50):
            p.execute("INSERT INTO t VALUES (%s)", (i,))
            # remote_apply: no waiting, no polling; the row is there already.
            row = s.execute("SELECT count(*) FROM t").fetchone()
            assert row is not None and row[0] == i + 1
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            s.execute("INSERT INTO t VALUES (-1)")


def test_without_its_standby_a_commit_waits_and_completes_when_it_returns(
        pair: tuple[PostgresServer, PostgresStandby]) -> None:
    primary, standby = pair
    with psycopg.connect(_dsn(primary), autocommit=True) as p:
        p.execute("CREATE TABLE w (x int)")
    standby.stop(signal.SIGINT)
    done = threading.Event()

    def commit() -> None:
        with psycopg.connect(_dsn(primary), autocommit=True) as p:
            p.execute("INSERT INTO w VALUES (1)")
        done.set()

    t = threading.Thread(target=commit, daemon=True)
    t.start()
    # A window in which nothing may happen: the commit must not be acknowledged while
    # its only synchronous standby is down.
    assert not done.wait(2.0)
    standby.start()
    assert done.wait(60), "the commit did not complete once the standby was back"
    t.join(5)
    with psycopg.connect(_dsn(standby), autocommit=True) as s:
        row = s.execute("SELECT count(*) FROM w").fetchone()
    assert row is not None and row[0] == 1


def test_promotion_after_a_primary_crash_takes_writes_through_the_failover_url(
        pair: tuple[PostgresServer, PostgresStandby]) -> None:
    import sqlalchemy as sa

    primary, standby = pair
    engine = sa.create_engine(failover_url([primary, standby]))
    try:
        with engine.begin() as c:
            c.execute(sa.text("CREATE TABLE f (x int)"))
            c.execute(sa.text("INSERT INTO f VALUES (1)"))
        primary.stop(signal.SIGKILL)
        standby.promote()
        assert not standby.in_recovery()
        with psycopg.connect(_dsn(standby), autocommit=True) as s:
            row = s.execute("SHOW synchronous_standby_names").fetchone()
        assert row is not None and row[0] == ""  # the new primary does not wait for a ghost
        engine.dispose()  # the pooled connections died with the old primary
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO f VALUES (2)"))
            assert c.execute(sa.text("SELECT sum(x) FROM f")).scalar() == 3
    finally:
        engine.dispose()
