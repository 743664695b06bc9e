"""Find (or install with apt) the PostgreSQL server binaries, and the user to run them as."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from metricflow.devservices._common import DevServiceError, cache_dir, file_lock, run_checked

_DEBIAN_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class PgInstall:
    """Where the server binaries are and whom they run as."""

    bindir: Path
    """Directory holding `postgres`, `initdb` and `pg_ctl`."""
    run_as: tuple[int, int] | None
    """(uid, gid) of the `postgres` user when we are root (the server refuses root)."""

    def tool(self, name: str) -> str:
        """Return the absolute path of one binary, e.g. "initdb"."""
        return str(self.bindir / name)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_pg_bindir() -> Path | None:
    """Return the newest server bin dir (`METRICFLOW_PG_BINDIR` overrides), or None."""
    override = os.environ.get("METRICFLOW_PG_BINDIR")
    if override:
        return Path(override)
    candidates = [p for p in _DEBIAN_ROOT.glob("*/bin") if (p / "postgres").is_file()]
    if candidates:
        return max(candidates, key=_version_key)
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found and (Path(found).resolve().parent / "postgres").is_file():
            return Path(found).resolve().parent
    return None


def _apt_install_postgresql() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DevServiceError(
            "PostgreSQL server binaries not found and cannot apt-get install them "
            "(need root and apt-get); install `postgresql` or set METRICFLOW_PG_BINDIR"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked(["apt-get", "update"], what="apt-get update", env=env, timeout=600)
    run_checked(
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
        what="apt-get install postgresql",
        env=env,
        timeout=900,
    )


def ensure_postgres() -> PgInstall:
    """Return the PostgreSQL install, running apt-get install first if it is missing."""
    bindir = find_pg_bindir()
    if bindir is None:
        with file_lock(cache_dir() / "postgres-install.lock"):
            bindir = find_pg_bindir()
            if bindir is None:
                _apt_install_postgresql()
                bindir = find_pg_bindir()
    if bindir is None:
        raise DevServiceError("apt-get installed postgresql but no server binaries were found")
    run_as: tuple[int, int] | None = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise DevServiceError("running as root but there is no `postgres` user") from exc
        run_as = (entry.pw_uid, entry.pw_gid)
    return PgInstall(bindir=bindir, run_as=run_as)


def check_reachable(path: Path) -> None:
    """Fail clearly if another user could not traverse into `path` (we chown it to them)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise DevServiceError(
                f"{parent} is not searchable by other users, so the `postgres` user cannot "
                f"reach {path}; pass a data_dir under /tmp or set TMPDIR"
            )
