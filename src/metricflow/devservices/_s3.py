"""An S3-compatible HTTP endpoint (moto's server mode) on 127.0.0.1."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from metricflow.devservices._common import (
    LOOPBACK,
    DevServiceError,
    ManagedService,
    free_port,
    make_workdir,
    random_suffix,
    register_for_exit,
    spawn,
    stop_process,
    unregister_for_exit,
    wait_until,
)

S3Mode = Literal["process", "thread"]


@dataclass(frozen=True)
class S3Credentials:
    """Keys and region for an S3 endpoint (moto accepts any keys)."""

    access_key: str = "testing"
    """AWS_ACCESS_KEY_ID."""
    secret_key: str = "testing"
    """AWS_SECRET_ACCESS_KEY."""
    region: str = "us-east-1"
    """AWS region; us-east-1 needs no LocationConstraint when creating buckets."""

    def as_env(self) -> dict[str, str]:
        """Return the AWS_* environment variables for these credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }


def s3_client(endpoint_url: str, credentials: S3Credentials | None = None) -> Any:
    """Return a boto3 S3 client for `endpoint_url` (path-style addressing)."""
    import boto3  # lazy: a server extra
    from botocore.config import Config

    creds = credentials or S3Credentials()
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        region_name=creds.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def create_bucket(
    endpoint_url: str, name: str | None = None, credentials: S3Credentials | None = None
) -> str:
    """Create a bucket (a random `test-<hex>` name when None) and return its name."""
    bucket = name or f"test-{random_suffix()}"
    creds = credentials or S3Credentials()
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if creds.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": creds.region}
    s3_client(endpoint_url, creds).create_bucket(**kwargs)
    return bucket


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return 200 <= int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


class S3Server(ManagedService):
    """moto's S3 server on 127.0.0.1; objects live in memory.

    mode="process" (default) runs `python -m moto.server` as a child process: it can
    be killed and restarted (empty again, on the same port) and does not share our
    GIL, which matters for benchmarks. mode="thread" runs it in this process, which
    starts faster.
    """

    def __init__(
        self,
        *,
        mode: S3Mode = "process",
        port: int | None = None,
        credentials: S3Credentials | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """Configure (but do not start) a server.

        Args:
            mode: "process" or "thread", see the class docstring.
            port: TCP port; a free one when None.
            credentials: Keys that `client()` and `create_bucket()` use.
            startup_timeout: Seconds to wait for the first HTTP answer.
        """
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")
        self.mode: S3Mode = mode
        self.port = port or (0 if mode == "thread" else free_port())
        self.credentials = credentials or S3Credentials()
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread_server: Any = None
        self._workdir: Path | None = None
        self.last_startup_seconds: float | None = None

    @property
    def endpoint_url(self) -> str:
        """HTTP endpoint for boto3's `endpoint_url`."""
        if self.port == 0:
            raise DevServiceError("S3Server is not started")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the server answers (process alive or thread serving)."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self._thread_server is not None

    @property
    def pid(self) -> int | None:
        """PID of the server process (mode="process"), else None."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def log_path(self) -> Path | None:
        """Server output file in process mode."""
        return self._workdir / "moto.log" if self._workdir else None

    def _start_process(self) -> None:
        if self._workdir is None:
            self._workdir = make_workdir("mf-s3-")
        log_path = self._workdir / "moto.log"
        self._proc = spawn(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            log_path=log_path,
        )
        register_for_exit(self)
        wait_until(
            lambda: _http_ok(f"{self.endpoint_url}/moto-api/"),
            timeout=self._timeout,
            what=f"moto S3 server on {self.endpoint_url}",
            proc=self._proc,
            log_path=log_path,
        )

    def _start_thread(self) -> None:
        from moto.server import ThreadedMotoServer  # lazy: moto is a dev extra

        # werkzeug logs every request at INFO to stderr; keep test output readable.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)

        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        server.start()
        self._thread_server = server
        self.port = int(server.get_host_and_port()[1])
        register_for_exit(self)

    def start(self) -> S3Server:
        """Start the server and wait until it answers HTTP."""
        if self.running:
            return self
        started = time.monotonic()
        if self.mode == "process":
            self._start_process()
        else:
            self._start_thread()
        self.last_startup_seconds = time.monotonic() - started
        return self

    def client(self) -> Any:
        """Return a boto3 S3 client for this server."""
        return s3_client(self.endpoint_url, self.credentials)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (random name when None) and return its name."""
        return create_bucket(self.endpoint_url, name, self.credentials)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Stop the server (all objects are lost). Returns the exit code in process mode."""
        if self._thread_server is not None:
            self._thread_server.stop()
            self._thread_server = None
            return 0
        if self._proc is None:
            return None
        code = stop_process(self._proc, sig, timeout=timeout)
        self._proc = None
        return code

    def close(self) -> None:
        """Stop the server and remove its temp dir."""
        # Memory-only state, so there is nothing to flush: don't wait long for
        # werkzeug to drain idle keep-alive connections.
        self.stop(timeout=3.0)
        unregister_for_exit(self)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __repr__(self) -> str:
        where = f"http://{LOOPBACK}:{self.port}" if self.port else "unstarted"
        return f"S3Server({where}, mode={self.mode}, running={self.running})"
