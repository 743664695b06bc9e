"""grpc.aio servicer of metricflow.governance.v1.GovernanceService.

Every method maps its request to JSON (the protobuf JSON mapping, field names as
in the .proto), runs the same call as `/api/v1` (`_ops.py`) in a worker thread
(store calls are synchronous SQL) and maps the answer back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import json_format

from metricflow._grpc_errors import handles_errors
from metricflow._proto.metricflow.governance.v1 import governance_pb2 as pb
from metricflow._proto.metricflow.governance.v1 import governance_pb2_grpc as pb_grpc
from metricflow.auth import caller
from metricflow.governance._ops import OPS

ACTOR_KEY = "mf-actor"
SERVICE = "metricflow.governance.v1.GovernanceService"


def _actor(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_KEY:
            return caller(str(value))
    return caller()


def _method(name: str) -> Any:
    op = OPS[name]
    reply_type = getattr(pb, pb.DESCRIPTOR.services_by_name["GovernanceService"]
                         .methods_by_name[name].output_type.name)

    async def call(self: GovernanceServicer, request: Any,
                   context: grpc.aio.ServicerContext) -> Any:
        params = json_format.MessageToDict(request, preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True)
        result = await asyncio.to_thread(op, self.store, _actor(context), params)
        return json_format.ParseDict(result, reply_type(), ignore_unknown_fields=True)

    call.__name__ = name
    return handles_errors(call)  # a bug answers INTERNAL, never an unhandled handler


class GovernanceServicer(pb_grpc.GovernanceServiceServicer):
    """Approvals, policies and lineage over the control plane."""

    def __init__(self, store: Any) -> None:
        self.store = store


for _name in OPS:
    setattr(GovernanceServicer, _name, _method(_name))


def add_to_server(server: grpc.aio.Server, store: Any) -> None:
    """Mount GovernanceService on `server` over `store` (the handlers' view)."""
    pb_grpc.add_GovernanceServiceServicer_to_server(GovernanceServicer(store), server)
