"""GovernanceService maps errors like every other servicer: a MetricflowError to its
status, anything else to INTERNAL (logged), never an unhandled handler (UNKNOWN)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from metricflow._proto.metricflow.governance.v1 import governance_pb2 as pb
from metricflow._proto.metricflow.governance.v1 import governance_pb2_grpc as pb_grpc
from metricflow.errors import NotFound
from metricflow.governance import add_to_server


class _Failing:
    """A control plane whose every call fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise self.error
        return fail


def _serve(store: Any) -> Iterator[pb_grpc.GovernanceServiceStub]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        server = grpc.aio.server()
        add_to_server(server, store)
        box["port"] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        box["stop"] = asyncio.Event()
        ready.set()
        await box["stop"].wait()
        await server.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    channel = grpc.insecure_channel(f"127.0.0.1:{box['port']}")
    try:
        yield pb_grpc.GovernanceServiceStub(channel)
    finally:
        channel.close()
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize("error, status, text", [
    (RuntimeError("disk on fire"), grpc.StatusCode.INTERNAL, "internal error: RuntimeError"),
    (NotFound("policy 'p' does not exist"), grpc.StatusCode.NOT_FOUND, "policy 'p'"),
])
def test_errors_map_to_statuses(error: Exception, status: grpc.StatusCode, text: str) -> None:
    for stub in _serve(_Failing(error)):
        with pytest.raises(grpc.RpcError) as ei:
            stub.ListPolicies(pb.ListPoliciesRequest(), timeout=10)
        assert ei.value.code() == status
        assert text in (ei.value.details() or "")
        assert "disk on fire" not in (ei.value.details() or "")  # internals stay in the log
