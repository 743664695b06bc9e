"""Malformed HTTP input answered 400 in the project's error shape, never 500 or 403.

Two refusals every app built by `secure_app` gets:

- **Too deeply nested JSON.** `BodyLimit` has every parsed body in memory before
  any parser sees it; a body nested deeper than `MAX_JSON_DEPTH` is refused
  there, so neither the guard's parser (MLflow routes), FastAPI's nor a handler's
  ever recurses into it (Python's parser raises RecursionError near 1,000 levels).
- **FastAPI's RequestValidationError** (a wrong type, a missing field, a body that
  is not JSON). FastAPI's own handler echoes the received values in a 422 body,
  and a non-finite number (`NaN`, `Infinity`, `1e400`, all of which Python's JSON
  parser reads) makes that body unserializable: a 500 with a traceback per
  request. Here the answer is 400 `INVALID_PARAMETER_VALUE` naming the field,
  what is expected and what was received, rendered safely, and nothing is logged.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from metricflow.errors import InvalidArgument

MAX_JSON_DEPTH = 100
"""Deepest JSON nesting (arrays and objects) a request body may have: protobuf's JSON
parser's own default, far beyond any MLflow or metricflow message (they nest <= 5)."""

# A JSON string, or an unterminated one up to the end of the body (so a scan never
# backtracks over the rest of the body): brackets inside strings are not nesting.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_QUOTES_BRACKETS = bytes(b for b in range(256) if b not in b'[]{}"')
_SHOWN = 60


def nested_deeper_than(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if `body`, read as JSON, nests arrays/objects more than `limit` levels deep.

    Linear in the body and without a Python loop per byte: strings are cut out by
    one regex, brackets kept by `bytes.translate`, and the depth is a cumulative sum.
    Malformed bodies are measured the same way (their parser reports them).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: not even `limit` openers in all
    import numpy as np  # only for bodies with many brackets

    if b"\\" not in body:
        # No escapes (an MLflow log-batch body): each quote opens or closes a string,
        # so a bracket is inside one when an odd number of quotes come before it.
        # Only quotes and brackets are kept (in C), then counted column-wise: ~6x
        # less than the regex below for 1,000 metrics.
        a = np.frombuffer(body.translate(None, _NOT_QUOTES_BRACKETS), dtype=np.uint8)
        outside = (np.cumsum(a == ord('"'), dtype=np.int32) & 1) == 0
        step = (((a == ord("[")) | (a == ord("{"))).astype(np.int32)
                - ((a == ord("]")) | (a == ord("}"))).astype(np.int32))
        step[~outside] = 0
        return len(a) > 0 and int(np.cumsum(step).max()) > limit
    marks = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(marks) <= limit:
        return False
    b = np.frombuffer(marks, dtype=np.uint8)
    step = np.where((b == ord("[")) | (b == ord("{")), 1, -1)
    return int(np.cumsum(step).max()) > limit


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def lone_surrogate(body: bytes) -> str | None:
    """Where a JSON body holds a string (key or value) with a lone UTF-16 surrogate
    (`"\\udfff"`, which Python's parser accepts and nothing can store or encode), as
    `body.a[0].b`; None if it holds none. Such bodies made 500s deep in the handlers.

    Only a body with a surrogate escape is parsed here (a valid pair, as `json.dumps`
    writes an emoji, is fine): once with the regex, in C, for the rest."""
    if _SURROGATE_ESCAPE.search(body) is None:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: its parser says so
    stack: list[tuple[Any, str]] = [(doc, "body")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return path
        elif isinstance(value, dict):
            for k, v in value.items():
                if not _encodable(k):
                    return f"{path} (a key)"
                stack.append((v, f"{path}.{k}"))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lone_surrogate_message(where: str) -> str:
    return (f"request body is not valid Unicode: {where[:120]} holds a lone UTF-16 "
            f"surrogate escape (\\ud800-\\udfff without its pair)")


def too_deep_message(limit: int = MAX_JSON_DEPTH) -> str:
    return (f"request body is malformed JSON: it is nested more than {limit} levels deep "
            f"(the limit is {limit} nested arrays/objects)")


def shown(value: Any) -> str:
    """A received value for an error message: short, and always serializable."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    try:
        text = json.dumps(value, allow_nan=False, default=repr)
    except (ValueError, TypeError, RecursionError):  # a NaN inside a list or object
        text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _field(loc: tuple[Any, ...]) -> str:
    """("body", "run_ids", 0) -> "run_ids[0]"; ("query", "x") -> "x"."""
    parts = list(loc[1:]) if len(loc) > 1 and loc[0] in ("body", "query", "path") else list(loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def describe(error: dict[str, Any]) -> tuple[str, str]:
    """(field, sentence) for one pydantic error of a RequestValidationError."""
    loc = tuple(error.get("loc") or ())
    field = _field(loc)
    kind = error.get("type", "")
    if kind == "missing":
        return field, f"Missing value for required parameter '{field}'."
    if kind == "json_invalid":
        why = (error.get("ctx") or {}).get("error", "")
        return "body", f"request body is not valid JSON: {why}".rstrip(": ")
    expected = str(error.get("msg", "invalid value"))
    if expected.startswith("Input should be "):
        expected = "expected " + expected[len("Input should be "):]
    value = error.get("input")
    if _sensitive(loc):  # a secret sent with the wrong type or name is still a secret
        kind_of = "a string" if isinstance(value, str) else f"a JSON {_json_type(value)}"
        return field, (f"Invalid value (not shown: {kind_of}) for parameter '{field}': "
                       f"{expected}")
    got = f" (a JSON {_json_type(value)})" if not isinstance(value, str) else ""
    return field, (f"Invalid value {shown(value)}{got} for parameter '{field}': {expected}")


_SENSITIVE = ("secret", "password", "token")
"""Parts of a field name whose received values an error never shows (any case, anywhere in
the field's path: `secret`, `Secret`, `client_secret`, `password[0]`)."""


def _sensitive(loc: tuple[Any, ...]) -> bool:
    return any(isinstance(p, str) and any(w in p.lower() for w in _SENSITIVE) for p in loc)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, int) or math.isfinite(value) else \
            "non-finite number"
    return "array" if isinstance(value, list) else "object"


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(first field, message) for all errors of a request (the first three spelled out)."""
    described = [describe(e) for e in errors] or [("body", "invalid request")]
    text = "; ".join(d[1] for d in described[:3])
    if len(described) > 3:
        text += f" (and {len(described) - 3} more)"
    return described[0][0], text


def install_handlers(app: Any) -> None:
    """Make `app` answer RequestValidationError with 400 INVALID_PARAMETER_VALUE."""
    from fastapi import Request  # server extra
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    async def invalid_request(request: Request, exc: Exception) -> Any:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        _, message = validation_message(list(errors))
        err = InvalidArgument(message)
        return JSONResponse({"error_code": err.code.value, "message": err.message},
                            status_code=err.http_status)

    app.add_exception_handler(RequestValidationError, invalid_request)
