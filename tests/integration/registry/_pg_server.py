"""A throwaway PostgreSQL server for the control-plane tests (Debian's package).

Used only when METRICFLOW_TEST_POSTGRES_URL is unset, until the shared
`metricflow.devservices` launcher is available. The server runs as the
`postgres` user (it refuses root) from a temp dir, on a free loopback port,
and is stopped by its data directory (pg_ctl), never by name.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(dirs[-1]) if dirs else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalPostgres:
    """A running server; `url` is a SQLAlchemy URL of its `postgres` database."""

    bin_dir: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"),
                      "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_local_postgres() -> LocalPostgres | None:
    """Start a server, or return None if PostgreSQL is not installed."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="mf-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        root.chmod(0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    pg = LocalPostgres(bin_dir, root, _free_port(), as_user)
    pg._run(str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync")
    opts = (f"-h 127.0.0.1 -p {pg.port} -k {root} -c fsync=off -c max_connections=200 "
            "-c synchronous_commit=off")
    pg._run(str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-o", opts,
            "-l", str(root / "log"), "-w", "-t", "60", "start")
    return pg
