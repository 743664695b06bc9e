"""Opaque page tokens (an offset into a stably ordered result)."""

from __future__ import annotations

import base64
import json

from metricflow._validation import INT64_MAX
from metricflow.errors import InvalidArgument

MAX_OFFSET = INT64_MAX // 2
"""The largest offset a page token may carry: offset + page size stays an int64 (a
forged token with a larger one was a 500 from the database)."""


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
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument("page_token is malformed", field="page_token")
    if offset > MAX_OFFSET:
        raise InvalidArgument(f"page_token is malformed: its offset must be at most "
                              f"{MAX_OFFSET}, got {str(offset)[:40]}", field="page_token",
                              limit=MAX_OFFSET, received=str(offset)[:80])
    return offset
