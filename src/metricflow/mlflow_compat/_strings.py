"""Param and tag values as protobuf's JSON mapping reads a `string` field: strings only.

MLflow declares param and tag values (runs, experiments, registered models and
versions) as `string`. Proto3 JSON accepts only a JSON string for one (and null
for "unset", read as ""); MLflow's own client always sends strings. Python's
`str()` would store `[1]` as "[1]", `{"a": 1}` as '{"a": 1}', `true` as "True"
and `1.0` as "1.0", so anything else is refused here, naming the field, the type
expected and what was received (as `_numbers.py` does for metric values).
"""

from __future__ import annotations

import json
from typing import Any

from metricflow.errors import InvalidArgument

_SHOWN = 60


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def shown(value: Any) -> str:
    """A received value as MLflow's messages show it (JSON: `"foo"`, `31`, `9.0`)."""
    return _shown(value)


def json_string(value: Any, field: str) -> str:
    """A `string` field's value: a JSON string, or "" for null/absent; else 400."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise InvalidArgument(
        f"Invalid value {_shown(value)} for parameter '{field}' supplied: expected a string, got a "
        f"JSON {_json_type(value)} (send the value as a JSON string)", field=field,
        received=_shown(value))


def string_arg(a: Any, name: str) -> str:
    """Parameter `name` of an MLflow request (`Args`) as a `string` field: strictly a string."""
    return json_string(a.get(name), name)


def kv_pairs(items: list[Any], name: str) -> list[tuple[str, str]]:
    """A list of {"key": string, "value": string} objects (params or tags) as pairs.

    Args:
        items: the list as sent (`Args.items(name)`).
        name: the list's parameter name ("params", "tags"), for messages.
    """
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidArgument(f"Invalid value for parameter '{name}': each entry "
                                  "needs a string 'key'", field=name)
        out.append((item["key"], json_string(item.get("value"), f"{name}[{i}].value")))
    return out


MAX_RUN_NAME = 250
"""MLflow 3.17.2's `runs.name` column (VARCHAR(250)): its PostgreSQL and MySQL stores
refuse a longer run name with 400 (SQLite does not enforce the width)."""
MAX_MODEL_NAME = 256
"""MLflow 3.17.2's `registered_models.name` column (VARCHAR(256)), likewise."""


def check_length(value: str, field: str, limit: int) -> str:
    """`value` if it has at most `limit` characters, else 400 in MLflow's length-error
    shape (`'<field>' exceeds the maximum length of <limit> characters`) plus what was
    received."""
    if len(value) > limit:
        raise InvalidArgument(f"'{field}' exceeds the maximum length of {limit} characters "
                              f"(received {len(value)})", field=field, limit=limit,
                              received=len(value))
    return value
