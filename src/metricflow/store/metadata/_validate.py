"""Input rules of the control plane; each failure names the field and the limit."""

from __future__ import annotations

import re
from collections.abc import Mapping

from metricflow.entities import STAGES
from metricflow.errors import InvalidArgument

MAX_NAME = 256
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000
MAX_EXPERIMENT_NAME = 500
"""MLflow 3.17.2's limits (measured against its server): experiment names 500 characters,
experiment tag values 20,000, registered-model and model-version tag values 100,000."""
TAG_VALUE_LIMITS = {"experiment tag": 20_000, "registered model tag": 100_000,
                    "model version tag": 100_000}
MAX_SOURCE = 1000
MAX_ALIAS = 256
MAX_ID = 2**31 - 1
"""Largest experiment id and model version: both are 32-bit INTEGER columns (PostgreSQL)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_VERSION_ALIAS_RE = re.compile(r"^v\d+$", re.IGNORECASE)
_STAGE_BY_LOWER = {s.lower(): s for s in STAGES}
_INTEGER_RE = re.compile(r"^\s*[+-]?[0-9]+\s*$")


def check_experiment_id(value: object, field: str = "experiment_id") -> str:
    """An experiment id as its canonical decimal string.

    As MLflow's SQL store: an id must be an integer (else INVALID_PARAMETER_VALUE);
    one that is well formed but absent is the store's RESOURCE_DOES_NOT_EXIST. An
    integer outside 0..MAX_ID can name no row, and is refused here with the limit
    before it reaches SQL (where it would overflow the driver's integer).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidArgument(
            f"{field} must be an integer between 0 and {MAX_ID}, got "
            f"{type(value).__name__} {repr(value)[:40]}", field=field, limit=MAX_ID,
            received=repr(value)[:40])
    text = str(value)
    if not _INTEGER_RE.match(text) or len(text) > 100:
        raise InvalidArgument(
            f"Invalid experiment ID {text[:40]!r}: {field} must be an integer between 0 "
            f"and {MAX_ID}", field=field, limit=MAX_ID, received=text[:40])
    n = int(text)
    if not 0 <= n <= MAX_ID:
        raise InvalidArgument(
            f"{field} {text.strip()[:40]} is out of range: experiment ids are integers "
            f"between 0 and {MAX_ID}", field=field, limit=MAX_ID, received=text[:40])
    return str(n)


_ROW_ID_RE = re.compile(r"^\s*\+?[0-9]{1,40}\s*$")


def check_row_id(value: object, field: str) -> int:
    """A row id of the control plane (an alert rule, a webhook: `field` names it), as
    text or a number: an integer in 0..MAX_ID, the 32-bit INTEGER columns
    (PostgreSQL); a larger one reached the driver as an OverflowError (a 500)."""
    what = f"{field}: must be an integer id between 0 and {MAX_ID}"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidArgument(f"{what}, got {type(value).__name__}", field=field,
                              received=str(value)[:80], limit=MAX_ID)
    text = str(value)
    if not _ROW_ID_RE.match(text):
        raise InvalidArgument(f"{what}, got {text[:40]!r}", field=field, received=text[:80],
                              limit=MAX_ID)
    n = int(text)
    if n > MAX_ID:
        raise InvalidArgument(f"{field}: {text.strip()[:40]} is out of range: ids are "
                              f"integers between 0 and {MAX_ID}", field=field,
                              received=text[:80], limit=MAX_ID)
    return n


def canonical_experiment_id(value: str) -> str:
    """`value` as `check_experiment_id` writes it when it is a valid id; else unchanged.

    For lookups that accept any string (run searches): '02', ' 2' and '+2' name
    experiment 2, as in MLflow's SQL store; a string that is no id names nothing.
    """
    try:
        return check_experiment_id(value)
    except InvalidArgument:
        return value


