"""A real PostgreSQL server in a temp dir on 127.0.0.1, for tests and development."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from metricflow.devservices._common import (
    LOOPBACK,
    DevServiceError,
    ManagedService,
    cache_dir,
    file_lock,
    free_port,
    make_workdir,
    random_suffix,
    register_for_exit,
    spawn,
    stop_process,
    unregister_for_exit,
    wait_until,
)
from metricflow.devservices._pg_install import PgInstall, check_reachable, ensure_postgres

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# A throwaway test server: no fsync and no full-page images, which only matter if the
# machine itself crashes. synchronous_commit stays on, so a committed row survives a
# SIGKILL of the server (crash tests rely on that; with it off, commits sit in WAL
# buffers in shared memory for up to ~0.6 s and a kill loses them).
_DEFAULT_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def check_db_name(name: str) -> str:
    """Return `name` if it is a safe lowercase database identifier, else raise ValueError."""
    if not _DB_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
    return name


class PostgresServer(ManagedService):
    """A PostgreSQL cluster in its own dir, served on 127.0.0.1:PORT.

    `.url` is a SQLAlchemy URL (psycopg 3 driver) to a database created at start;
    `create_database()` makes fresh ones. The postmaster is a direct child of this
    process (run as the `postgres` user when we are root), so it dies with us.

    Call `start()` from a long-lived thread: Linux sends the parent-death signal when
    the *thread* that started the process exits.
    """

    creates_database = True
    """Create `database` on the first start (a read-only standby copies it instead)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | Path | None = None,
        database: str = "metricflow",
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """Configure (but do not start) a server.

        Args:
            port: TCP port; a free one when None.
            data_dir: Work dir holding the cluster, socket and log. A temp dir, removed
                on close, when None; a given dir is kept.
            database: Database created at start and used by `.url`.
            settings: Extra `postgres -c` settings.
            startup_timeout: Seconds to wait until a connection succeeds.
        """
        self.port = port or free_port()
        self._fixed_port = port is not None
        self._owns_dir = data_dir is None
        self.workdir = Path(data_dir) if data_dir else make_workdir("mf-pg-")
        self.pgdata = self.workdir / "data"
        self.socket_dir = self.workdir / "sock"
        self.log_path = self.workdir / "postgres.log"
        self.database = check_db_name(database)
        self._settings = {**_DEFAULT_SETTINGS, **(settings or {})}
        self._timeout = startup_timeout
        self._install: PgInstall | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.last_startup_seconds: float | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) of `database` on this server."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """True while the postmaster is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the postmaster, or None when stopped."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    def _run(self, argv: list[str], what: str) -> None:
        install = self._install
        assert install is not None
        preexec = None
        if install.run_as is not None:
            uid, gid = install.run_as

            def preexec() -> None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)

        result = subprocess.run(
            argv, capture_output=True, text=True, preexec_fn=preexec, timeout=300, check=False
        )
        if result.returncode != 0:
            raise DevServiceError(
                f"{what} failed: {' '.join(argv)}\n{result.stdout}{result.stderr}"
            )

    def _chown(self, path: Path) -> None:
        install = self._install
        assert install is not None
        if install.run_as is not None:
            os.chown(path, *install.run_as)

    def _init_cluster(self) -> None:
        if (self.pgdata / "PG_VERSION").is_file():
            return  # restart on an existing cluster
        install = self._install
        assert install is not None
        binary = Path(install.tool("postgres")).resolve()
        key = hashlib.sha256(f"{binary}:{binary.stat().st_mtime_ns}".encode()).hexdigest()[:10]
        template = cache_dir() / f"postgres-template-{key}"
        if (template / "PG_VERSION").is_file():
            # Copying a ready cluster is ~0.1 s, initdb ~0.8 s; cp -a keeps the owner.
            subprocess.run(["cp", "-a", str(template), str(self.pgdata)], check=True)
            return
        self._run(
            [
                install.tool("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
        with file_lock(cache_dir() / "postgres-template.lock"):
            if not (template / "PG_VERSION").is_file():
                staging = template.with_name(f"{template.name}.tmp-{os.getpid()}")
                shutil.rmtree(staging, ignore_errors=True)
                subprocess.run(["cp", "-a", str(self.pgdata), str(staging)], check=True)
                staging.rename(template)

    def _connect(self, database: str = "postgres", timeout: float = 2.0):  # type: ignore[no-untyped-def]
        import psycopg  # lazy: a server extra

        return psycopg.connect(
            host=LOOPBACK,
            port=self.port,
            user="postgres",
            dbname=database,
            connect_timeout=max(1, int(timeout)),
            autocommit=True,
        )

    def _accepts_connections(self) -> bool:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:  # any failure means "not yet"
            return False

    def start(self) -> PostgresServer:
        """Create the cluster if needed, start the postmaster and the default database."""
        if self.running:
            return self
        started = time.monotonic()
        self._install = ensure_postgres()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._install.run_as is not None:
            check_reachable(self.workdir)
        for path in (self.workdir, self.socket_dir):
            self._chown(path)
        self._init_cluster()
        first_start = self.last_startup_seconds is None
        argv = [
            self._install.tool("postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={LOOPBACK}",
        ]
        for key, value in self._settings.items():
            argv += ["-c", f"{key}={value}"]
        deadline = time.monotonic() + self._timeout
        while True:
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._proc = spawn(argv, log_path=self.log_path, run_as=self._install.run_as)
            register_for_exit(self)
            try:
                wait_until(self._accepts_connections,
                           timeout=max(1.0, deadline - time.monotonic()),
                           what=f"PostgreSQL on {LOOPBACK}:{self.port}",
                           proc=self._proc, log_path=self.log_path)
                break
            except DevServiceError:
                # After a SIGKILL the old postmaster's children exit a moment later; until
                # they do, a new postmaster refuses the still-attached shared memory.
                with open(self.log_path, "rb") as f:
                    f.seek(log_start)
                    busy = b"pre-existing shared memory block" in f.read()
                if not busy or time.monotonic() > deadline:
                    raise
                stop_process(self._proc, signal.SIGKILL, timeout=5)
                time.sleep(0.1)
        if first_start and self.creates_database:
            self.create_database(self.database, exist_ok=True)
        self.last_startup_seconds = time.monotonic() - started
        return self

    def create_database(self, name: str | None = None, *, exist_ok: bool = False) -> str:
        """Create a database (a random `test_<hex>` name when None) and return its URL."""
        from psycopg import errors, sql

        name = check_db_name(name or f"test_{random_suffix()}")
        with self._connect() as conn:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:
                if not exist_ok:
                    raise
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(check_db_name(name))
                )
            )

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int | None:
        """Stop the postmaster: SIGINT is `pg_ctl stop -m fast`, SIGKILL simulates a crash.

        Returns its exit code, or None if it was not running. The cluster stays, so
        `start()` brings the same server back on the same port.
        """
        if self._proc is None:
            return None
        code = stop_process(self._proc, sig, timeout=timeout)
        self._proc = None
        return code

    def close(self) -> None:
        """Fast-stop the server and remove its temp dir (if this object made it)."""
        self.stop(signal.SIGINT, timeout=15)
        unregister_for_exit(self)
        if self._owns_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"PostgresServer({self.url}, {state}, dir={self.workdir})"
