"""Alembic environment: runs on the connection handed over by `_migrate.upgrade`.

The caller owns the transaction (and, on PostgreSQL, an advisory lock), so
several processes opening the same database migrate it exactly once.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
