"""Start and stop `metricflow serve` processes (the serving benchmark and its tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

_READY = re.compile(r"^metricflow serve: deployment \S+ on http://([0-9.]+):(\d+)")


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_serve(deployment: str, control_url: str, tracking_uri: str | None, *,
                extra: list[str] | None = None, log_dir: str | None = None,
                timeout_s: float = 180.0) -> ServeProcess:
    """Start `metricflow serve --port 0` and wait for its ready line."""
    cmd = [sys.executable, "-m", "metricflow.server.cli", "serve", "--deployment", deployment,
           "--port", "0", "--control-url", control_url, *(extra or [])]
    if tracking_uri:
        cmd += ["--tracking-uri", tracking_uri]
    else:
        cmd += ["--no-log-predictions"]
    fd, log_path = tempfile.mkstemp(prefix=f"serve-{deployment}-", suffix=".log", dir=log_dir)
    os.close(fd)
    env = {**os.environ, "MLFLOW_TRACKING_URI": control_url, "MLFLOW_REGISTRY_URI": control_url}
    with open(log_path, "w") as out:  # the child keeps its own handle
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            text = f.read()
        for line in text.splitlines():
            m = _READY.match(line)
            if m:
                return ServeProcess(proc, int(m.group(2)), log_path)
        if proc.poll() is not None:
            raise RuntimeError(f"metricflow serve exited with {proc.returncode}:\n"
                               f"{text[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"metricflow serve did not become ready in {timeout_s}s")
