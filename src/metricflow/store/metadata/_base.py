"""Shared machinery of the SQL metadata store: config, transactions, audit writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from metricflow._events import EventBus
from metricflow.store.metadata._chain import append_audit
from metricflow.store.metadata._engine import READONLY_OPTION
from metricflow.store.metadata._gov_types import PolicyGate

SourceChecker = Callable[[str, str], bool]
"""`source_exists(run_id, path) -> bool`, backed by the artifact store."""
RunArtifactResolver = Callable[[str, str], str]
"""`resolve(run_id, path) -> artifact URI` for `runs:/` sources."""


@dataclass(frozen=True)
class MetadataStoreConfig:
    """Settings of a metadata store, fixed when it is opened."""

    default_artifact_root: str = ""
    """Experiments without an explicit location get `<root>/<experiment_id>`."""
    require_transition_comment: bool = False
    """If true, every stage transition must carry a non-empty comment."""
    source_exists: SourceChecker | None = None
    """Checks `runs:/` model-version sources against the artifact store; None = no check."""
    run_artifact_uri: RunArtifactResolver | None = None
    """Turns a `runs:/<run_id>/<path>` source into a storage URI; None = return the source."""
    busy_timeout_ms: int = 30_000
    """SQLite: how long a writer waits for another process's write lock."""
    pool_size: int = 5
    """Connections kept per process."""
    auto_migrate: bool = True
    """Upgrade the schema to the newest revision on open."""
    policy_gate: PolicyGate | None = None
    """Evaluates governance policies before a transition applies (`metricflow.governance`
    builds it); None = transitions fail closed while any policy is in force."""


def now_ms() -> int:
    """Wall-clock time in ms since the epoch."""
    return time.time_ns() // 1_000_000


def actor_name(actor: str | None) -> str:
    """Who made a change; unnamed callers are recorded as "unknown"."""
    return actor or "unknown"


class StoreBase:
    """Engine, config and transaction helpers shared by the store's parts."""

    def __init__(self, engine: sa.Engine, config: MetadataStoreConfig,
                 read_engine: sa.Engine | None = None) -> None:
        self._engine = engine
        self._config = config
        # A replica for `_read()` (--metadata-read); writes and the reads inside them
        # (locked, so they see the newest committed state) always use the primary.
        self._read_engine = read_engine or engine
        self._pg = engine.dialect.name == "postgresql"
        self.events = EventBus()
        """Registry events, emitted once their transaction commits (`_event`)."""

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for tests and operators)."""
        return self._engine

    @property
    def config(self) -> MetadataStoreConfig:
        return self._config

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, so writers queue up front).
        Events queued with `_event` are emitted once it committed."""
        with self._engine.begin() as conn:
            try:
                yield conn
            finally:  # conn.info outlives the transaction (pooled): never leave them
                pending = conn.info.pop("mf_events", None)
        for name, subject, data, actor in pending or ():
            self.events.emit(name, subject, data, actor=actor)

    def _event(self, conn: sa.Connection, name: str, subject: str, data: dict[str, Any],
               actor: str | None = None) -> None:
        """Emit event `name` (metricflow._events) when `conn`'s transaction commits."""
        conn.info.setdefault("mf_events", []).append((name, subject, data, actor))

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A read-only transaction that never takes the SQLite write lock."""
        with self._read_engine.connect() as conn:
            conn = conn.execution_options(**{READONLY_OPTION: True})
            with conn.begin():
                yield conn

    def _lock(self, stmt: sa.Select) -> sa.Select:
        """Row-lock the selected rows on PostgreSQL (SQLite already holds the db lock)."""
        return stmt.with_for_update() if self._pg else stmt

    def _audit(self, conn: sa.Connection, *, actor: str | None, action: str,
               entity_type: str, entity_id: str, before: Any = None, after: Any = None,
               comment: str = "", model_id: int | None = None, model_name: str | None = None,
               version: int | None = None, ts: int | None = None) -> None:
        """Append one audit record inside the caller's transaction (hash-chained)."""
        append_audit(conn, actor=actor_name(actor), action=action, entity_type=entity_type,
                     entity_id=entity_id, before=before, after=after, comment=comment,
                     model_id=model_id, model_name=model_name, version=version,
                     ts=ts if ts is not None else now_ms())

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()
        if self._read_engine is not self._engine:
            self._read_engine.dispose()


def upsert(conn: sa.Connection, table: sa.Table, keys: dict[str, Any],
           values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, in the connection's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any = (postgresql.insert(table) if conn.dialect.name == "postgresql"
                 else sqlite.insert(table))
    stmt = stmt.values(**keys, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=values))


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The autoincrement primary key of a single-row INSERT."""
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])
