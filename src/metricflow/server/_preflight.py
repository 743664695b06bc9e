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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from metricflow.app import (
    CONTROL,
    DATA,
    ROLES,
    backend_key,
    settings_from_args,
    uses_kafka,
    uses_metadata,
)

if TYPE_CHECKING:
    from metricflow.app import ServerConfig


class StartupError(Exception):
    """A command cannot start; the message is one line that says what to do."""


def chdb_path(dsn: str) -> str | None:
    """The directory of a `chdb://` DSN (None for other schemes)."""
    if backend_key(DATA, dsn) != "chdb":
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
    """Raise StartupError when `args` (a parsed `metricflow` command) cannot start.

    Checked before anything is opened (a writer must not join its consumer group
    first): the data dir and chDB dir are directories and not held by another
    process, the ClickHouse server, the metadata store and Kafka can be reached, and
    the ports it binds are free.
    """
    command = getattr(args, "command", "")
    if getattr(args, "alerts_command", None):
        return  # `metricflow alerts create|list|...`: a client of a server's /api/v1
    data_dir = getattr(args, "data_dir", None)
    dsn = getattr(args, "clickhouse", None) or ""
    if data_dir and (command in ("server", "gc")
                     or command == "admin" and not getattr(args, "metadata", None)):
        _check_dir(os.path.abspath(data_dir), "data dir", "pass --data-dir DIR (created "
                   "if missing)")
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
    elif (chdb_dir := chdb_path(dsn)) is not None:
        _check_dir(chdb_dir, "chDB dir", "pass another --clickhouse chdb:///DIR")
        fix = ("stop that process, then run gc again (gc needs the chDB dir to itself)"
               if command == "gc" else "stop it or pass another --clickhouse")
        err = _in_use(chdb_dir, f"chDB dir {chdb_dir}", fix)
        if err is not None:
            raise err
    elif dsn:
        check_clickhouse(dsn)
    metadata = getattr(args, "metadata", None)
    settings = _role_settings(args)
    if settings is None:  # admin, gc
        if metadata:
            check_metadata(metadata, role=False)
    else:
        # The embedded server creates its data dir: only a --metadata given is checked.
        if metadata and uses_metadata(settings):
            check_metadata(metadata, role=not settings.embedded)
        if settings.metadata_read_uri and uses_metadata(settings):
            check_metadata(settings.metadata_read_uri, role=True, read_replica=True)
        if settings.kafka is not None and uses_kafka(settings):
            check_kafka(settings.kafka.topic.bootstrap)
    host = getattr(args, "host", None) or "127.0.0.1"
    if any(isinstance(getattr(args, a, None), int) for a in ("grpc_port", "http_port")):
        check_host(host)
    for attr, flag, label in (("grpc_port", "--grpc-port", "gRPC"),
                              ("http_port", "--http-port", "HTTP")):
        port = getattr(args, attr, None)
        if isinstance(port, int) and port > 0 and port_taken(host, port):
            raise port_error(label, host, port, flag)


def _role_settings(args: Any) -> ServerConfig | None:
    """The settings of a role command (`metricflow ROLE ...`, app's ROLES), else None."""
    if getattr(args, "command", "") not in ROLES:
        return None
    return settings_from_args(args)


