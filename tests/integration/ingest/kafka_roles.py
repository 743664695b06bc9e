"""Helpers for the Kafka pipeline tests: role subprocesses and deterministic logging clients."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LAUNCHER = str(Path(__file__).with_name("_writer_launcher.py"))


class RoleProc:
    """One `metricflow <role>` subprocess (through the fault-injecting launcher)."""

    def __init__(self, role: str, args: list[str], control: Path, env: dict[str, str],
                 log_path: Path, prefix: tuple[str, ...] = ()) -> None:
        self.role, self.control = role, control
        self._log = open(log_path, "ab")  # closed in stop()
        # `prefix` wraps the command, e.g. `ip netns exec <ns>`; a later --grpc-port or
        # --http-port in `args` wins over the defaults here.
        cmd = [*prefix, sys.executable, LAUNCHER, str(control), role, "--grpc-port", "0",
               "--http-port", "0", "--no-uvloop", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=env,
                                     text=True)
        deadline = time.monotonic() + 90
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{role} exited with {self.proc.wait()}; see {log_path}")
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                info = json.loads(line)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not become ready")
        self.grpc_port, self.http_port = info["grpc_port"], info["http_port"]

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            return r.read().decode()

    def stats(self) -> dict:
        return json.loads(self.get("/stats"))

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of a Prometheus sample family (optionally filtered by a label substring)."""
        total = 0.0
        for line in self.get("/metrics").splitlines():
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
            if m and labels in (m.group(1) or ""):
                total += float(m.group(2))
        return total

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or committed."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def wait_for(cond: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Plan:
    """Deterministic points: run r logs `steps` steps of `keys` keys; values from a seed."""

    runs: int
    steps: int
    keys: int = 10
    seed: int = 7
    run_ids: list[str] = field(default_factory=list)

    @property
    def points(self) -> int:
        return self.runs * self.steps * self.keys

    def values(self, r: int) -> np.ndarray:
        return np.random.default_rng(self.seed + r).random((self.steps, self.keys)) * 100

    @property
    def checksum(self) -> float:
        return float(sum(self.values(r).sum() for r in range(self.runs)))


def log_plan(client: object, plan: Plan, pause_every: int = 0, pause_s: float = 0.0,
             start: threading.Event | None = None) -> None:
    """Log the plan through `client` from one thread per run, then flush."""
    names = [f"m{k}" for k in range(plan.keys)]

    def one(r: int) -> None:
        vals = plan.values(r).tolist()
        for step in range(plan.steps):
            client.log_metrics(plan.run_ids[r], dict(zip(names, vals[step])), step=step)  # type: ignore[attr-defined]
            if pause_every and step % pause_every == pause_every - 1:
                time.sleep(pause_s)

    if start is not None:
        start.wait()
    threads = [threading.Thread(target=one, args=(r,)) for r in range(plan.runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.flush(timeout=120)  # type: ignore[attr-defined]


def child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["METRICFLOW_METADATA_URI"] = f"sqlite:///{tmp}/metadata.db"
    env.pop("METRICFLOW_CLICKHOUSE_DSN", None)
    return env
