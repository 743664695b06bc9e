"""JSON numbers as protobuf's JSON mapping reads them: typed, ranged, never coerced.

MLflow's messages declare metric values as `double` and steps and timestamps as
`int64`. Proto3 JSON accepts a JSON number or its decimal string for both, and
the strings "NaN", "Infinity" and "-Infinity" for a double; it refuses booleans,
lists, objects, fractions for an integer and integers beyond 64 bits. Python's
`float()` and `int()` accept all of those (and truncate 1.5 to 1), so each value
is checked here first; a refusal names the field, the type expected and what
was received (review finding 7).
"""

from __future__ import annotations

import math
import re
from typing import Any

from metricflow._validation import INT64_MAX, INT64_MIN
from metricflow.errors import InvalidArgument

__all__ = ["INT64_MAX", "INT64_MIN"]  # re-exported: the MLflow routes import them here
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_NUMBER_RE = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_INTEGER_RE = re.compile(r"^-?(0|[1-9][0-9]*)$")


def _wrong(field: str, expected: str, value: Any) -> InvalidArgument:
    return InvalidArgument(
        f"Invalid value {_shown(value)} for parameter '{field}' supplied: expected {expected}, "
        f"got {type(value).__name__}", field=field, received=_shown(value))


def _shown(value: Any) -> str:
    """The value as MLflow's messages show it: JSON (`"foo"`, `31`, `9.0`)."""
    from metricflow.mlflow_compat._strings import shown

    return shown(value)


def json_double(value: Any, field: str) -> float:
    """A double field: a number, a numeric string, or "NaN"/"Infinity"/"-Infinity"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _wrong(field, 'a number (or "NaN", "Infinity", "-Infinity")', value)
    if isinstance(value, str):
        if value in _SPECIAL:
            return _SPECIAL[value]
        if not _NUMBER_RE.match(value):
            raise _wrong(field, 'a number (or "NaN", "Infinity", "-Infinity")', value)
    try:
        out = float(value)
    except OverflowError:  # an integer beyond a double's range
        out = math.inf
    if math.isinf(out) and not isinstance(value, float):
        raise InvalidArgument(f"Invalid value {_shown(value)} for parameter '{field}' "
                              "supplied: it is outside the range of a 64-bit float", field=field,
                              received=_shown(value))
    return out


def json_int64(value: Any, field: str, minimum: int = INT64_MIN) -> int:
    """An int64 field: an integral JSON number or decimal string in [minimum, 2^63-1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _wrong(field, "an integer (int64)", value)
    if isinstance(value, float):
        if not value.is_integer():
            raise _wrong(field, "an integer (int64)", value)
        n = int(value)
    elif isinstance(value, str):
        if not _INTEGER_RE.match(value):
            raise _wrong(field, "an integer (int64)", value)
        n = int(value)
    else:
        n = value
    if not minimum <= n <= INT64_MAX:
        raise InvalidArgument(
            f"Invalid value {_shown(value)} for parameter '{field}' supplied: expected an integer "
            f"(int64) between {minimum} and {INT64_MAX}", field=field, limit=INT64_MAX,
            received=_shown(value))
    return n


def reject_float_overflow(text: str) -> float:
    """`json.loads(parse_float=...)`: a literal beyond a double's range is refused, not
    read as infinity (JSON has no infinities; "Infinity" strings are the way to send one)."""
    out = float(text)
    if math.isinf(out):
        raise InvalidArgument(f"the number {text[:40]} in the request body is outside the "
                              "range of a 64-bit float", field="body", received=text[:40])
    return out