def check_name(field: str, name: object) -> str:
    """Validate an experiment or model name and return it."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{field} must be a non-empty string", field=field)
    limit = MAX_EXPERIMENT_NAME if field == "experiment name" else MAX_NAME
    if len(name) > limit:
        raise InvalidArgument(f"{field} is {len(name)} characters long; the limit is {limit}",
                              field=field, limit=limit, received=len(name))
    if _CONTROL.search(name):
        raise InvalidArgument(f"{field} must not contain control characters", field=field)
    return name


def check_model_name_chars(name: str) -> None:
    """A registered model name has no '/' or ':' (MLflow's rule: `models:/<name>/<version>`
    and `models:/<name>@<alias>` URIs could not name it unambiguously)."""
    if "/" in name or ":" in name:
        raise InvalidArgument(f"Invalid model name {name!r}. Names cannot contain '/' or ':'.",
                              field="name", received=name[:300])


def check_tag(field: str, key: object, value: object) -> tuple[str, str]:
    """Validate one tag key and value."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"{field} key must be a non-empty string", field=f"{field}.key")
    if len(key) > MAX_TAG_KEY:
        raise InvalidArgument(
            f"{field} key is {len(key)} characters long; the limit is {MAX_TAG_KEY}",
            field=f"{field}.key", limit=MAX_TAG_KEY, received=len(key))
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} {key!r} value must be a string", field=f"{field}.value")
    limit = TAG_VALUE_LIMITS.get(field, MAX_TAG_VALUE)
    if len(value) > limit:
        raise InvalidArgument(
            f"{field} {key!r} value is {len(value)} characters long; the limit is "
            f"{limit}", field=f"{field}.value", limit=limit, received=len(value))
    return key, value


def check_tags(field: str, tags: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a tag mapping (None means no tags)."""
    return dict(check_tag(field, k, v) for k, v in (tags or {}).items())


def check_alias(alias: object) -> str:
    """Validate an alias name; `latest` and `v<digits>` are reserved."""
    if not isinstance(alias, str) or not alias:
        raise InvalidArgument("alias must be a non-empty string", field="alias")
    if len(alias) > MAX_ALIAS:
        raise InvalidArgument(f"alias is {len(alias)} characters long; the limit is {MAX_ALIAS}",
                              field="alias", limit=MAX_ALIAS, received=len(alias))
    if alias.lower() == "latest":
        raise InvalidArgument("alias 'latest' is reserved (it always means the newest "
                              "version)", field="alias", received=alias)
    if _VERSION_ALIAS_RE.match(alias):
        raise InvalidArgument(f"alias {alias!r} is reserved: 'v<number>' names a version",
                              field="alias", received=alias)
    if not _ALIAS_RE.match(alias):
        raise InvalidArgument(f"alias {alias!r} may only contain letters, digits, '_' and '-'",
                              field="alias", received=alias)
    return alias


def check_stage(stage: object) -> str:
    """Return the canonical stage name (case-insensitive input)."""
    canonical = _STAGE_BY_LOWER.get(stage.lower()) if isinstance(stage, str) else None
    if canonical is None:
        raise InvalidArgument(f"stage {stage!r} is not one of {', '.join(STAGES)}",
                              field="stage", received=str(stage))
    return canonical


def check_version(version: object) -> int:
    """Parse a model version number ("3" or 3) and return it as an int."""
    text = str(version)
    v = int(text) if _INTEGER_RE.match(text) and len(text) <= 100 else 0
    if not 1 <= v <= MAX_ID or isinstance(version, bool):
        raise InvalidArgument(f"version must be a positive integer (at most {MAX_ID}), got "
                              f"{text[:40]!r}", field="version", limit=MAX_ID,
                              received=text[:40])
    return v


def check_max_results(max_results: int, limit: int) -> int:
    """Validate a page size."""
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise InvalidArgument(f"max_results must be between 1 and {limit}, got {max_results!r}",
                              field="max_results", limit=limit, received=str(max_results))
    return max_results
