"""A stream the server ends in the middle of a spool catch-up: the client says why (the
call's own status, not "RPC already finished"), reconnects, resends what was not
acknowledged, loses nothing, and, in drop mode, drops nothing while its spool has room."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ingest_stand_in import ingest_stand_in

from metricflow.client import Client


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("drop_when_full", [False, True])
def test_a_stream_ended_during_a_catch_up_loses_nothing(tmp_path: Path,
                                                        drop_when_full: bool) -> None:
    budget = 4 << 20
    server, port, seen = ingest_stand_in(end_stream_after=30, start=False)
    client = Client(f"grpc://127.0.0.1:{port}", spool_dir=str(tmp_path / "spool"),
                    buffer_bytes=budget, batch_points=8192, linger_ms=20,
                    block_timeout_s=60, drop_when_full=drop_when_full)
    sender, acc = client._sender, client._acc
    row = {f"m{k}": float(k) for k in range(10)}
    step = 0

    def log(n: int) -> None:
        nonlocal step
        for _ in range(n):
            client.log_metrics("a" * 32, row, step=step)
            step += 1

    try:
        sender.engage("test: a backlog while the server is away")
        while client._spool is None or client._spool.appended_bytes < 8 * budget:
            log(1000)
        server.start()
        for _ in range(300):  # the trainer keeps logging through the catch-up
            if not sender.spooling:
                break
            log(1000)
            time.sleep(0.002)
        client.flush(60)
        _wait(lambda: not sender.spooling and not acc.used_bytes, 60, "the spool to drain")
        health = client.health
        assert seen["streams"] >= 2 and health.reconnects >= 1, (seen, health)
        assert "RPC already finished" not in health.last_error, health.last_error
        assert acc.dropped_points == 0
        assert seen["points"] == 10 * step, (seen, step)  # every point, each once
    finally:
        client.close(timeout=10)
        server.stop(0)


def test_a_spool_write_error_keeps_the_points_and_sends_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A spill whose disk write fails (ENOSPC) keeps that batch in memory, says so once,
    and every point still reaches the server, each once; the spiller goes on."""
    import errno

    server, port, seen = ingest_stand_in(start=False, count_once=True)
    client = Client(f"grpc://127.0.0.1:{port}", spool_dir=str(tmp_path / "spool"),
                    buffer_bytes=4 << 20, batch_points=8192, linger_ms=20,
                    block_timeout_s=60)
    sender = client._sender
    spool = client._spool
    assert spool is not None
    real = spool.append_many
    failures = {"n": 0}

    def fail_twice(frames):  # type: ignore[no-untyped-def]
        if failures["n"] < 2:
            failures["n"] += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(frames)

    spool.append_many = fail_twice  # type: ignore[method-assign]
    n = 0
    try:
        with caplog.at_level("WARNING", logger="metricflow.client._sender"):
            sender.engage("test: a backlog while the server is away")
            for step in range(60_000):
                client.log_metrics("b" * 32, {"x": float(step), "y": 1.0}, step=step)
                n += 2
            sender.spill()
            server.start()
            t0 = time.monotonic()
            client.flush(60)
            _wait(lambda: not sender.spooling and not client._acc.used_bytes, 60,
                  "the spool and the kept batches to drain")
            drained_s = time.monotonic() - t0
        assert failures["n"] >= 1  # (a second append may come only after the drain)
        said = [r.getMessage() for r in caplog.records if "failed to write" in r.getMessage()]
        assert len(said) == 1 and "No space left" in said[0], said
        assert seen["points"] == n, (seen, n)
        # (the sender once spun here, spooling off and on without awaiting, for 10 s
        # until its stall check; a stream then broke)
        assert drained_s < 5, drained_s
        last = client.health.last_error  # (one failed connect: the server started late)
        assert "No space" not in last and "OSError" not in last, last
    finally:
        client.close(timeout=10)
        server.stop(0)
