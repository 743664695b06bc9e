"""Backpressure and server death: the client slows down or retries, nothing is lost."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from prometheus_client import REGISTRY

import metricflow as mf
from loadtests._server import start_server
from metricflow.app import ServerConfig, ServerThread
from metricflow.ingest._direct import DirectSinkConfig


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("metricflow_ingest_rejected_total",
                                     {"reason": reason}) or 0.0


def test_full_server_buffer_slows_clients_without_loss(tmp_path):
    cfg = ServerConfig(data_dir=str(tmp_path), grpc_port=0, http_port=-1,
                       sink=DirectSinkConfig(linger_s=0.3, max_group_points=1_000_000,
                                             max_pending_points=30_000))
    before = _rejected("sink_full")
    with ServerThread(cfg) as srv:
        clients = [mf.Client(f"grpc://{srv.target}", batch_points=20_000, linger_ms=5)
                   for _ in range(3)]
        runs = [c.create_run("0").run_id for c in clients]
        keys = [f"k{i}" for i in range(50)]
        for step in range(2000):
            for c, r in zip(clients, runs):
                c.log_metrics(r, dict.fromkeys(keys, float(step)), step=step)
        for c in clients:
            c.flush(120)
        count, total = srv.server.store.count_points(runs)
        for c in clients:
            c.close()
    assert _rejected("sink_full") > before  # the server did push back
    assert count == 3 * 2000 * 50
    assert total == pytest.approx(3 * 50 * sum(range(2000)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_killed_mid_stream_loses_nothing(tmp_path):
    port = _free_port()
    args = ["--grpc-port", str(port), "--http-port", "-1"]
    srv = start_server(str(tmp_path), extra_args=args)
    # start_server asks for port 0 first; the later flag wins in argparse
    assert srv.grpc_port == port
    client = mf.Client(f"grpc://127.0.0.1:{port}", linger_ms=5, block_timeout_s=120)
    run = client.create_run("0").run_id
    rng = np.random.default_rng(1)
    expected, sent = 0.0, 0
    try:
        for step in range(6000):
            vals = rng.random(20)
            expected += float(vals.sum())
            sent += 20
            client.log_metrics(run, {f"m{i}": float(v) for i, v in enumerate(vals)}, step=step)
            if step == 3000:
                srv.proc.kill()  # SIGKILL: no graceful flush on the server side
                srv.proc.wait()
                srv = start_server(str(tmp_path), extra_args=args)
        client.flush(120)
        count, total = client.count_points([run])
    finally:
        client.close()
        srv.stop()
    assert client._sender.reconnects >= 1
    assert count == sent
    assert total == pytest.approx(expected, rel=1e-12)
