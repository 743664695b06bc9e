"""A client keeps delivering across server restarts, and says so when it cannot.

`metricflow server` (or, in Kafka mode, `metricflow ingest`) runs as a real
subprocess on fixed ports. While a client logs a known set of points it is
killed (SIGKILL) or stopped (SIGTERM) and restarted on the same ports and data,
twice per test. The stored count and sum are then compared exactly: nothing
lost, nothing twice. A server that stays down makes flush() and close() raise
DeliveryError naming the cause, and `health` shows it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import metricflow as mf
from metricflow.client._sender import Sender
from metricflow.errors import DeliveryError, MetricflowError

pytestmark = pytest.mark.timeout(240)

METRICFLOW = str(Path(sys.executable).with_name("metricflow"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class Proc:
    """One `metricflow <role> ...` subprocess, restartable with the same arguments."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.log_path, self.env = args, log_path, env
        self.proc: subprocess.Popen[str] | None = None
        self.grpc_port = 0
        self.start()

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([METRICFLOW, *self.args], stdout=subprocess.PIPE,
                                         stderr=log, env=self.env, text=True)
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                self.grpc_port = json.loads(line)["grpc_port"]
                return
        raise RuntimeError(f"{self.args[0]} exited with {self.proc.wait()}; see {self.log_path}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Plan:
    """`runs` runs of `steps` steps of `keys` keys, values from a seed."""

    def __init__(self, runs: int, steps: int, keys: int = 10) -> None:
        self.runs, self.steps, self.keys = runs, steps, keys
        self.values = [np.random.default_rng(11 + r).random((steps, keys)) for r in range(runs)]
        self.run_ids: list[str] = []

    @property
    def points(self) -> int:
        return self.runs * self.steps * self.keys

    @property
    def checksum(self) -> float:
        return float(sum(v.sum() for v in self.values))


class Logger(threading.Thread):
    """Logs a plan (the runs' steps interleaved), never past the points `allowed` so far.

    The test raises `allowed` step by step, so logging is still going on at every
    kill. It is paced (`pace(points_per_s)`) so that it also goes on while the
    server stops and is down, when the sender writes on a broken stream.
    """

    def __init__(self, client: mf.Client, plan: Plan) -> None:
        super().__init__(daemon=True)
        self.client, self.plan = client, plan
        self.logged = 0
        self.allowed = 0
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self.pace(50_000)

    def allow(self, points: int) -> None:
        with self._cond:
            self.allowed = min(points, self.plan.points)
            self._cond.notify_all()

    def pace(self, points_per_s: float) -> None:
        self._rate, self._since, self._base = points_per_s, time.monotonic(), self.logged

    def run(self) -> None:
        p = self.plan
        names = [f"m{k}" for k in range(p.keys)]
        rows = [v.tolist() for v in p.values]
        try:
            for step in range(p.steps):
                for r in range(p.runs):
                    if self.logged + p.keys > self.allowed:
                        with self._cond:
                            while self.logged + p.keys > self.allowed:
                                self._cond.wait()
                        self.pace(self._rate)
                    while self.logged - self._base > self._rate * (
                            time.monotonic() - self._since):
                        time.sleep(0.005)
                    self.client.log_metrics(p.run_ids[r], dict(zip(names, rows[r][step])),
                                            step=step)
                    self.logged += p.keys
        except BaseException as e:  # reported by the test
            self.error = e


def unacked_bytes(c: mf.Client) -> int:
    return c.health.unacked_bytes


def log_through_restarts(client: mf.Client, plan: Plan, restart: Callable[[], None],
                         kills: int = 2) -> list[int]:
    """Log `plan` while `restart()` takes the server down and up `kills` times.

    Returns the unacknowledged bytes seen just before each kill.
    """
    logger = Logger(client, plan)
    logger.start()
    part = plan.points // (kills + 1)
    seen = []
    for i in range(1, kills + 1):
        # Logging continues half a part past the kill, into the buffer.
        logger.allow(i * part + part // 2)
        wait_for(lambda i=i: logger.logged >= i * part or logger.error is not None, 60,
                 f"{i * part} points logged")
        wait_for(lambda: unacked_bytes(client) > 0 or logger.logged >= logger.allowed, 5,
                 "points in flight")
        seen.append(unacked_bytes(client))
        # Slowly on while the server stops (SIGTERM: up to its 5 s grace) and is down.
        logger.pace(5_000)
        restart()
        logger.pace(50_000)
    logger.allow(plan.points)
    logger.join(120)
    assert not logger.is_alive(), "the logger did not finish"
    assert logger.error is None, f"log_metrics raised {logger.error!r}"
    return seen


def assert_exact(reads: mf.Client, plan: Plan) -> None:
    count, total = reads.count_points(plan.run_ids)
    assert count == plan.points, f"stored {count} points, logged {plan.points}"
    assert total == pytest.approx(plan.checksum, rel=1e-12), "sum of values differs"


# ------------------------------------------------------------ embedded server
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_server_restarts_mid_write_store_every_point_once(tmp_path: Path, sig: int) -> None:
    port = _free_port()
    srv = Proc(["server", "--data-dir", str(tmp_path / "data"), "--grpc-port", str(port),
                "--http-port", "-1"], tmp_path / "server.log")
    client = mf.Client(srv.uri, block_timeout_s=120)  # default linger and batch size
    try:
        plan = Plan(runs=4, steps=5000)  # 200k points
        plan.run_ids = [client.create_run("0", run_name=f"r{r}").run_id
                        for r in range(plan.runs)]

        def restart() -> None:
            srv.signal(sig)
            srv.start()
            assert srv.grpc_port == port

        seen = log_through_restarts(client, plan, restart)
        client.flush(60)
        h = client.health
        assert h.state == "connected", h
        assert h.unacked_bytes == 0 and h.unacked_batches == 0, h
        assert h.failing_since is None, h
        assert h.reconnects >= 2, h  # one broken stream per restart at least
        assert h.last_error, h
        assert h.acked_points >= plan.points, h  # resent batches may be acked twice
        for rid in plan.run_ids:
            client.set_terminated(rid)
        assert_exact(client, plan)
    finally:
        client.close(10)
        srv.stop()
    assert any(seen), f"no kill found points in flight: {seen}"


# ---------------------------------------------------------- Kafka ingest node
@pytest.fixture
def kafka_roles(tmp_path: Path, kafka_bootstrap: str,
                kafka_topic_prefix: str) -> Iterator[Callable[..., Proc]]:
    env = dict(os.environ)
    env["METRICFLOW_METADATA_URI"] = f"sqlite:///{tmp_path}/metadata.db"
    env.pop("METRICFLOW_CLICKHOUSE_DSN", None)
    kafka = ["--kafka", kafka_bootstrap, "--topic",
             f"{kafka_topic_prefix}restart-{uuid.uuid4().hex[:8]}", "--partitions", "2"]
    procs: list[Proc] = []

    def start(role: str, *args: str) -> Proc:
        p = Proc([role, *kafka, *args], tmp_path / f"{role}.log", env)
        procs.append(p)
        return p

    yield start
    for p in reversed(procs):
        p.stop()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_ingest_node_restarts_mid_write_store_every_point_once(
        tmp_path: Path, kafka_roles: Callable[..., Proc], sig: int) -> None:
    writer = kafka_roles("writer", "--clickhouse", f"chdb://{tmp_path}/ch", "--serve-query",
                         "--linger-ms", "50", "--grpc-port", "0", "--http-port", "0")
    port = _free_port()
    ingest = kafka_roles("ingest", "--grpc-port", str(port), "--http-port", "0")
    client = mf.Client(ingest.uri, block_timeout_s=120)
    reads = mf.Client(writer.uri)
    try:
        plan = Plan(runs=4, steps=3000)  # 120k points
        plan.run_ids = [client.create_run("0", run_name=f"r{r}").run_id
                        for r in range(plan.runs)]

        def restart() -> None:
            ingest.signal(sig)
            ingest.start()
            assert ingest.grpc_port == port

        seen = log_through_restarts(client, plan, restart)
        client.flush(60)
        h = client.health
        assert h.reconnects >= 2 and h.unacked_bytes == 0 and h.failing_since is None, h
        wait_for(lambda: reads.count_points(plan.run_ids)[0] >= plan.points, 60,
                 "the writer to store every point")
        assert_exact(reads, plan)
    finally:
        client.close(10)
        reads.close(10)
    assert any(seen), f"no kill found points in flight: {seen}"


# ------------------------------------------------------ a server that stays down
def test_server_that_stays_down_makes_flush_and_close_raise_with_the_cause() -> None:
    port = _free_port()  # nothing listens here
    client = mf.Client(f"grpc://127.0.0.1:{port}", linger_ms=5, block_timeout_s=5)
    run_id = uuid.uuid4().hex
    for step in range(100):
        client.log_metrics(run_id, {"loss": 1.0 / (step + 1), "acc": 0.5}, step=step)
    wait_for(lambda: client.health.reconnects >= 2, 30, "two failed connection attempts")

    with pytest.raises(DeliveryError) as ei:
        client.flush(timeout=0.5)
    err = ei.value
    assert err.code.value == "UNAVAILABLE" and err.retriable
    assert "flush timed out after 0.5s" in str(err)
    assert f"127.0.0.1:{port}" in str(err) and "UNAVAILABLE" in str(err)
    assert "failing for" in str(err)
    h = client.health
    assert err.details["health"].unacked_bytes == h.unacked_bytes > 0
    assert h.state == "reconnecting", h
    assert h.failing_since is not None and h.failing_since <= time.time()
    assert h.failing_for_s > 0
    assert h.last_error.startswith("UNAVAILABLE"), h
    assert h.acked_points == 0

    # The points are still held and retried: a later flush fails the same way.
    with pytest.raises(DeliveryError):
        client.flush(timeout=0.2)
    with pytest.raises(DeliveryError, match="close gave up after 0.3s; these points are "
                                            "dropped"):
        client.close(timeout=0.3)
    assert client.health.state == "failed"
    with pytest.raises(MetricflowError, match="closed"):
        client.log_metrics(run_id, {"loss": 0.0}, step=100)
    client.close()  # a second close does nothing


def test_a_dead_sender_thread_fails_every_later_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Sender, e: BaseException, delay: float) -> None:
        raise RuntimeError("bug in the retry path")

    monkeypatch.setattr(Sender, "_stream_failed", broken)
    client = mf.Client(f"grpc://127.0.0.1:{_free_port()}", linger_ms=5, block_timeout_s=5)
    run_id = uuid.uuid4().hex
    wait_for(lambda: client.health.state == "failed", 30, "the sender thread to die")
    for call in (lambda: client.log_metrics(run_id, {"loss": 2.0}, step=1),
                 lambda: client.flush(5), lambda: client.log_param(run_id, "lr", 0.1)):
        with pytest.raises(DeliveryError, match="sender thread stopped unexpectedly.*"
                                                "RuntimeError: bug in the retry path"):
            call()
    with pytest.raises(DeliveryError, match="sender thread stopped"):
        client.close(timeout=5)
