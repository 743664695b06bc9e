"""JSON forms of a deployment's parts, shared by the HTTP routes, gRPC and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metricflow.entities import Deployment, Guardrails, StickyKey
from metricflow.errors import InvalidArgument
from metricflow.store.metadata import parse_sticky_key

_GUARD_KEYS = ("max_error_rate", "max_latency_p99_ms", "window_s", "min_requests", "fallback")


def deployment_json(d: Deployment) -> dict[str, Any]:
    """The JSON answer for a deployment (`deployment_from_dict` reads it back)."""
    out = d.to_dict()
    out["fallback"] = d.fallback
    return out


def sticky_from_json(raw: Any) -> StickyKey | None:
    """A sticky key from "header:NAME" / "field:NAME", {"source", "name"}, or null/""."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        return parse_sticky_key(raw)
    if isinstance(raw, Mapping) and set(raw) == {"source", "name"}:
        if not isinstance(raw["source"], str) or not isinstance(raw["name"], str):
            raise InvalidArgument("sticky_key source and name must be strings",
                                  field="sticky_key", received=repr(raw)[:100])
        return parse_sticky_key(f"{raw['source']}:{raw['name']}")
    raise InvalidArgument("sticky_key must be 'header:NAME', 'field:NAME' or "
                          "{\"source\": ..., \"name\": ...}", field="sticky_key",
                          received=repr(raw)[:100])


def guardrails_from_json(raw: Any) -> Guardrails | None:
    """Guardrails from a JSON object with the keys of `Guardrails` (all optional)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidArgument("guardrails must be an object", field="guardrails",
                              received=type(raw).__name__)
    extra = set(raw) - set(_GUARD_KEYS)
    if extra:
        raise InvalidArgument(f"guardrails has unknown keys {sorted(extra)}; allowed: "
                              f"{list(_GUARD_KEYS)}", field="guardrails", received=sorted(extra))
    fallback = raw.get("fallback", "") or ""
    if not isinstance(fallback, str):
        raise InvalidArgument("guardrails.fallback must be a variant name",
                              field="guardrails.fallback", received=repr(fallback)[:100])
    # Types and ranges are checked by the store (check_guardrails) with the field names.
    return Guardrails(max_error_rate=raw.get("max_error_rate"),
                      max_latency_p99_ms=raw.get("max_latency_p99_ms"),
                      window_s=raw.get("window_s", 30.0),
                      min_requests=raw.get("min_requests", 20), fallback=fallback)
