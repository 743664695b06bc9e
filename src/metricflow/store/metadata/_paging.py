"""Opaque page tokens (an offset into a stably ordered result)."""

from __future__ import annotations

import base64
import json

from metricflow.errors import InvalidArgument


def encode_token(offset: int) -> str:
    """Encode the offset of the next page."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    """Decode a page token; None or "" means the first page."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument("page_token is malformed", field="page_token") from e
    if not isinstance(offset, int) or offset < 0:
        raise InvalidArgument("page_token is malformed", field="page_token")
    return offset
