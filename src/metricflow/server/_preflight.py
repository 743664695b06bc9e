"""Checks a command runs before it opens anything, and their one-line errors.

The CLI prints a StartupError as one line (what happened, and what to do) and
exits non-zero, instead of the traceback the failing library would raise later:
chDB's `Error initializing EmbeddedServer: . (BAD_ARGUMENTS)` for a data dir
another process holds, gRPC's `Failed to bind ... GRPC_VERBOSITY=debug`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from typing import Any


class StartupError(Exception):
    """A command cannot start; the message is one line that says what to do."""


def chdb_path(dsn: str) -> str | None:
    """The directory of a `chdb://` DSN (None for other schemes)."""
    if not dsn.startswith("chdb://"):
        return None
    path = dsn[len("chdb://"):].split("?", 1)[0]
    return os.path.abspath(path) if path else None


def chdb_owner(path: str) -> int | None:
    """The pid of the process that holds chDB directory `path` open, else None.

    chDB, like clickhouse-server, writes its pid into `<path>/status` and holds an
    exclusive flock on it while the directory is open (0 when the pid is unreadable).
    """
    try:
        fd = os.open(os.path.join(path, "status"), os.O_RDONLY)
    except OSError:
        return None  # never opened, or not readable: opening it will say why
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            text = os.read(fd, 4096).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("PID:"):
                    try:
                        return int(line.split(":", 1)[1])
                    except ValueError:
                        break
            return 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _in_use(path: str, what: str, fix: str) -> StartupError | None:
    pid = chdb_owner(path)
    if pid is None or pid == os.getpid():
        return None
    by = f"pid {pid}" if pid else "another process"
    return StartupError(f"{what} is in use by {by}; {fix}")


def check_command(args: Any) -> None:
    """Raise StartupError when `args` (a parsed `metricflow` command) cannot start:
    its chDB directory is held by another process, or a port it binds is taken."""
    command = getattr(args, "command", "")
    data_dir = getattr(args, "data_dir", None)
    dsn = getattr(args, "clickhouse", None) or ""
    if command in ("server", "gc") and not dsn and data_dir:
        path = os.path.join(os.path.abspath(data_dir), "clickhouse")
        if command == "gc":
            err = _in_use(path, f"data dir {os.path.abspath(data_dir)}",
                          "stop that server, then run gc again (gc needs the data dir to "
                          "itself)")
        else:
            err = _in_use(path, f"data dir {os.path.abspath(data_dir)}",
                          "stop it or pass --data-dir")
        if err is not None:
            raise err
    elif (path := chdb_path(dsn)) is not None:
        err = _in_use(path, f"chDB dir {path}", "stop it or pass another --clickhouse")
        if err is not None:
            raise err
    host = getattr(args, "host", None) or "127.0.0.1"
    for attr, flag, label in (("grpc_port", "--grpc-port", "gRPC"),
                              ("http_port", "--http-port", "HTTP")):
        port = getattr(args, attr, None)
        if isinstance(port, int) and port > 0 and port_taken(host, port):
            raise port_error(label, host, port, flag)


def port_taken(host: str, port: int) -> bool:
    """Whether another socket listens on host:port (a bind would fail)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # the real bind reports a bad host
    family, _, _, _, addr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        # as the servers bind: a port in TIME_WAIT is free, only a listener blocks it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
    except OSError as e:
        return e.errno == errno.EADDRINUSE
    finally:
        s.close()
    return False


def port_error(label: str, host: str, port: int, flag: str) -> StartupError:
    """The one-line error of a port another process listens on."""
    return StartupError(f"{label} port {port} on {host} is in use by another process; stop "
                        f"it or pass {flag} (0 picks a free port)")


__all__ = ["StartupError", "check_command", "chdb_owner", "chdb_path", "port_error",
           "port_taken"]
