"""Open clickhouse-connect clients for a data-plane DSN.

`chdb:///abs/path` runs ClickHouse in-process (embedded default);
`http(s)://host:port` talks to a ClickHouse server. Same client API, same SQL,
except Arrow inserts on chDB, which go to the engine directly
(`ClientPool.insert_arrow`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from metricflow._uris import DATA, backend_key
from metricflow.errors import InvalidArgument

log = logging.getLogger(__name__)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_identifier(name: str, field: str = "database") -> str:
    """Return `name` if it is a safe SQL identifier, else raise InvalidArgument."""
    if not _IDENT.match(name):
        raise InvalidArgument(
            f"{field} must match {_IDENT.pattern}, got {name!r}", field=field, received=name
        )
    return name


def connect(dsn: str, **settings: Any) -> Any:
    """Return a new clickhouse-connect client for `dsn`."""
    import clickhouse_connect  # server extra, loaded lazily

    backend = backend_key(DATA, dsn)  # the one scheme table (metricflow._uris)
    if backend == "chdb":
        path = dsn[len("chdb://"):]
        if path:
            os.makedirs(path, exist_ok=True)
        return clickhouse_connect.get_client(dsn=dsn, settings=settings or None)
    if backend == "http":
        return clickhouse_connect.get_client(
            dsn=dsn, settings=settings or None, compress=False, autogenerate_session_id=False
        )
    raise InvalidArgument(
        f"clickhouse dsn must start with chdb://, http:// or https://, got {dsn!r}",
        field="clickhouse_dsn",
        received=dsn,
    )


RUN_SLOTS = 1 << 16
"""Slots of `ClientPool.last_write`: runs sharing one are taken as written together."""


class ClientPool:
    """One clickhouse-connect client (and on chDB one engine handle) per thread.

    chDB sessions must not be shared between threads that run queries at the
    same time, so each thread gets its own; they share the one data directory
    the process owns.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        # chDB takes one engine path per process and compares it literally:
        # resolve it as clickhouse-connect does (symlinks, trailing slash).
        self._chdb_path = (os.path.realpath(dsn[len("chdb://"):])
                           if backend_key(DATA, dsn) == "chdb" else None)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []
        self._closed = False
        self.read_barrier: Callable[[], None] | None = None
        """Called before a client is handed out (the embedded sink's wait for logged
        but unapplied run records: a read sees every acknowledged write)."""
        self.sole_writer = False
        """Every write to this store goes through this process (the embedded sink):
        then `write_generation` tells readers whether anything was written since."""
        self.write_generation = 0
        self.read_cache: dict[Any, tuple[int, Any]] = {}
        """Small derived reads keyed by the generation they were read at."""
        self._run_writes = [0] * RUN_SLOTS
        """Per slot (a hash of the run id): the generation of the latest write to any
        run of that slot, so an answer about a few runs can outlive writes to others."""
        self._wrote_lock = threading.Lock()

    def wrote(self, run_ids: Iterable[str] = ()) -> None:
        """Note a write (of these runs' rows; none given: of rows of no run) once it
        is visible to reads: a new generation, which the written runs' slots take
        first, so a reader that sees the new generation also sees their slots."""
        with self._wrote_lock:
            gen = self.write_generation + 1
            for r in run_ids:
                self._run_writes[hash(r) & (RUN_SLOTS - 1)] = gen
            self.write_generation = gen

    def last_write(self, run_ids: Iterable[str]) -> int:
        """The generation of the latest write to any of `run_ids` (or to a run sharing
        a slot with one: a false alarm at worst); 0 for none since this process began.
        Nothing about these runs changed while it is at most a generation read before."""
        w = self._run_writes
        return max((w[hash(r) & (RUN_SLOTS - 1)] for r in run_ids), default=0)

    def get(self) -> Any:
        barrier = self.read_barrier
        if barrier is not None:
            barrier()
        client = getattr(self._local, "client", None)
        if client is None:
            client = connect(self.dsn)
            try:
                client.metricflow_pool = self  # lets readers find the write generation
            except AttributeError:
                pass
            self._adopt(client)
            self._local.client = client
        return client

    def _adopt(self, conn: Any) -> None:
        """Track a new connection for close(); refuse it once the pool is closed.

        A thread that outlives the server (a timer, a late executor task) would
        otherwise open a connection nobody closes. On chDB that pins the process to
        this data directory until the garbage collector happens to free it.
        """
        with self._lock:
            if not self._closed:
                self._all.append(conn)
                return
        conn.close()
        raise RuntimeError(f"the ClickHouse store {self.dsn!r} is closed")

    def insert_arrow(self, table: str, data: Any, settings: dict[str, Any]) -> None:
        """Insert an Arrow table into `table` (a checked, qualified name).

        On chDB the engine reads the table from this process's memory (the
        `Python()` table function, one thread so the rows keep their order and
        a presorted block is not sorted again). clickhouse-connect's insert_arrow
        instead serializes it to Arrow IPC, writes that to a temporary file and
        has the engine read and parse the file: 176 against 132 ns a point for
        `metrics` in one measurement here. On a server: insert_arrow over HTTP.
        """
        if self._chdb_path is None:
            self.get().insert_arrow(table, data, settings=settings)
            return
        conn = getattr(self._local, "chdb", None)
        if conn is None:
            import chdb  # embedded extra, loaded lazily

            conn = _ChdbConn(chdb.connect(self._chdb_path))
            self._adopt(conn)
            self._local.chdb = conn
        cols = ", ".join(f"`{c}`" for c in data.column_names)
        extra = "".join(f", {k} = {int(v)}" for k, v in settings.items())
        # `Python(data)` names the local variable above: chDB looks it up in this frame.
        with conn.lock:
            if conn.conn is None:
                raise RuntimeError(f"the ClickHouse store {self.dsn!r} is closed")
            conn.conn.query(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM Python(data) "
                            f"SETTINGS max_threads = 1, max_insert_threads = 1, "
                            f"schema_inference_make_columns_nullable = 0{extra}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            clients, self._all = self._all, []
        for c in clients:
            try:
                c.close()
            except Exception:  # closing is best effort, but a handle left open binds chDB
                log.warning("closing a ClickHouse connection of %s failed", self.dsn,
                            exc_info=True)


class _ChdbConn:
    """A raw chDB connection (Arrow inserts) whose close waits for its running query.

    Closed from another thread in the middle of an insert, the engine handle could
    stay open, and chDB accepts one data path per process: the next store opened in
    this process (tests, tools) would be refused.
    """

    def __init__(self, conn: Any) -> None:
        self.conn: Any = conn
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
