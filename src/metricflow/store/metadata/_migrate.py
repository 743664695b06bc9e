"""Versioned schema migrations (alembic, scripts shipped in this package).

Alembic was chosen over a home-grown scheme because it records the revision in
the database, supports both dialects' DDL quirks, and lets operators run the
same revisions with the `alembic` CLI. `upgrade` runs every pending revision in
one transaction while holding a lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
transaction-scoped advisory lock), so concurrent openers migrate exactly once
and a failed upgrade leaves the previous schema intact (both engines have
transactional DDL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = "metricflow.store.metadata:migrations"
# Arbitrary constant naming "metricflow metadata migrations" for pg_advisory_xact_lock.
_PG_LOCK_KEY = 0x6D66_6D64


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this package."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (default: the newest), safely under concurrency."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
