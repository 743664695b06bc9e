"""Helpers of the alerts tests: a `metricflow <role>` process, a local webhook receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests


class Proc:
    """One `metricflow <role>` subprocess; ports from its ready line."""

    def __init__(self, role: str, args: list[str], log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.role, self.log_path = role, log
        self._log = open(log, "ab")  # closed in stop()
        cmd = [sys.executable, "-m", "metricflow.server.cli", role, "--grpc-port", "0",
               "--http-port", "0", "--no-uvloop", *args]
        e = dict(os.environ if env is None else env)
        e.pop("METRICFLOW_CLICKHOUSE_DSN", None)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=e,
                                     text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self._log.close()
                raise RuntimeError(f"{role} exited with {self.proc.wait()}: "
                                   f"{log.read_text()[-3000:]}")
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                self.info: dict[str, Any] = json.loads(line)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not become ready")
        self.grpc_port, self.http_port = self.info["grpc_port"], self.info["http_port"]
        self.base = f"http://127.0.0.1:{self.http_port}"

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = requests.request(method, self.base + "/api/v1" + path, json=body,
                             params=params or None, timeout=30)
        assert r.status_code < 400, (r.status_code, r.text)
        return r.json()

    def ready(self) -> bool:
        try:
            return requests.get(self.base + "/ready", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Receiver:
    """A local HTTP server that records every POST (receipt time, headers, body).

    `respond(n)` decides the status of the n-th request (0-based); `hang` makes every
    request wait until released (a receiver that accepts and never answers).
    """

    def __init__(self, respond: Callable[[int], int] = lambda n: 200) -> None:
        self.got: list[dict[str, Any]] = []
        self.respond_codes: list[int] = []  # the status answered to got[i]
        self.respond = respond
        self.hang = threading.Event()  # set: requests hang until `release` is set
        self.release = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                t = time.time()
                with outer._lock:
                    n = len(outer.got)
                    outer.got.append({"t": t, "headers": dict(self.headers), "body": body,
                                      "json": json.loads(body)})
                    code = outer.respond(n)
                    outer.respond_codes.append(code)
                if outer.hang.is_set():
                    outer.release.wait(60)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [g["json"] for g in self.got if name is None or g["json"].get("event") == name]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()  # refuse connections (not leave them in the backlog)


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `cond` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except Exception as e:  # not there yet
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
