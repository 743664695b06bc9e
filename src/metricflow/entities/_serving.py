"""Value types of model serving: deployments, their variants, guardrails and status.

A `Deployment` routes one registered model's traffic between variants (a registry
alias, a pinned version, or an external endpoint), mirrors it to shadow variants,
keeps a user on one variant by a sticky key, and takes a variant out of rotation
when its guardrails are breached. Serve processes poll it and report back
(`VariantStatus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STICKY_SOURCES = ("header", "field")
"""Where a sticky key is read: an HTTP request header, or an input field of the payload."""

STATE_SERVING = "serving"
STATE_LOAD_FAILED = "load_failed"
STATE_OUT_OF_ROTATION = "out_of_rotation"
VARIANT_STATES = (STATE_SERVING, STATE_LOAD_FAILED, STATE_OUT_OF_ROTATION)
"""What a serve process reports about a variant: loaded and serving; the version it tried
failed to load (traffic stays on the old one); taken out of rotation by a guardrail."""


@dataclass(frozen=True)
class Variant:
    """One way of answering a deployment's requests.

    Exactly one of `alias`, `version` and `endpoint` is set.
    """

    name: str
    """Unique within the deployment ([A-Za-z0-9_.-], at most 64 characters)."""
    alias: str = ""
    """A registry alias of the deployment's model (e.g. "champion"); follows the alias."""
    version: str = ""
    """A pinned model version."""
    endpoint: str = ""
    """An external http(s) URL to proxy to (e.g. another server's /invocations)."""
    weight: float = 1.0
    """Routed variants: relative traffic weight (90 and 10, or 0.9 and 0.1).
    Shadow variants: the fraction of requests mirrored to it, in (0, 1]."""
    shadow: bool = False
    """Gets a mirrored copy of requests; its answers are discarded."""
    resolved_version: str = ""
    """On reads: the version the alias (or pin) names right now; "" if it names none."""
    source: str = ""
    """On reads: the resolved version's artifact location (what a serve process loads)."""

    @property
    def target(self) -> str:
        """What the variant serves, as written: "@alias", "v3" or the endpoint URL."""
        if self.alias:
            return f"@{self.alias}"
        if self.version:
            return f"v{self.version}"
        return self.endpoint


@dataclass(frozen=True)
class StickyKey:
    """A header or input field whose value is hashed, so one user always sees one variant."""

    source: str
    """"header" or "field"."""
    name: str

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


@dataclass(frozen=True)
class Guardrails:
    """Per-variant limits over a sliding window; a breached variant leaves rotation.

    Unset limits (None) are not checked. Requests a tripped variant would have served
    go to `fallback`.
    """

    max_error_rate: float | None = None
    """Largest allowed fraction of failed requests (0..1)."""
    max_latency_p99_ms: float | None = None
    """Largest allowed p99 latency in ms."""
    window_s: float = 30.0
    """Length of the sliding window, in seconds."""
    min_requests: int = 20
    """A variant is judged only once its window holds this many requests."""
    fallback: str = ""
    """The variant that takes over (the champion); default: the largest routed weight."""

    @property
    def enabled(self) -> bool:
        return self.max_error_rate is not None or self.max_latency_p99_ms is not None


@dataclass(frozen=True)
class VariantStatus:
    """The last state a serve process reported for a variant."""

    variant: str
    state: str
    """One of `VARIANT_STATES`."""
    version: str = ""
    """The version the report is about ("" for endpoints)."""
    reason: str = ""
    reporter: str = ""
    """Which serve process reported it (host:port or an instance id)."""
    timestamp: int = 0
    """ms since epoch."""


