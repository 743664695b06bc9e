"""Parsing of `runs:/<run_id>/<path>` and `models:/...` URIs."""

from __future__ import annotations

import re

from metricflow.errors import InvalidArgument
from metricflow.store.metadata._validate import check_stage

_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """`runs:/<run_id>/<path>` -> (run_id, path); path may be empty."""
    m = _RUNS.match(uri)
    if not m:
        raise InvalidArgument(f"source {uri!r} is not a runs:/<run_id>/<path> URI",
                              field="source", received=uri)
    return m.group("run"), (m.group("path") or "").strip("/")


def parse_model_uri(uri: str) -> tuple[str, str, str]:
    """Parse a `models:/` URI into (name, kind, ref).

    kind is "alias" (`models:/name@alias`), "version" (`models:/name/3`),
    "stage" (`models:/name/Production`, ref is the canonical stage) or
    "latest" (`models:/name/latest`).
    """
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise InvalidArgument(f"model URI {uri!r} must start with models:/",
                              field="model_uri", received=str(uri))
    rest = uri.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in alias:
            return name, "alias", alias
    else:
        name, _, ref = rest.rpartition("/")
        if name and ref:
            if ref.isdigit():
                return name, "version", ref
            if ref.lower() == "latest":
                return name, "latest", ref
            try:
                return name, "stage", check_stage(ref)
            except InvalidArgument:
                pass
    raise InvalidArgument(
        f"model URI {uri!r} must be models:/<name>/<version|stage|latest> or "
        "models:/<name>@<alias>", field="model_uri", received=uri)
