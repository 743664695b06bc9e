"""Client side: attach `authorization: Bearer <token>` to every call on a channel."""

from __future__ import annotations

from typing import Any

import grpc


class _BearerInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                         grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._md = metadata

    def _details(self, d: Any) -> Any:
        md = tuple(d.metadata or ()) + self._md
        return d._replace(metadata=md) if hasattr(d, "_replace") else _Details(d, md)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, it: Any) -> Any:
        return continuation(self._details(details), it)

    def intercept_stream_stream(self, continuation: Any, details: Any, it: Any) -> Any:
        return continuation(self._details(details), it)


class _Details(grpc.ClientCallDetails):
    def __init__(self, d: Any, metadata: tuple[tuple[str, str], ...]) -> None:
        self.method, self.timeout, self.credentials = d.method, d.timeout, d.credentials
        self.wait_for_ready, self.compression = d.wait_for_ready, d.compression
        self.metadata = metadata


def bearer_channel(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> grpc.Channel:
    """`channel` with `metadata` (e.g. the Client's authorization header) on every call."""
    if not metadata:
        return channel
    return grpc.intercept_channel(channel, _BearerInterceptor(tuple(metadata)))
