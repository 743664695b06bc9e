"""Engines for the control plane: SQLite (WAL, busy timeout) or PostgreSQL.

SQLite transactions are started with BEGIN IMMEDIATE for writes, so a writer
takes the database's write lock up front and waits for it (busy timeout)
instead of failing half-way with SQLITE_BUSY when several processes write at
once. Reads use a deferred BEGIN and never block writers under WAL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from metricflow._uris import CONTROL, backend_key
from metricflow.errors import InvalidArgument

READONLY_OPTION = "metricflow_readonly"


def create_metadata_engine(uri: str, *, busy_timeout_ms: int = 30_000,
                           pool_size: int = 5) -> sa.Engine:
    """Build an engine for a `sqlite:///abs/path.db` or `postgresql+psycopg://` URI."""
    try:
        url = sa.make_url(uri)
    except sa.exc.ArgumentError as e:
        raise InvalidArgument(f"metadata store uri {uri!r} is not a valid URL: {e}",
                              field="uri") from e
    backend = backend_key(CONTROL, uri)  # the one scheme table (metricflow._uris)
    if backend == "postgresql" and url.get_backend_name() == "postgres":  # libpq's name
        url = url.set(drivername="postgresql" + url.drivername[len("postgres"):])
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise InvalidArgument(
                "metadata store uri must name a SQLite file (sqlite:///abs/path.db); "
                "in-memory databases cannot be shared by connections or processes",
                field="uri", received=uri)
        engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size)
        _install_sqlite_hooks(engine, busy_timeout_ms)
        return engine
    if backend == "postgresql":
        if url.get_driver_name() in ("", "psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                pool_pre_ping=True)
    raise InvalidArgument(
        f"metadata store uri scheme {url.drivername!r} is not supported; "
        "use sqlite:///abs/path.db or postgresql+psycopg://...", field="uri", received=uri)


def _install_sqlite_hooks(engine: sa.Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite, which would otherwise
        # start transactions lazily and defeat BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            # LIKE is case-sensitive on PostgreSQL; make SQLite agree (ILIKE is explicit).
            cur.execute("PRAGMA case_sensitive_like = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(READONLY_OPTION) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


def read_only_sessions(engine: sa.Engine) -> None:
    """Make every session of a replica's engine read-only, even on a writable server."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("SET default_transaction_read_only = on")
        dbapi_conn.commit()
