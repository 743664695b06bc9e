"""Validation rules shared by the client and the server.

Each failure raises InvalidArgument naming the field, the limit and what was
received. The rules follow MLflow's where MLflow has one.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from metricflow.errors import InvalidArgument

_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Limits:
    """Limits enforced on every request; the server's copy is authoritative."""

    max_key_length: int = 250
    """Longest metric, param or tag key."""
    max_param_value_length: int = 6000
    """Longest param value (MLflow's limit)."""
    max_tag_value_length: int = 8000
    """Longest tag value (MLflow's limit)."""
    max_points_per_batch: int = 1_000_000
    """Most metric points in one WriteBatch."""
    max_keys_per_batch: int = 100_000
    """Most distinct metric keys in one WriteBatch."""
    max_params_per_batch: int = 1000
    """Most params in one LogBatch call."""
    max_tags_per_batch: int = 1000
    """Most tags in one LogBatch call."""
    max_run_name_length: int = 250
    """Longest run name."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest gRPC message accepted."""


DEFAULT_LIMITS = Limits()


def _too_long(field: str, value: str, limit: int) -> InvalidArgument:
    return InvalidArgument(
        f"{field} is {len(value)} characters long; the limit is {limit}",
        field=field, limit=limit, received=len(value),
    )


def check_key(key: object, field: str = "key", limits: Limits = DEFAULT_LIMITS) -> str:
    """Check a metric/param/tag key against MLflow's naming rules."""
    if not isinstance(key, str):
        raise InvalidArgument(f"{field} must be a string, got {type(key).__name__}", field=field)
    if not key:
        raise InvalidArgument(f"{field} must not be empty", field=field, received=key)
    if len(key) > limits.max_key_length:
        raise _too_long(field, key, limits.max_key_length)
    if not _NAME_RE.match(key):
        raise InvalidArgument(
            f"{field} {key!r} has invalid characters: names may only contain letters, digits, "
            "underscores, dashes, periods, spaces, colons and slashes",
            field=field, received=key,
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidArgument(
            f"{field} {key!r} must be a relative path without '..' components",
            field=field, received=key,
        )
    return key


KNOWN_KEYS_MAX = 100_000
"""Keys remembered as valid by `check_keys` (per key-length limit); then it starts over."""
_known_keys: dict[int, set[str]] = {}


def check_keys(keys: Iterable[object], field: str = "metrics.keys",
               limits: Limits = DEFAULT_LIMITS) -> None:
    """`check_key` on each of `keys`. Keys that passed before pass again without the
    checks: every metric batch names its keys, and a training job's batches name the same
    few keys again and again (the checks were most of decoding a 12,500-point batch of
    100 keys: about 80 of 120 us). Whether a key passes depends only on the key and
    `limits.max_key_length`."""
    known = _known_keys.get(limits.max_key_length)
    if known is None:
        known = _known_keys.setdefault(limits.max_key_length, set())
    for k in keys:
        if type(k) is str and k in known:
            continue
        check_key(k, field, limits)
        if len(known) >= KNOWN_KEYS_MAX:
            known.clear()
        known.add(k)  # type: ignore[arg-type]  # (a str: check_key passed)


def check_param_value(key: str, value: str, limits: Limits = DEFAULT_LIMITS) -> str:
    if len(value) > limits.max_param_value_length:
        raise _too_long(f"params[{key!r}].value", value, limits.max_param_value_length)
    return value


def check_tag_value(key: str, value: str, limits: Limits = DEFAULT_LIMITS) -> str:
    if len(value) > limits.max_tag_value_length:
        raise _too_long(f"tags[{key!r}].value", value, limits.max_tag_value_length)
    return value


def check_params(params: Mapping[str, str], limits: Limits = DEFAULT_LIMITS) -> None:
    if len(params) > limits.max_params_per_batch:
        raise InvalidArgument(
            f"params has {len(params)} entries; the limit per request is "
            f"{limits.max_params_per_batch}",
            field="params", limit=limits.max_params_per_batch, received=len(params),
        )
    for k, v in params.items():
        check_key(k, "params.key", limits)
        check_param_value(k, v, limits)


def check_tags(tags: Mapping[str, str], limits: Limits = DEFAULT_LIMITS) -> None:
    if len(tags) > limits.max_tags_per_batch:
        raise InvalidArgument(
            f"tags has {len(tags)} entries; the limit per request is {limits.max_tags_per_batch}",
            field="tags", limit=limits.max_tags_per_batch, received=len(tags),
        )
    for k, v in tags.items():
        check_key(k, "tags.key", limits)
        check_tag_value(k, v, limits)


def check_run_id(run_id: object, field: str = "run_id") -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise InvalidArgument(
            f"{field} must be 32 lowercase hex characters, got {run_id!r}",
            field=field, received=run_id,
        )
    return run_id


def check_run_name(name: str, limits: Limits = DEFAULT_LIMITS) -> str:
    if len(name) > limits.max_run_name_length:
        raise _too_long("run_name", name, limits.max_run_name_length)
    return name


def to_float(key: str, value: object) -> float:
    """Coerce a metric value to float, keeping NaN and +-Inf as they are. Text is refused
    even when it reads as a number ("3.5"), as MLflow's client does."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past 1.8e308
        raise InvalidArgument(
            f"metric {key!r} value must be a number, got {type(value).__name__} {value!r:.40}",
            field=f"metrics[{key!r}].value", received=repr(value)[:80],
        ) from None


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def to_int64(field: str, value: object) -> int:
    """A step or timestamp as an int64: an int (numpy's too) or a float with no fraction
    (1.0); text, booleans, other fractions and values out of range are InvalidArgument
    naming the field (a float step used to be cut silently: 1.5 was stored as 1)."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        try:
            v = operator.index(value)  # type: ignore[arg-type]  # int, numpy ints
        except TypeError:
            f = float(value)  # type: ignore[arg-type]  # floats of any kind, Decimal
            if not f.is_integer():  # also NaN and +-Inf
                raise ValueError from None
            v = int(f)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(
            f"{field} must be an integer, got {type(value).__name__} {value!r:.40}",
            field=field, received=repr(value)[:80],
        ) from None
    if not INT64_MIN <= v <= INT64_MAX:
        raise InvalidArgument(
            f"{field} must be an integer (int64) between {INT64_MIN} and {INT64_MAX}, "
            f"got {str(v)[:40]}", field=field, limit=INT64_MAX, received=str(v)[:80])
    return v


__all__ = [
    "DEFAULT_LIMITS", "INT64_MAX", "INT64_MIN", "Limits", "check_key", "check_keys",
    "check_param_value", "check_params", "check_run_id", "check_run_name", "check_tag_value",
    "check_tags", "to_float", "to_int64",
]
