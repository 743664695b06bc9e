"""A long-lived client that logs many short runs keeps flat memory.

Each run's point buffer is dropped once the run has ended (`update_run` to a
terminal status calls `Accumulator.forget_run`) and its points are delivered.
The client here talks gRPC to an in-process stand-in for the ingest service that
acknowledges every batch, so the real sender, acks and buffers are exercised
without a store.
"""

from __future__ import annotations

import gc
import sys

from ingest_stand_in import ingest_stand_in

from metricflow.client import Client


def test_100k_short_runs_keep_the_client_flat() -> None:
    server, port, seen = ingest_stand_in()
    client = Client(f"grpc://127.0.0.1:{port}", linger_ms=5)
    runs = 0

    def short_runs(n: int) -> None:
        nonlocal runs
        for _ in range(n):
            rid = f"{runs:032x}"
            for step in range(3):
                client.log_metrics(rid, {"loss": 1.0 / (step + 1), f"k{runs % 7}": 0.5}, step)
            client.update_run(rid, status="FINISHED")
            runs += 1

    try:
        short_runs(5_000)  # warm-up: the gRPC channel, free lists, the sender's maps
        client.flush()
        gc.collect()
        before = sys.getallocatedblocks()
        short_runs(95_000)
        client.flush()
        gc.collect()
        grown = sys.getallocatedblocks() - before
        assert runs == 100_000 and seen["ended"] == 100_000
        assert seen["points"] == 100_000 * 6  # every point delivered
        assert client._acc.run_buffers == 0
        # Measured: 5 blocks more after the 95k runs; with forget_run disabled 1.4M more
        # (about 15 per kept run buffer) and 100k buffers left.
        assert grown < 50_000, f"{grown} memory blocks kept after 95k ended runs"
    finally:
        client.close()
        server.stop(None)
