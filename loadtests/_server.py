"""Start and stop a `metricflow server` subprocess for benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    grpc_port: int
    http_port: int
    data_dir: str
    owns_data: bool = False
    """`start_server` made `data_dir`: `stop` removes it (benchmarks left ~60 MB each
    behind in the temp dir, 32 GB on this machine by 2026-12-07)."""

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the server process in MiB, from /proc."""
        cur = peak = 0.0
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        cur = int(line.split()[1]) / 1024
                    elif line.startswith("VmHWM:"):
                        peak = int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
        return cur, peak

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def renice(self, by: int) -> list[int]:
        """Raise the niceness of every thread of the server by `by` (at most 19; threads
        it starts later inherit their creator's). Returns each thread's niceness as read
        back from /proc. Lowering it again needs privilege (CAP_SYS_NICE)."""
        task = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(task):
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # just ended
                t = int(tid)
                os.setpriority(os.PRIO_PROCESS, t, min(19, os.getpriority(os.PRIO_PROCESS, t) + by))
        out = []
        for tid in os.listdir(task):
            with contextlib.suppress(FileNotFoundError), open(f"{task}/{tid}/stat") as f:
                out.append(int(f.read().rsplit(")", 1)[1].split()[16]))
        return out

    def settle(self, quiet_cpu_s: float = 0.02, step_s: float = 0.5,
               max_s: float = 30.0) -> float:
        """Wait until the server is about idle (less than `quiet_cpu_s` of CPU in
        `step_s`), e.g. done with a backlog of inserts; returns the seconds waited."""
        t0 = time.monotonic()
        last = self.cpu_s()
        while time.monotonic() - t0 < max_s:
            time.sleep(step_s)
            now = self.cpu_s()
            if now - last < quiet_cpu_s:
                break
            last = now
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start_server(data_dir: str | None = None, extra_args: list[str] | None = None,
                 timeout_s: float = 120.0) -> ServerProcess:
    """Start the embedded server on free ports and wait for its ready line. Without
    `data_dir`, in a new temporary directory that `stop` removes."""
    owns = data_dir is None
    data_dir = data_dir or tempfile.mkdtemp(prefix="metricflow-bench-")
    cmd = [sys.executable, "-m", "metricflow.server.cli", "server", "--data-dir", data_dir,
           "--grpc-port", "0", "--http-port", "0", *(extra_args or [])]
    # stderr goes to an unnamed temp file: a server that fails to start says why there.
    err = tempfile.TemporaryFile(mode="w+")  # the process inherits it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            err.seek(0)
            lines = [ln.strip() for ln in err.read().splitlines() if ln.strip()]
            err.close()
            why = f": {lines[-1]}" if lines else ""
            raise RuntimeError(f"metricflow server exited with {code}{why}")
        if line.startswith("{"):
            info = json.loads(line)
            if info.get("event") == "ready":
                err.close()  # the server keeps its own handle
                return ServerProcess(proc, info["grpc_port"], info["http_port"], data_dir,
                                     owns)
    proc.kill()
    raise RuntimeError("metricflow server did not become ready")
