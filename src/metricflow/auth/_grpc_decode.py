"""Request decoding for the gRPC interceptor: after authentication, never in grpc's core.

The interceptor registers every method with no request deserializer, so grpc
hands it raw bytes; it decodes them itself once the caller is known (review
finding 2). A malformed message is an INVALID_ARGUMENT naming the message
type, and the log gets at most one summary line per interval, however many
arrive (grpc's own path logs a traceback per request).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from metricflow.errors import InvalidArgument

log = logging.getLogger(__name__)

Deserializer = Callable[[bytes], Any]


class MalformedRequest(InvalidArgument):
    """A request message that does not parse as its method's protobuf type."""


def message_type(deserializer: Deserializer) -> str:
    """`pkg.Message` of a generated `Message.FromString`, or a generic name."""
    cls = getattr(deserializer, "__self__", None)
    desc = getattr(cls, "DESCRIPTOR", None)
    return str(getattr(desc, "full_name", "") or "request message")


class MalformedLog:
    """Counts malformed requests; logs one WARNING line per `every_s` at most."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()
        self._count = 0
        self._last = -every_s  # the first one is logged at once

    def note(self, method: str, peer: str, reason: str) -> None:
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._last < self.every_s:
                return
            count, self._count, self._last = self._count, 0, now
        log.warning("refused %d malformed gRPC request(s) since the last report; latest: "
                    "%s from %s (%s)", count, method, peer, reason[:120])


class Decoder:
    """Decodes one method's request bytes: `decode(raw)` or MalformedRequest."""

    def __init__(self, method: str, deserializer: Deserializer | None,
                 malformed: MalformedLog) -> None:
        self.method, self.deserializer, self.malformed = method, deserializer, malformed
        self.type_name = message_type(deserializer) if deserializer is not None else ""

    def __call__(self, raw: Any, peer: str = "") -> Any:
        if self.deserializer is None:
            return raw  # a raw-bytes method (ingest Write): its handler parses it
        try:
            return self.deserializer(raw)
        except Exception as e:  # DecodeError and friends: any parse failure
            self.malformed.note(self.method, peer, f"{type(e).__name__}: {e}")
            raise MalformedRequest(
                f"the request is not a valid {self.type_name} (malformed protobuf, "
                f"{len(raw) if isinstance(raw, bytes | bytearray) else '?'} bytes)",
                field="request", received=type(e).__name__) from None