def _check_dir(path: str, what: str, fix: str) -> None:
    """A directory the command creates if missing must not be something else."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise StartupError(f"{what} {path} is a file, not a directory; {fix}")


def redact(uri: str) -> str:
    """`uri` without its password (for messages and logs)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def unreachable(host: str, port: int, timeout_s: float = 3.0) -> str:
    """Why a TCP connection to host:port fails ("" when it connects)."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except TimeoutError:
        return f"no answer within {timeout_s:.0f} s"
    except OSError as e:
        return e.strerror or type(e).__name__
    return ""


def check_metadata(uri: str, role: bool, read_replica: bool = False) -> None:
    """The control-plane store at `uri` can be opened (a SQLite file's directory exists;
    a PostgreSQL server answers and accepts the URI's credentials); `read_replica`: the
    query role's --metadata-read."""
    flag = ("pass --metadata URI (env METRICFLOW_METADATA_URI; every role must use the "
            "same one)" if role else "pass another --metadata")
    if read_replica:
        flag = "fix --metadata-read URI (env METRICFLOW_METADATA_READ_URI)"
    backend = backend_key(CONTROL, uri)
    if backend == "sqlite":
        import sqlalchemy as sa  # server extra

        try:
            path = sa.make_url(uri).database or ""
        except sa.exc.ArgumentError:
            return  # opening it reports the bad URL
        if not path or path == ":memory:":
            return
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            why = "is a file" if os.path.exists(parent) else "does not exist"
            raise StartupError(f"metadata store {uri} cannot be opened: directory {parent} "
                               f"{why}; create it (mkdir -p {parent}) or {flag}")
        return
    if backend != "postgresql":
        return  # opening it names the supported schemes
    parts = urlsplit(uri)
    shown = redact(uri)
    if parts.hostname and (why := unreachable(parts.hostname, parts.port or 5432)):
        raise StartupError(f"metadata store {shown} is unreachable ({why}); start PostgreSQL "
                           f"or {flag}")
    from metricflow.store.metadata import create_metadata_engine

    try:
        engine = create_metadata_engine(uri, pool_size=1)
    except Exception:  # opening it reports a bad URI with its own message
        return
    try:
        with engine.connect():
            pass
    except Exception as e:  # any driver error: say it on one line
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StartupError(f"metadata store {shown} refused the connection ({first}); check "
                           f"the URI's user, password and database, or {flag}") from e
    finally:
        engine.dispose()


def check_clickhouse(dsn: str) -> None:
    """A ClickHouse server DSN (http:// or https://) answers and accepts its credentials."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https", "clickhouse") or not parts.hostname:
        return  # opening it names the supported schemes
    shown = redact(dsn)
    port = parts.port or (8443 if parts.scheme == "https" else 8123)
    if why := unreachable(parts.hostname, port):
        raise StartupError(f"ClickHouse at {shown} is unreachable ({why}); start it or pass "
                           "another --clickhouse")
    import clickhouse_connect  # server extra

    try:
        clickhouse_connect.get_client(dsn=dsn, connect_timeout=5).close()
    except Exception as e:  # any driver error: say it on one line
        first = str(e).strip().splitlines()[0][:300]
        raise StartupError(f"ClickHouse at {shown} refused the connection ({first}); check "
                           "the DSN's user and password, or pass another --clickhouse") from e


def check_kafka(bootstrap: str) -> None:
    """At least one Kafka bootstrap server accepts connections."""
    reasons = []
    for hp in (h.strip() for h in bootstrap.split(",") if h.strip()):
        host, _, port = hp.rpartition(":")
        try:
            why = unreachable(host.strip("[]") or hp, int(port) if host else 9092)
        except ValueError:
            raise StartupError(f"Kafka bootstrap server {hp!r} is not HOST:PORT; pass "
                               "--kafka HOST:PORT[,HOST:PORT]") from None
        if not why:
            return
        reasons.append(why)
    raise StartupError(f"Kafka at {bootstrap} is unreachable ({'; '.join(reasons)}); start it "
                       "or pass --kafka HOST:PORT (env METRICFLOW_KAFKA_BOOTSTRAP)")


def check_host(host: str) -> None:
    """`host` (--host) is an address of this machine that a server can bind."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind(addr)
    except OSError as e:
        why = e.strerror or str(e)
        raise StartupError(f"cannot bind to --host {host} ({why}); pass an address of this "
                           "machine (127.0.0.1, or 0.0.0.0 for every interface)") from None


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


__all__ = ["StartupError", "check_clickhouse", "check_command", "check_host", "check_kafka",
           "check_metadata", "chdb_owner", "chdb_path", "port_error", "port_taken", "redact",
           "unreachable"]
