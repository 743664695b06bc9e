"""Streaming replication on loopback: a hot standby of a `PostgresServer`, made synchronous.

    primary  (PostgresServer with REPLICATION_SETTINGS: synchronous_commit = remote_apply)
       |  physical WAL stream, application_name = the standby's name
    standby  (PostgresStandby: pg_basebackup -R of the primary; read-only until promoted)

`set_sync_standbys(primary, [name])` names the standby in the primary's
`synchronous_standby_names` (ALTER SYSTEM + reload). From then on a COMMIT on the
primary returns only after the standby has *applied* it (remote_apply): a change the
primary acknowledged is already visible on the standby, which is what makes losing
the primary safe. `PostgresStandby.promote()` turns the standby into a primary.

The same Debian binaries as `PostgresServer` (`pg_basebackup` ships with them), run
as the `postgres` user when we are root.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from metricflow.devservices._common import LOOPBACK, DevServiceError, wait_until
from metricflow.devservices._postgres import PostgresServer, check_db_name

REPLICATION_SETTINGS: dict[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    # Keep WAL for a standby that falls behind (a loaded 2-core test machine).
    "wal_keep_size": "512MB",
    # Waits for the synchronous standby only once synchronous_standby_names names it.
    "synchronous_commit": "remote_apply",
}
"""Settings of a primary that standbys stream from (pass as `PostgresServer(settings=)`)."""


def _check_name(name: str) -> str:
    check_db_name(name)  # a lowercase identifier: safe in a conninfo and in the SQL below
    return name


class PostgresStandby(PostgresServer):
    """A hot standby of `primary`: cloned with pg_basebackup -R, streaming as `name`.

    Read-only until `promote()`. Its `url` names the primary's default database.
    """

    creates_database = False

    def __init__(self, primary: PostgresServer, *, name: str = "standby1",
                 port: int | None = None, data_dir: str | Path | None = None,
                 settings: Mapping[str, str] | None = None,
                 startup_timeout: float = 120.0, stream_port: int | None = None) -> None:
        """Configure (but do not start) a standby of a running `primary`.

        Args:
            primary: The server to clone and stream from (started with
                REPLICATION_SETTINGS).
            name: Its application_name, as `synchronous_standby_names` lists it.
            port: TCP port; a free one when None.
            data_dir: Work dir (a temp dir, removed on close, when None).
            settings: Extra `postgres -c` settings.
            startup_timeout: Seconds to wait for the clone and the first connection.
            stream_port: Stream WAL from 127.0.0.1:`stream_port` instead of the primary's
                port (a relay in between, e.g. one that adds network delay).
        """
        self.name = _check_name(name)
        self.primary = primary
        conninfo = (f"host={LOOPBACK} port={stream_port or primary.port} user=postgres "
                    f"application_name={self.name}")
        super().__init__(port=port, data_dir=data_dir, database=primary.database,
                         settings={**REPLICATION_SETTINGS, "primary_conninfo": conninfo,
                                   **(settings or {})},
                         startup_timeout=startup_timeout)

    def _init_cluster(self) -> None:
        if (self.pgdata / "PG_VERSION").is_file():
            return  # restart on an existing clone (or a promoted one)
        if not self.primary.running:
            raise DevServiceError(f"cannot clone {self.primary!r}: it is not running")
        install = self._install
        assert install is not None
        if not Path(install.tool("pg_basebackup")).is_file():
            raise DevServiceError(f"pg_basebackup is not in {install.bindir}: install Debian's "
                                  "postgresql (it ships the server and its client tools)")
        # -R writes standby.signal (start as a standby); -X stream copies the WAL the
        # backup needs over a second connection; -c fast checkpoints at once.
        self._run([install.tool("pg_basebackup"), "-D", str(self.pgdata), "-h", LOOPBACK,
                   "-p", str(self.primary.port), "-U", "postgres", "-X", "stream",
                   "-c", "fast", "--no-sync", "-R"], "pg_basebackup")

    def in_recovery(self) -> bool:
        """True while it is a standby (replaying WAL), False once promoted."""
        with self._connect() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    def promote(self, *, timeout: float = 60.0, keep_sync_standbys: bool = False) -> float:
        """Make this standby a primary; returns the seconds it took.

        The clone carries the old primary's `synchronous_standby_names`: left in
        place, every commit on the new primary would wait for a standby that is not
        there. Unless `keep_sync_standbys`, it is cleared, so the new primary
        commits alone until a new standby is attached (docs/governance.md).
        """
        started = time.monotonic()
        with self._connect(timeout=timeout) as conn:
            conn.execute("SELECT pg_promote(true, %s)", (max(1, int(timeout)),))
        wait_until(lambda: not self.in_recovery(), timeout=timeout,
                   what=f"promotion of {self!r}", proc=self._proc, log_path=self.log_path)
        if not keep_sync_standbys:
            set_sync_standbys(self, [])
        return time.monotonic() - started


def set_sync_standbys(server: PostgresServer, names: Sequence[str], *,
                      timeout: float = 30.0) -> None:
    """Set `synchronous_standby_names` on `server` (FIRST 1 of `names`; [] = none).

    ALTER SYSTEM + pg_reload_conf(), then wait until a new session sees the value.
    """
    value = f"FIRST 1 ({', '.join(_check_name(n) for n in names)})" if names else ""
    with server._connect() as conn:
        if value:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{value}'")
        else:
            conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        conn.execute("SELECT pg_reload_conf()")

    def applied() -> bool:
        with server._connect() as conn:
            row = conn.execute("SHOW synchronous_standby_names").fetchone()
        return bool(row) and str(row[0]) == value  # type: ignore[index]

    wait_until(applied, timeout=timeout, what=f"synchronous_standby_names={value!r}")


def wait_for_sync_standby(primary: PostgresServer, name: str, *,
                          timeout: float = 60.0) -> None:
    """Wait until `primary` streams to standby `name` and counts it as synchronous."""
    _check_name(name)

    def synced() -> bool:
        with primary._connect() as conn:
            row = conn.execute(
                "SELECT state, sync_state FROM pg_stat_replication "
                "WHERE application_name = %s", (name,)).fetchone()
        return row is not None and row[0] == "streaming" and row[1] == "sync"

    wait_until(synced, timeout=timeout, what=f"synchronous standby {name!r}",
               interval=0.1)


def failover_url(servers: Sequence[PostgresServer], database: str | None = None) -> str:
    """One SQLAlchemy URL naming every server, connecting only to the writable one.

    libpq tries the hosts in order and, with target_session_attrs=read-write, skips a
    standby; after a promotion, new connections reach the promoted server without
    changing the URL a process was started with.
    """
    if not servers:
        raise ValueError("failover_url needs at least one server")
    db = check_db_name(database or servers[0].database)
    hosts = "&".join(f"host={quote(f'{LOOPBACK}:{s.port}')}" for s in servers)
    return (f"postgresql+psycopg://postgres@/{db}?{hosts}"
            "&target_session_attrs=read-write&connect_timeout=2")
