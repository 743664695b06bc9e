"""Every gRPC method of the protos, and calls of any of them with an empty raw request."""

from __future__ import annotations

import importlib
import pkgutil

import grpc

import metricflow._proto as proto_pkg


def grpc_methods(*modules: str) -> list[tuple[str, bool, bool]]:
    """(full method path, client streaming, server streaming) of every service in the
    protos, or only in `modules` (e.g. "ingest.v1.ingest_pb2")."""
    names = ([f"metricflow._proto.metricflow.{m}" for m in modules] if modules else
             [m.name for m in pkgutil.walk_packages(proto_pkg.__path__, proto_pkg.__name__ + ".")
              if m.name.endswith("_pb2")])
    out = []
    for name in names:
        for svc in importlib.import_module(name).DESCRIPTOR.services_by_name.values():
            for m in svc.methods:
                out.append((f"/{svc.full_name}/{m.name}", m.client_streaming,
                            m.server_streaming))
    return sorted(out)


def call_raw(channel: grpc.Channel, method: str, cs: bool, ss: bool,
             md: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """The status of `method` (client-streaming `cs`, server-streaming `ss`) called
    with one empty message and metadata `md`; OK if it answered."""
    ident = bytes  # requests and responses stay raw bytes
    try:
        if not cs and not ss:
            channel.unary_unary(method, ident, ident)(b"", metadata=md, timeout=20)
        elif not cs and ss:
            list(channel.unary_stream(method, ident, ident)(b"", metadata=md, timeout=20))
        elif cs and not ss:
            channel.stream_unary(method, ident, ident)(iter([b""]), metadata=md, timeout=20)
        else:
            list(channel.stream_stream(method, ident, ident)(iter([b""]), metadata=md,
                                                             timeout=20))
    except grpc.RpcError as e:
        return e.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK
