"""An idle client's sender sleeps: with nothing buffered it waits for the next log call
instead of waking every linger interval (which cost each idle process ~7 ms of CPU a
second), and what a log call buffers after a pause still goes out within the linger."""

from __future__ import annotations

import time

from ingest_stand_in import ingest_stand_in

from metricflow.client import Client


def _wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_an_idle_sender_does_not_poll_and_still_sends_within_the_linger() -> None:
    server, port, seen = ingest_stand_in()
    client = Client(f"grpc://127.0.0.1:{port}", linger_ms=20)
    rid = "a" * 32
    try:
        client.log_metrics(rid, {"loss": 1.0}, 0)
        client.flush()
        drains = []
        real = client._acc.drain_iter
        client._acc.drain_iter = lambda *a, **k: (drains.append(1), real(*a, **k))[1]
        time.sleep(1.0)  # 50 linger intervals
        assert len(drains) <= 1, f"the idle sender woke {len(drains)} times in 1 s"
        for pause in (0.0, 0.3):  # right away, and after the sender went back to sleep
            time.sleep(pause)
            before = seen["points"]
            t = time.monotonic()
            client.log_metrics(rid, {"loss": 0.5, "acc": 0.9}, 1)  # no flush: the linger
            _wait(lambda b=before: seen["points"] == b + 2)
            assert time.monotonic() - t < 2.0
        # a burst still goes out in few batches (the linger fills them)
        before_drains = len(drains)
        for step in range(2, 200):
            client.log_metrics(rid, {"loss": 1.0 / step}, step)
        client.flush()
        assert len(drains) - before_drains < 20
    finally:
        client.close()
        server.stop(None)
