"""`GovernanceClient`: GovernanceService over gRPC (what the CLI uses)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format

from metricflow._grpc_errors import from_rpc_error
from metricflow._proto.metricflow.governance.v1 import governance_pb2 as pb
from metricflow._proto.metricflow.governance.v1 import governance_pb2_grpc as pb_grpc
from metricflow.client import open_channel as open_channel  # the channel the CLI opens
from metricflow.errors import InvalidArgument

_SERVICE = pb.DESCRIPTOR.services_by_name["GovernanceService"]


class GovernanceClient:
    """Every GovernanceService method as `call(name, **fields) -> dict` (JSON mapping).

    Args:
        channel: a channel to a server that mounts the registry services.
        actor: the user recorded in the audit log when auth is off.
    """

    def __init__(self, channel: grpc.Channel, *, actor: str | None = None,
                 timeout: float = 60.0) -> None:
        self._stub = pb_grpc.GovernanceServiceStub(channel)
        self._metadata = (("mf-actor", actor),) if actor else ()
        self._timeout = timeout

    def call(self, method: str, **fields: Any) -> dict[str, Any]:
        m = _SERVICE.methods_by_name.get(method)
        if m is None:
            raise InvalidArgument(f"GovernanceService has no method {method!r}",
                                  field="method", received=method)
        request = json_format.ParseDict({k: v for k, v in fields.items() if v is not None},
                                        getattr(pb, m.input_type.name)())
        try:
            reply = getattr(self._stub, method)(request, timeout=self._timeout,
                                                metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        out: dict[str, Any] = json_format.MessageToDict(
            reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        return out
