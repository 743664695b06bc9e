"""The embedded server answers the standard gRPC health protocol, as every role does."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.timeout(120)


def test_health_check_is_serving(embedded_server) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(embedded_server.target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_is_open_with_auth_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Probes carry no token: like the roles', the health service stays open."""
    # chDB takes one data dir per process: this server runs in its own.
    proc = subprocess.Popen([sys.executable, "-m", "metricflow.server.cli", "server",
                             "--data-dir", str(tmp_path), "--grpc-port", "0",
                             "--http-port", "-1", "--auth", "on", "--no-uvloop"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["grpc_port"]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as e:
                stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"),
                           timeout=10)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        proc.terminate()
        proc.wait(60)
