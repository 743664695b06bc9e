"""GovernanceService maps errors like every other servicer: a MetricflowError to its
status, anything else to INTERNAL (logged), never an unhandled handler (UNKNOWN)."""

from __future__ import annotations

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


@pytest.mark.parametrize("error, status, text", [
    (RuntimeError("disk on fire"), grpc.StatusCode.INTERNAL, "internal error: RuntimeError"),
    (NotFound("policy 'p' does not exist"), grpc.StatusCode.NOT_FOUND, "policy 'p'"),
])
def test_errors_map_to_statuses(error: Exception, status: grpc.StatusCode, text: str,
                                aio_server: Any) -> None:
    port = aio_server(lambda server: add_to_server(server, _Failing(error)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as ei:
            pb_grpc.GovernanceServiceStub(channel).ListPolicies(pb.ListPoliciesRequest(),
                                                               timeout=10)
    assert ei.value.code() == status
    assert text in (ei.value.details() or "")
    assert "disk on fire" not in (ei.value.details() or "")  # internals stay in the log


def test_an_errors_details_cross_the_wire(aio_server: Any) -> None:
    """The field, limit and value received reach a gRPC client, as over HTTP."""
    from metricflow._grpc_errors import from_rpc_error
    from metricflow.errors import InvalidArgument

    err = InvalidArgument("expiry_s must be a number of seconds in 1-315360000, got -5",
                          field="expiry_s", limit=315360000, received="-5",
                          huge="x" * 10_000)
    port = aio_server(lambda server: add_to_server(server, _Failing(err)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as ei:
            pb_grpc.GovernanceServiceStub(channel).ListPolicies(pb.ListPoliciesRequest(),
                                                               timeout=10)
    got = from_rpc_error(ei.value)
    assert isinstance(got, InvalidArgument) and got.message.startswith("expiry_s must be")
    # a value too large for a header is left out
    assert got.details == {"field": "expiry_s", "limit": 315360000, "received": "-5"}
