"""Shared helpers for the local service launchers: ports, cache dir, child processes."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

LOOPBACK = "127.0.0.1"

_PR_SET_PDEATHSIG = 1


class DevServiceError(RuntimeError):
    """A local service could not be installed, started or stopped."""


class Stoppable(Protocol):
    """Anything the exit hook must stop: a launcher that owns processes."""

    def close(self) -> None:
        """Stop every process the launcher owns; safe to call twice."""


_live: weakref.WeakSet[Stoppable] = weakref.WeakSet()
_live_lock = threading.Lock()


def register_for_exit(owner: Stoppable) -> None:
    """Make sure `owner.close()` runs when the interpreter exits."""
    with _live_lock:
        _live.add(owner)


def unregister_for_exit(owner: Stoppable) -> None:
    """Forget an owner that has already stopped its processes."""
    with _live_lock:
        _live.discard(owner)


@atexit.register
def _close_all_at_exit() -> None:
    with _live_lock:
        owners = list(_live)
    for owner in owners:
        with contextlib.suppress(Exception):
            owner.close()


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def random_suffix(nbytes: int = 4) -> str:
    """Return a short lowercase hex string for fresh topic, database and bucket names."""
    return secrets.token_hex(nbytes)


def repo_root() -> Path | None:
    """Return the metricflow checkout this package runs from, if it runs from one."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "deploy" / "local" / "kafka" / "pom.xml").is_file():
            return parent
    return None


def cache_dir() -> Path:
    """Return the git-ignored cache for downloads (`METRICFLOW_DEVSERVICES_CACHE` overrides)."""
    override = os.environ.get("METRICFLOW_DEVSERVICES_CACHE")
    if override:
        path = Path(override)
    else:
        root = repo_root()
        path = (
            (root / ".cache" / "devservices")
            if root
            else (Path.home() / ".cache" / "metricflow" / "devservices")
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock so concurrent installers do the work once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_prctl() -> Callable[..., int] | None:
    # Resolved in the parent: dlopen/dlsym between fork and exec could deadlock on a
    # loader lock held by another thread at fork time.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if this Python process dies, even by
    # SIGKILL, the kernel kills the service too, so no JVM or postmaster is left behind.
    # Linux ties this to the *thread* that forked: start services from a long-lived
    # thread (the main thread in pytest and the CLI), not a short-lived worker.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _as_user_then_die_with_parent(uid: int, gid: int) -> Callable[[], None]:
    def preexec() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        # Changing credentials clears the parent-death signal, so set it afterwards.
        _die_with_parent()

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    run_as: tuple[int, int] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a service process bound to our lifetime, stdout+stderr appended to `log_path`.

    Args:
        argv: Program and arguments.
        log_path: File that receives the process output.
        env: Full environment, or None to inherit ours.
        cwd: Working directory.
        run_as: (uid, gid) to switch to before exec, e.g. the `postgres` user.
    """
    # Python code between fork and exec (preexec_fn) can crash or hang the child when
    # other threads (gRPC, chDB) held locks at fork time: a segfault was seen in CI.
    # util-linux `setpriv` sets the parent-death signal (and the user) after exec instead.
    setpriv = shutil.which("setpriv")
    preexec = None
    if setpriv is not None:
        prefix = [setpriv]
        if run_as:
            prefix += [f"--reuid={run_as[0]}", f"--regid={run_as[1]}", "--clear-groups"]
        argv = [*prefix, "--pdeathsig=KILL", "--", *argv]
    else:
        preexec = _as_user_then_die_with_parent(*run_as) if run_as else _die_with_parent
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            preexec_fn=preexec,
            # Own process group: a Ctrl-C in the terminal reaches only our CLI, which
            # then stops the service in order instead of the service dying half-way.
            start_new_session=True,
        )


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> int:
    """Send `sig`, wait up to `timeout` seconds, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    return int(proc.returncode)


def tail(path: Path, nbytes: int = 4000) -> str:
    """Return the end of a log file for error messages."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - nbytes))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return "<no log>"


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `ready()` until it returns True; fail fast if `proc` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            log = tail(log_path) if log_path else ""
            raise DevServiceError(f"{what} exited with code {proc.returncode}.\n{log}")
        if time.monotonic() > deadline:
            log = tail(log_path) if log_path else ""
            raise DevServiceError(f"{what} not ready after {timeout:.0f}s.\n{log}")
        time.sleep(interval)


def run_checked(argv: Sequence[str], *, what: str, **kwargs: object) -> str:
    """Run a short command; raise DevServiceError with its output if it fails."""
    result = subprocess.run(  # checked below, with the output in the message
        list(argv),
        capture_output=True,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        raise DevServiceError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return str(result.stdout)


_OWNER_FILE = "owner.pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_workdir(prefix: str) -> Path:
    """Create a temp dir tagged with our PID, first removing dirs of dead owners.

    A SIGKILLed test run cannot clean up after itself (its services die with it
    through PDEATHSIG, but their dirs stay), so the next run sweeps them.
    """
    tmp = Path(tempfile.gettempdir())
    for stale in tmp.glob(f"{prefix}*"):
        try:
            owner = int((stale / _OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            shutil.rmtree(stale, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    return path


class ManagedService:
    """Context-manager protocol of the launchers: `start()` on enter, `close()` on exit.

    A start that fails part-way still closes, so no process or temp dir leaks.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