@dataclass(frozen=True)
class Deployment:
    """A named routing of one registered model's traffic; `row_version` guards updates."""

    name: str
    model_name: str
    variants: tuple[Variant, ...]
    """Routed and shadow variants, in the order given."""
    sticky_key: StickyKey | None = None
    guardrails: Guardrails = field(default_factory=Guardrails)
    description: str = ""
    creation_timestamp: int = 0
    last_updated_timestamp: int = 0
    row_version: int = 1
    """Increases with every change of the deployment's spec."""
    statuses: tuple[VariantStatus, ...] = ()
    """What serve processes reported, one entry per variant that has a report."""

    @property
    def routed(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if not v.shadow)

    @property
    def shadows(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.shadow)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def status_of(self, name: str) -> VariantStatus | None:
        return next((s for s in self.statuses if s.variant == name), None)

    @property
    def fallback(self) -> str:
        """The variant that takes a tripped variant's traffic."""
        if self.guardrails.fallback:
            return self.guardrails.fallback
        routed = self.routed
        return max(routed, key=lambda v: v.weight).name if routed else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the /api/v1 answer, the audit record, `deploy show --json`)."""
        return deployment_to_dict(self)


def variant_to_dict(v: Variant) -> dict[str, Any]:
    return {"name": v.name, "alias": v.alias, "version": v.version, "endpoint": v.endpoint,
            "weight": v.weight, "shadow": v.shadow, "resolved_version": v.resolved_version,
            "source": v.source}


def deployment_to_dict(d: Deployment) -> dict[str, Any]:
    """The JSON form of a deployment (the inverse is `deployment_from_dict`)."""
    g = d.guardrails
    return {
        "name": d.name, "model_name": d.model_name,
        "variants": [variant_to_dict(v) for v in d.variants],
        "sticky_key": None if d.sticky_key is None else
        {"source": d.sticky_key.source, "name": d.sticky_key.name},
        "guardrails": {"max_error_rate": g.max_error_rate,
                       "max_latency_p99_ms": g.max_latency_p99_ms, "window_s": g.window_s,
                       "min_requests": g.min_requests, "fallback": g.fallback},
        "description": d.description, "creation_timestamp": d.creation_timestamp,
        "last_updated_timestamp": d.last_updated_timestamp, "row_version": d.row_version,
        "statuses": [{"variant": s.variant, "state": s.state, "version": s.version,
                      "reason": s.reason, "reporter": s.reporter, "timestamp": s.timestamp}
                     for s in d.statuses],
    }


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def deployment_from_dict(d: Mapping[str, Any]) -> Deployment:
    """A deployment from its JSON form (what `/api/v1/deployments/get` answers)."""
    sk = d.get("sticky_key")
    g = d.get("guardrails") or {}
    return Deployment(
        name=str(d["name"]), model_name=str(d["model_name"]),
        variants=tuple(Variant(
            name=str(v["name"]), alias=str(v.get("alias") or ""),
            version=str(v.get("version") or ""), endpoint=str(v.get("endpoint") or ""),
            weight=float(v.get("weight", 1.0)), shadow=bool(v.get("shadow")),
            resolved_version=str(v.get("resolved_version") or ""),
            source=str(v.get("source") or "")) for v in d.get("variants") or ()),
        sticky_key=None if not sk else StickyKey(str(sk["source"]), str(sk["name"])),
        guardrails=Guardrails(
            max_error_rate=_num(g.get("max_error_rate")),
            max_latency_p99_ms=_num(g.get("max_latency_p99_ms")),
            window_s=float(g.get("window_s", 30.0)), min_requests=int(g.get("min_requests", 20)),
            fallback=str(g.get("fallback") or "")),
        description=str(d.get("description") or ""),
        creation_timestamp=int(d.get("creation_timestamp") or 0),
        last_updated_timestamp=int(d.get("last_updated_timestamp") or 0),
        row_version=int(d.get("row_version") or 1),
        statuses=tuple(VariantStatus(
            variant=str(s["variant"]), state=str(s["state"]), version=str(s.get("version") or ""),
            reason=str(s.get("reason") or ""), reporter=str(s.get("reporter") or ""),
            timestamp=int(s.get("timestamp") or 0)) for s in d.get("statuses") or ()),
    )
