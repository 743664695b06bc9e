"""The client spool, offline mode and `metricflow sync` against real processes.

`metricflow server` runs as a subprocess; training code runs in this process or
in a child that is SIGKILLed; `metricflow sync` runs as the real CLI. Every
check compares what the server stores (exact count and sum, params, tags,
status, artifacts) with what was logged or spooled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import metricflow as mf
from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow.client._spool import KIND_METRICS, Spool, list_segments
from metricflow.client._sync import find_spools

pytestmark = pytest.mark.timeout(300)

METRICFLOW = str(Path(sys.executable).with_name("metricflow"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Server:
    """`metricflow server` on a fixed port and data dir, restartable."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.args = [METRICFLOW, "server", "--data-dir", str(tmp / "data"), "--grpc-port",
                     str(self.port), "--http-port", "-1"]
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log,
                                         text=True)
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                return
        raise RuntimeError(f"server exited with {self.proc.wait()}; see {self.log}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


def run_sync(spool: Path, uri: str) -> dict:
    out = subprocess.run([METRICFLOW, "sync", str(spool), "--tracking-uri", uri, "--json"],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, out.stdout
    return dict(json.loads(lines[0]))


def spooled_points(root: Path) -> tuple[int, float]:
    """Count and sum of the points in the readable metric frames of every spool below root."""
    n, total = 0, 0.0
    for d in find_spools(str(root)):
        sp = Spool(d, create=False)
        try:
            for f in sp.frames():
                if f.kind == KIND_METRICS:
                    v = np.frombuffer(pb.WriteBatch.FromString(f.payload).metrics.values, "<f8")
                    n += len(v)
                    total += float(v.sum())
        finally:
            sp.close()
    return n, total


# ------------------------------------------------------- outage while logging
@pytest.mark.parametrize("how", ["sigkill", "sigstop"])
def test_a_server_outage_is_spooled_and_every_point_is_stored_once(
        tmp_path: Path, server: Server, how: str) -> None:
    """Killed (then restarted) or frozen (SIGSTOP, then SIGCONT) in the middle of logging."""
    spool_root = tmp_path / "spool"
    client = mf.Client(server.uri, spool_dir=str(spool_root), buffer_bytes=2 << 20,
                       linger_ms=20, block_timeout_s=60)
    steps, keys = 30_000, 10
    values = np.random.default_rng(7).random((steps, keys))
    names = [f"m{k}" for k in range(keys)]
    run = client.create_run("0", run_name="outage")
    client.log_params(run.run_id, {"lr": 0.1})
    third = steps // 3
    try:
        for s in range(third):
            client.log_metrics(run.run_id, dict(zip(names, values[s].tolist())), step=s)
        if how == "sigkill":
            server.signal(signal.SIGKILL)
        else:
            server.signal(signal.SIGSTOP)
        t0 = time.monotonic()
        for s in range(third, 2 * third):
            client.log_metrics(run.run_id, dict(zip(names, values[s].tolist())), step=s)
        # Run records during the outage go to the spool, in order, and return.
        client.log_params(run.run_id, {"during": "outage"})
        client.set_tag(run.run_id, "phase", "down")
        wait_for(lambda: client.health.spooling, 30, "the client to spool")
        assert time.monotonic() - t0 < 45, "logging during the outage was not spooled"
        (own,) = find_spools(str(spool_root))
        assert list_segments(own), "nothing was written to the spool"
        assert client.health.spool_pending_bytes > 0
        # Nothing of the outage's points is held in memory beyond the buffer.
        assert client.health.unacked_bytes <= 2 << 20
        if how == "sigkill":
            server.start()
        else:
            server.signal(signal.SIGCONT)
        for s in range(2 * third, steps):
            client.log_metrics(run.run_id, dict(zip(names, values[s].tolist())), step=s)
        client.flush(120)
        wait_for(lambda: not client.health.spooling, 120, "the spool to drain")
        client.set_terminated(run.run_id)
        count, total = client.count_points([run.run_id])
        assert count == steps * keys, f"stored {count} points, logged {steps * keys}"
        assert total == pytest.approx(float(values.sum()), rel=1e-12)
        got = client.get_run(run.run_id)
        assert got.params == {"lr": "0.1", "during": "outage"}
        assert got.tags["phase"] == "down"
        assert got.info.status == "FINISHED"
        assert got.metrics["m3"].count == steps
    finally:
        client.close(30)
    assert not os.path.exists(own), "a drained spool is removed at close"


# ------------------------------------- the catch-up stays within the buffer
@pytest.mark.parametrize("drop_when_full", [False, True])
def test_a_catch_up_holds_no_more_than_the_buffer(tmp_path: Path, server: Server,
                                                  drop_when_full: bool) -> None:
    """The spool drains a backlog 16x the buffer while the trainer keeps logging: the
    frames read back and in flight plus the live buffer never pass buffer_bytes (the
    sender's own count, and the in-flight map sampled from outside), and every point
    arrives once. With drop_when_full a log call never waits: frames in flight never
    make it drop a point (the spool has room), and they add at most one more buffer."""
    import threading

    budget = 4 << 20
    bound = 2 * budget if drop_when_full else budget
    client = mf.Client(server.uri, spool_dir=str(tmp_path / "spool"),
                       buffer_bytes=budget, batch_points=8192, linger_ms=20,
                       block_timeout_s=120, drop_when_full=drop_when_full)
    sender, acc = client._sender, client._acc
    names = [f"m{k}" for k in range(10)]
    row = {k: float(i) for i, k in enumerate(names)}
    run = client.create_run("0", run_name="catch-up")
    step = 0
    seen = {"held": 0, "drain": 0}
    stop = threading.Event()

    def sample() -> None:  # what the client holds, counted from the in-flight map
        while not stop.wait(0.001):
            try:
                drain = sum(i.nbytes for i in list(sender._inflight.values())
                            if i.spool_pos is not None)
            except RuntimeError:  # changed by the sender thread meanwhile
                continue
            seen["drain"] = max(seen["drain"], drain)
            seen["held"] = max(seen["held"], drain + acc.used_bytes)

    def log(n: int) -> None:
        nonlocal step
        for _ in range(n):
            client.log_metrics(run.run_id, row, step=step)
            step += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        log(1000)
        server.signal(signal.SIGKILL)
        while client._spool is None or client._spool.appended_bytes < 16 * budget:
            log(1000)
        assert sender.spooling
        # A drop-mode client may drop during the outage before the spool is engaged
        # (unacked batches fill its buffer); the catch-up must drop nothing (the spool
        # has room, and a full buffer is spilled by the log call itself).
        dropped_in_outage = acc.dropped_points
        server.start()
        wait_for(lambda: client.health.state == "connected", 60, "the stream to reconnect")
        for _ in range(300):  # keep logging through (a part of) the catch-up
            if not sender.spooling:
                break
            log(1000)
            if drop_when_full:
                time.sleep(0.002)  # a trainer's pace, so the live buffer alone never fills
        client.flush(120)
        wait_for(lambda: not sender.spooling, 120, "the spool to drain")
        stop.set()
        sampler.join()
        count, total = client.count_points([run.run_id])
        assert acc.dropped_points == dropped_in_outage, "points dropped during the catch-up"
        kept = step * len(names) - acc.dropped_points
        assert count == kept, f"stored {count} points, logged {step * 10}, kept {kept}"
        assert total == pytest.approx(kept / len(names) * sum(row.values()), rel=1e-12)
        assert seen["drain"] > 0, "no spool frame was seen in flight: nothing was tested"
        # The outside sample reads the in-flight map and the buffer one after the other,
        # not at one instant: allow it one frame (a quarter of the buffer at most). The
        # client's own count, kept under its lock, must hold the bound exactly.
        assert seen["held"] <= bound + budget // 4, f"held {seen['held']} bytes, bound {bound}"
        assert acc.peak_held_bytes <= bound, (acc.peak_held_bytes, bound)
        assert acc.drain_overruns == 0
        assert acc.drain_bytes == 0
    finally:
        stop.set()
        client.close(30)


# ------------------------------------------- a trainer SIGKILLed mid-spool
TRAINER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import metricflow as mf
    c = mf.Client(offline=True, spool_dir=sys.argv[1], linger_ms=5)
    run = c.create_run("0", run_name="killed")
    c.log_params(run.run_id, {"seed": 3})
    rng = np.random.default_rng(3)
    step = 0
    while True:
        for _ in range(500):
            c.log_metrics(run.run_id, {"loss": float(rng.random()), "acc": float(rng.random())},
                          step=step)
            step += 1
        c.flush()  # spooled and fsync'd: these points must survive the kill
        print(json.dumps({"run_id": run.run_id, "flushed_points": step * 2}), flush=True)
""")


def test_a_trainer_killed_mid_spool_loses_nothing_it_spooled(tmp_path: Path,
                                                            server: Server) -> None:
    spool_root = tmp_path / "spool"
    env = {**os.environ, "METRICFLOW_SPOOL_FSYNC_S": "0.05"}
    child = subprocess.Popen([sys.executable, "-c", TRAINER, str(spool_root)],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    last: dict = {}
    while line := child.stdout.readline():
        last = json.loads(line)
        if last["flushed_points"] >= 200_000:
            break
    child.send_signal(signal.SIGKILL)  # mid-write: it never stops logging
    child.wait(30)
    assert last.get("flushed_points", 0) >= 200_000, "the trainer did not get far enough"
    (spool,) = find_spools(str(spool_root))
    # A power cut could also leave half a frame at the tail: add one.
    seg = max(list_segments(spool))
    with open(os.path.join(spool, f"{seg:08d}.seg"), "ab") as f:
        f.write(b"MF\x01M\x00\x10\x00\x00garbage")
    n, total = spooled_points(spool_root)
    assert n >= last["flushed_points"], "flushed points are missing from the spool"

    summary = run_sync(spool_root, server.uri)
    assert summary["points"] == n and summary["torn_bytes"] > 0
    assert summary["runs"] == 1 and summary["errors"] == []
    assert summary["run_ids"] == {last["run_id"]: last["run_id"]}
    reads = mf.Client(server.uri)
    try:
        count, stored = reads.count_points([last["run_id"]])
        assert count == n, f"stored {count}, spooled {n}"
        assert stored == pytest.approx(total, rel=1e-12)
        run = reads.get_run(last["run_id"])
        assert run.params == {"seed": "3"} and run.info.status == "RUNNING"
    finally:
        reads.close()


# ------------------------------------------------ offline, then sync twice
OFFLINE = textwrap.dedent("""
    import json, os, sys
    import metricflow as mf
    out = sys.argv[1]
    open(os.path.join(out, "weights.bin"), "wb").write(os.urandom(300_000))
    mf.set_experiment("offline-exp")
    ids = []
    for r in range(2):
        with mf.start_run(run_name=f"off-{r}") as run:
            mf.log_params({"lr": 0.01 * (r + 1), "r": r})
            mf.set_tags({"where": "no-network"})
            for s in range(50_000):
                mf.log_metrics({"loss": 1.0 / (s + 1) + r, "acc": s * 1e-6}, step=s)
            mf.log_artifact(os.path.join(out, "weights.bin"), "ckpt")
            mf.log_dict({"r": r}, "cfg.json")
            ids.append(run.info.run_id)
    print(json.dumps(ids), flush=True)
""")


def _offline_env(spool_root: Path) -> dict[str, str]:
    env = {**os.environ, "METRICFLOW_MODE": "offline", "METRICFLOW_SPOOL_DIR": str(spool_root),
           # nothing listens here: an offline client must never try
           "METRICFLOW_TRACKING_URI": f"grpc://127.0.0.1:{_free_port()}"}
    env.pop("METRICFLOW_EXPERIMENT_NAME", None)
    return env


def _check_offline_runs(reads: mf.Client, ids: list[str], out: Path) -> None:
    for r, rid in enumerate(ids):
        run = reads.get_run(rid)
        assert run.info.run_name == f"off-{r}" and run.info.status == "FINISHED"
        assert run.params == {"lr": str(0.01 * (r + 1)), "r": str(r)}
        assert run.tags["where"] == "no-network"
        count, total = reads.count_points([rid])
        assert count == 100_000
        expect = sum(1.0 / (s + 1) + r + s * 1e-6 for s in range(50_000))
        assert total == pytest.approx(expect, rel=1e-12)
        exp = reads.get_experiment(run.info.experiment_id)
        assert exp.name == "offline-exp"
        files = {a.path for a in reads.list_artifacts(rid, recursive=True)}
        assert files == {"ckpt/weights.bin", "cfg.json"}
        dst = out / f"dl-{r}"
        reads.download_artifacts(rid, "ckpt/weights.bin", dst)
        assert (dst / "ckpt" / "weights.bin").read_bytes() == (out / "weights.bin").read_bytes()
        assert reads.get_manifest(rid, "ckpt/weights.bin").version == 1  # uploaded once


def test_offline_runs_sync_twice_without_duplicates(tmp_path: Path, server: Server) -> None:
    spool_root = tmp_path / "spool"
    out = subprocess.run([sys.executable, "-c", OFFLINE, str(tmp_path)], capture_output=True,
                         text=True, env=_offline_env(spool_root), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    ids = json.loads(out.stdout.strip().splitlines()[-1])

    first = run_sync(spool_root, server.uri)
    assert first["runs"] == 2 and first["points"] == 200_000 and first["artifacts"] == 4
    assert first["run_ids"] == {i: i for i in ids}  # ids are kept
    assert first["errors"] == []
    second = run_sync(spool_root, server.uri)
    assert second["points"] == 0 and second["records"] == 0 and second["runs"] == 0
    assert second["run_ids"] == first["run_ids"]  # the mapping is kept and printed again
    reads = mf.Client(server.uri)
    try:
        _check_offline_runs(reads, ids, tmp_path)
        exps = [e for e in reads.search_experiments() if e.name == "offline-exp"]
        assert len(exps) == 1
    finally:
        reads.close()


def test_a_sync_killed_halfway_resumes_without_duplicates(tmp_path: Path,
                                                         server: Server) -> None:
    spool_root = tmp_path / "spool"
    out = subprocess.run([sys.executable, "-c", OFFLINE, str(tmp_path)], capture_output=True,
                         text=True, env=_offline_env(spool_root), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    ids = json.loads(out.stdout.strip().splitlines()[-1])
    (spool,) = find_spools(str(spool_root))
    cursor = Path(spool) / "cursor"
    sync = subprocess.Popen([METRICFLOW, "sync", str(spool_root), "--tracking-uri", server.uri,
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    def past_first_mb() -> bool:
        try:
            return int(cursor.read_text().split()[1]) > 1 << 20
        except (FileNotFoundError, IndexError, ValueError):
            return False

    # Killed once a part of the points is acknowledged (the cursor moved), before the end.
    wait_for(lambda: past_first_mb() or sync.poll() is not None, 60, "the sync to start")
    assert sync.poll() is None, "the sync ended before it could be killed"
    sync.send_signal(signal.SIGKILL)
    sync.wait(30)
    left, _ = spooled_points(spool_root)
    assert left < 200_000, "the killed sync did nothing"
    again = run_sync(spool_root, server.uri)
    assert again["errors"] == []
    reads = mf.Client(server.uri)
    try:
        _check_offline_runs(reads, ids, tmp_path)
    finally:
        reads.close()


# ------------------------------------------------------------ system metrics
def test_system_metrics_appear_while_the_run_runs(server: Server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_SYSTEM_METRICS_INTERVAL_S", "0.2")
    monkeypatch.setenv("METRICFLOW_NODE_ID", "node-a")
    mf.set_tracking_uri(server.uri)
    try:
        with mf.start_run(run_name="sys", log_system_metrics=True) as active:
            rid = active.info.run_id
            client = mf.get_client()
            key = "system/node-a/cpu_utilization_percentage"

            def seen() -> int:
                client.flush()
                return len(client.get_metric_history(rid, key))

            wait_for(lambda: seen() >= 3, 30, "three CPU samples")
            run = client.get_run(rid)
            assert run.info.status == "RUNNING"
            assert {"system/node-a/memory_used_megabytes",
                    "system/node-a/process_rss_megabytes"} <= set(run.metrics)
        n = len(client.get_metric_history(rid, key))
        time.sleep(0.6)
        client.flush()
        assert len(client.get_metric_history(rid, key)) == n, "sampling went on after end_run"
        assert client.get_run(rid).info.status == "FINISHED"
    finally:
        mf.set_tracking_uri("grpc://127.0.0.1:1")


def test_a_whole_spool_replayed_again_changes_nothing(tmp_path: Path, server: Server) -> None:
    """The worst crash of a sync: everything was sent but no cursor was saved."""
    import shutil

    spool_root = tmp_path / "spool"
    out = subprocess.run([sys.executable, "-c", OFFLINE, str(tmp_path)], capture_output=True,
                         text=True, env=_offline_env(spool_root), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    ids = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.copytree(spool_root, tmp_path / "snapshot")
    first = run_sync(spool_root, server.uri)
    assert first["points"] == 200_000 and first["errors"] == []
    again = run_sync(tmp_path / "snapshot", server.uri)  # the same frames, from the start
    assert again["points"] == 200_000 and again["errors"] == []
    assert again["run_ids"] == first["run_ids"]
    reads = mf.Client(server.uri)
    try:
        _check_offline_runs(reads, ids, tmp_path)  # counts, params, one manifest version
        assert len([e for e in reads.search_experiments() if e.name == "offline-exp"]) == 1
    finally:
        reads.close()


def test_an_offline_script_that_never_closes_spools_everything_quietly(tmp_path: Path) -> None:
    """The client is closed at interpreter exit, after the default executor shut down."""
    script = textwrap.dedent("""
        import metricflow as mf
        mf.set_experiment("exit")
        with mf.start_run():
            mf.log_params({"a": 1})
            for s in range(20000):
                mf.log_metrics({"x": float(s), "y": 2.0 * s}, step=s)
            mf.log_dict({"k": 1}, "d.json")
    """)
    spool_root = tmp_path / "spool"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=_offline_env(spool_root), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "died" not in out.stderr, out.stderr[-3000:]
    n, total = spooled_points(spool_root)
    assert n == 40_000 and total == pytest.approx(3.0 * sum(range(20000)))


def _offline_spool(root: Path, changed_param: bool = False) -> str:
    c = mf.Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(root), linger_ms=5)
    run = c.create_run("0")
    c.log_params(run.run_id, {"p": "1"})
    for s in range(100):
        c.log_metrics(run.run_id, {"a": float(s)}, step=s)
    if changed_param:  # accepted offline; the server refuses it at replay
        c.log_params(run.run_id, {"p": "2"})
    c.set_terminated(run.run_id)
    c.close()
    return run.run_id


def test_a_sync_with_a_refused_record_still_prints_its_summary(tmp_path: Path,
                                                               server: Server) -> None:
    """The refused record is listed with everything that was uploaded (the client's close
    used to raise it again, so the summary was lost and only the error was printed)."""
    rid = _offline_spool(tmp_path / "spool", changed_param=True)
    out = subprocess.run([METRICFLOW, "sync", str(tmp_path / "spool"), "--tracking-uri",
                          server.uri, "--no-progress"], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "synced 1 spool(s)" in out.stdout and "100 points" in out.stdout, out.stdout
    assert f"run {rid} -> {rid}" in out.stdout
    assert "refused: " in out.stdout and "params are immutable" in out.stdout
    reads = mf.Client(server.uri)
    try:
        assert reads.get_run(rid).info.status == "FINISHED"  # what came after it went in
        assert len(reads.get_metric_history(rid, "a")) == 100
    finally:
        reads.close()


def test_a_sync_to_a_server_that_cannot_be_reached_says_so_and_gives_up(
        tmp_path: Path) -> None:
    _offline_spool(tmp_path / "spool")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    out = subprocess.run([METRICFLOW, "sync", str(tmp_path / "spool"), "--tracking-uri",
                          f"grpc://127.0.0.1:{port}", "--no-progress", "--stall-timeout", "12"],
                         capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert out.returncode != 0
    assert "no progress for 10s" in out.stderr and "Connection refused" in out.stderr
    assert "--stall-timeout" in out.stderr
    assert "made no progress for 12s" in out.stderr and "it resumes" in out.stderr
    assert took < 60  # not the default 300 s
    assert spooled_points(tmp_path / "spool")[0] == 100  # left for a later sync
    bad = subprocess.run([METRICFLOW, "sync", str(tmp_path / "spool"), "--stall-timeout", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "1..86400, got '0'" in bad.stderr
