"""One root exception for metricflow, with machine-readable codes.

Each code maps to one gRPC status and one HTTP status, in one table, so every
front end reports the same failure the same way. Codes travel over the wire;
exception classes are never built from names sent by a peer.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(str, enum.Enum):
    """Machine-readable error codes (MLflow-compatible names where one exists)."""

    INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
    RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
    RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
    INVALID_STATE = "INVALID_STATE"
    CONFLICT = "CONFLICT"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


# code -> (grpc status name, http status). grpc names avoid importing grpc here.
STATUS_TABLE: dict[ErrorCode, tuple[str, int]] = {
    ErrorCode.INVALID_PARAMETER_VALUE: ("INVALID_ARGUMENT", 400),
    ErrorCode.RESOURCE_DOES_NOT_EXIST: ("NOT_FOUND", 404),
    ErrorCode.RESOURCE_ALREADY_EXISTS: ("ALREADY_EXISTS", 400),
    ErrorCode.INVALID_STATE: ("FAILED_PRECONDITION", 400),
    ErrorCode.CONFLICT: ("ABORTED", 409),
    ErrorCode.RESOURCE_EXHAUSTED: ("RESOURCE_EXHAUSTED", 429),
    ErrorCode.UNAUTHENTICATED: ("UNAUTHENTICATED", 401),
    ErrorCode.PERMISSION_DENIED: ("PERMISSION_DENIED", 403),
    ErrorCode.UNAVAILABLE: ("UNAVAILABLE", 503),
    ErrorCode.DEADLINE_EXCEEDED: ("DEADLINE_EXCEEDED", 504),
    ErrorCode.INTERNAL_ERROR: ("INTERNAL", 500),
}

_RETRIABLE = {ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED}


class MetricflowError(Exception):
    """Root of every metricflow error.

    Attributes:
        code: the machine-readable code.
        retriable: whether repeating the same request may succeed.
        details: optional structured context (field, limit, received, ...).
    """

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self, message: str, code: ErrorCode | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details

    @property
    def retriable(self) -> bool:
        return self.code in _RETRIABLE

    @property
    def grpc_status_name(self) -> str:
        return STATUS_TABLE[self.code][0]

    @property
    def http_status(self) -> int:
        return STATUS_TABLE[self.code][1]

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class InvalidArgument(MetricflowError):
    """A request field broke a rule; the message names the field and the limit."""

    code = ErrorCode.INVALID_PARAMETER_VALUE


class NotFound(MetricflowError):
    code = ErrorCode.RESOURCE_DOES_NOT_EXIST


class AlreadyExists(MetricflowError):
    code = ErrorCode.RESOURCE_ALREADY_EXISTS


class InvalidState(MetricflowError):
    code = ErrorCode.INVALID_STATE


class Conflict(MetricflowError):
    """An optimistic-concurrency check failed: someone else changed the object."""

    code = ErrorCode.CONFLICT


class ResourceExhausted(MetricflowError):
    """A bounded buffer is full; retry after the hinted delay."""

    code = ErrorCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float = 0.1, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class Unauthenticated(MetricflowError):
    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(MetricflowError):
    code = ErrorCode.PERMISSION_DENIED


class Unavailable(MetricflowError):
    code = ErrorCode.UNAVAILABLE


class DeliveryError(MetricflowError):
    """Metric points a client accepted were not acknowledged as durable.

    Raised by `Client.flush()` when its timeout expires, by `Client.close()` when it
    gives up on unacknowledged points, and by every later call once the client's
    sender has stopped. The message names the cause (the last stream error and how
    long delivery has been failing); `details` carries the same as fields.
    """

    code = ErrorCode.UNAVAILABLE


def error_from_code(code: str, message: str, **details: Any) -> MetricflowError:
    """Rebuild an error received over the wire from its code (never from a class name)."""
    try:
        ec = ErrorCode(code)
    except ValueError:
        ec = ErrorCode.INTERNAL_ERROR
    for cls in (InvalidArgument, NotFound, AlreadyExists, InvalidState, Conflict,
                ResourceExhausted, Unauthenticated, PermissionDenied, Unavailable):
        if cls.code == ec:
            if cls is ResourceExhausted:
                return ResourceExhausted(message, **details)
            return cls(message, **details)
    return MetricflowError(message, ec, **details)
