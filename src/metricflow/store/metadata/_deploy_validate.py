"""Input rules of deployments (pure: no database); each failure names the field and limit.

What needs the registry (does the model exist, does the alias or version) is checked
by the store inside its transaction (`_deployments.py`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from metricflow._netguard import refused_without_dns
from metricflow.entities import STICKY_SOURCES, VARIANT_STATES, Guardrails, StickyKey, Variant
from metricflow.errors import InvalidArgument

MAX_DEPLOYMENT_NAME = 128
MAX_VARIANT_NAME = 64
MAX_VARIANTS = 16
MAX_STICKY_NAME = 256
MAX_ENDPOINT = 1000
MAX_DESCRIPTION = 5000
MAX_REASON = 2000
MAX_WINDOW_S = 3600.0
MIN_WINDOW_S = 1.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~\-]+$")  # an HTTP token (RFC 9110)


def check_deployment_name(name: object, field: str = "name") -> str:
    """A deployment name: [A-Za-z0-9_.-], starting with a letter or digit, ≤ 128 chars.

    Names appear in run tags, experiment names and Prometheus labels, hence the set.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"deployment {field} must be a non-empty string",
                              field=field, received=repr(name)[:100])
    if len(name) > MAX_DEPLOYMENT_NAME:
        raise InvalidArgument(f"deployment {field} is {len(name)} characters long; the limit "
                              f"is {MAX_DEPLOYMENT_NAME}", field=field,
                              limit=MAX_DEPLOYMENT_NAME, received=len(name))
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"deployment {field} {name[:80]!r} may use only letters, digits, "
                              "'_', '.' and '-', and must start with a letter or digit",
                              field=field, received=name[:100])
    return name


def _field(i: int, name: str) -> str:
    return f"variants[{i}].{name}"


def _weight(i: int, raw: object, shadow: bool) -> float:
    f = _field(i, "weight")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidArgument(f"{f} must be a number, got {type(raw).__name__}", field=f,
                              received=repr(raw)[:100])
    try:
        w = float(raw)
    except OverflowError:  # an integer too large for a double
        w = math.inf
    if not math.isfinite(w) or w < 0:
        raise InvalidArgument(f"{f} must be a finite number ≥ 0, got {repr(raw)[:40]}",
                              field=f, received=repr(raw)[:40])
    if shadow and not 0 < w <= 1:
        raise InvalidArgument(f"{f} of a shadow variant is the fraction of requests "
                              f"mirrored to it, in (0, 1]; got {repr(raw)[:40]}", field=f,
                              limit=1, received=repr(raw)[:40])
    return w


def check_variant(i: int, v: Variant) -> Variant:
    """One variant's own rules (name, exactly one target, endpoint URL, weight)."""
    f = _field(i, "name")
    if not isinstance(v.name, str) or not v.name:
        raise InvalidArgument(f"{f} must be a non-empty string", field=f)
    if len(v.name) > MAX_VARIANT_NAME or not _NAME_RE.match(v.name):
        raise InvalidArgument(f"{f} {v.name[:80]!r} must be at most {MAX_VARIANT_NAME} of "
                              "letters, digits, '_', '.' and '-', starting with a letter or "
                              "digit", field=f, limit=MAX_VARIANT_NAME, received=v.name[:100])
    targets = [n for n, x in (("alias", v.alias), ("version", v.version),
                              ("endpoint", v.endpoint)) if x]
    if len(targets) != 1:
        raise InvalidArgument(
            f"variant {v.name!r} must name exactly one of alias, version or endpoint; got "
            f"{', '.join(targets) if targets else 'none'}", field=_field(i, "alias"),
            received=targets)
    version = v.version
    if v.alias:
        if len(v.alias) > 256 or not _ALIAS_RE.match(v.alias):
            raise InvalidArgument(f"{_field(i, 'alias')} {v.alias[:80]!r} is not a valid "
                                  "alias (letters, digits, '_' and '-')",
                                  field=_field(i, "alias"), received=v.alias[:100])
    if v.version:
        text = str(v.version).strip()
        if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
            raise InvalidArgument(f"{_field(i, 'version')} must be a positive integer "
                                  f"version, got {v.version!r}", field=_field(i, "version"),
                                  received=str(v.version)[:100])
        version = str(int(text))
    if v.endpoint:
        u = urlsplit(v.endpoint)
        if (u.scheme not in ("http", "https") or not u.netloc
                or len(v.endpoint) > MAX_ENDPOINT):
            raise InvalidArgument(f"{_field(i, 'endpoint')} must be an http(s) URL of at "
                                  f"most {MAX_ENDPOINT} characters, got {v.endpoint[:100]!r}",
                                  field=_field(i, "endpoint"), limit=MAX_ENDPOINT,
                                  received=v.endpoint[:100])
        _check_endpoint_host(i, u.hostname or "", "@" in u.netloc)
    weight = _weight(i, v.weight, bool(v.shadow))
    return Variant(name=v.name, alias=v.alias, version=version, endpoint=v.endpoint,
                   weight=weight, shadow=bool(v.shadow))


def _check_endpoint_host(i: int, host: str, userinfo: bool) -> None:
    """No credentials in the URL, and never a link-local, multicast or unspecified address
    (cloud metadata services live at 169.254.169.254 / fd00:ec2::254), in any form the
    resolver reads as one (`::ffff:169.254.169.254`, `2852039166`, a trailing dot:
    metricflow._netguard): a serve process would forward callers' requests there. Names
    are resolved by `serve`, which checks again. Private and loopback hosts are allowed
    here (another server's /invocations); `serve` refuses them unless its operator allows
    them."""
    f = _field(i, "endpoint")
    if userinfo:
        raise InvalidArgument(f"{f} must not carry credentials (user:password@)", field=f)
    why = refused_without_dns(host)
    if why:
        raise InvalidArgument(f"{f} host {host!r} {why}; refused", field=f, received=host)


def check_variants(variants: Sequence[Variant]) -> tuple[Variant, ...]:
    """All variants: 1..16, unique names, routed weights with a positive sum."""
    if not variants:
        raise InvalidArgument("a deployment needs at least one variant", field="variants",
                              received=0)
    if len(variants) > MAX_VARIANTS:
        raise InvalidArgument(f"a deployment has at most {MAX_VARIANTS} variants; got "
                              f"{len(variants)}", field="variants", limit=MAX_VARIANTS,
                              received=len(variants))
    out = tuple(check_variant(i, v) for i, v in enumerate(variants))
    seen: set[str] = set()
    for i, v in enumerate(out):
        if v.name in seen:
            raise InvalidArgument(f"variant name {v.name!r} is used twice", field=_field(i, "name"),
                                  received=v.name)
        seen.add(v.name)
    routed = [v for v in out if not v.shadow]
    if not routed:
        raise InvalidArgument("a deployment needs at least one routed (non-shadow) variant",
                              field="variants", received=len(out))
    total = sum(v.weight for v in routed)
    if total <= 0:
        raise InvalidArgument("the routed variants' weights must add up to more than 0; got "
                              + ", ".join(f"{v.name}={v.weight:g}" for v in routed),
                              field="variants.weight", received=total)
    return out


def check_sticky_key(sticky: StickyKey | None) -> StickyKey | None:
    if sticky is None:
        return None
    if sticky.source not in STICKY_SOURCES:
        raise InvalidArgument(f"sticky_key source must be one of {', '.join(STICKY_SOURCES)}; "
                              f"got {sticky.source!r}", field="sticky_key.source",
                              received=str(sticky.source)[:100])
    name = sticky.name
    if not isinstance(name, str) or not name or len(name) > MAX_STICKY_NAME:
        raise InvalidArgument(f"sticky_key name must be 1 to {MAX_STICKY_NAME} characters",
                              field="sticky_key.name", limit=MAX_STICKY_NAME,
                              received=repr(name)[:100])
    if sticky.source == "header" and not _HEADER_RE.match(name):
        raise InvalidArgument(f"sticky_key header {name[:80]!r} is not a valid HTTP header name",
                              field="sticky_key.name", received=name[:100])
    return StickyKey(sticky.source, name.lower() if sticky.source == "header" else name)


def parse_sticky_key(text: str) -> StickyKey | None:
    """"header:X-User-Id" or "field:user_id" (or "" for none)."""
    if not text:
        return None
    source, sep, name = text.partition(":")
    if not sep:
        raise InvalidArgument(f"sticky_key must be 'header:NAME' or 'field:NAME'; got "
                              f"{text[:100]!r}", field="sticky_key", received=text[:100])
    return check_sticky_key(StickyKey(source, name))


def _limit(raw: object, field: str, lo: float, hi: float, *, lo_open: bool = False
           ) -> float:
    # Integers compare exactly, however large; only floats can be NaN or infinite.
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) \
            or (isinstance(raw, float) and not math.isfinite(raw)) \
            or raw > hi or raw < lo or (lo_open and raw == lo):
        raise InvalidArgument(f"{field} must be a number in {'(' if lo_open else '['}{lo:g}, "
                              f"{hi:g}]; got {repr(raw)[:40]}", field=field, limit=hi,
                              received=repr(raw)[:100])
    return float(raw)


def check_guardrails(g: Guardrails, variants: Sequence[Variant]) -> Guardrails:
    """Limits in range; the fallback, when named, is a routed variant."""
    err = None if g.max_error_rate is None else _limit(
        g.max_error_rate, "guardrails.max_error_rate", 0.0, 1.0)
    p99 = None if g.max_latency_p99_ms is None else _limit(
        g.max_latency_p99_ms, "guardrails.max_latency_p99_ms", 0.0, 3_600_000.0, lo_open=True)
    window = _limit(g.window_s, "guardrails.window_s", MIN_WINDOW_S, MAX_WINDOW_S)
    if isinstance(g.min_requests, bool) or not isinstance(g.min_requests, int) \
            or not 1 <= g.min_requests <= 1_000_000:
        raise InvalidArgument(f"guardrails.min_requests must be an integer in [1, 1000000]; "
                              f"got {repr(g.min_requests)[:40]}", field="guardrails.min_requests",
                              limit=1_000_000, received=repr(g.min_requests)[:100])
    routed = {v.name for v in variants if not v.shadow}
    if g.fallback and g.fallback not in routed:
        raise InvalidArgument(f"guardrails.fallback {g.fallback[:80]!r} is not a routed "
                              f"variant of this deployment (routed: {', '.join(sorted(routed))})",
                              field="guardrails.fallback", received=g.fallback[:100])
    return Guardrails(max_error_rate=err, max_latency_p99_ms=p99, window_s=window,
                      min_requests=g.min_requests, fallback=g.fallback)


def check_description(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidArgument("description must be a string", field="description",
                              received=repr(text)[:100])
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description is {len(text)} characters long; the limit is "
                              f"{MAX_DESCRIPTION}", field="description", limit=MAX_DESCRIPTION,
                              received=len(text))
    return text


def check_state(state: object) -> str:
    if state not in VARIANT_STATES:
        raise InvalidArgument(f"state must be one of {', '.join(VARIANT_STATES)}; got "
                              f"{str(state)[:80]!r}", field="state", received=str(state)[:100])
    return str(state)


def check_reason(text: object, field: str = "reason") -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"{field} must be a string", field=field, received=repr(text)[:100])
    return text[:MAX_REASON]  # a load error's traceback may be long: keep its head


def variants_from_json(raw: Any) -> tuple[Variant, ...]:
    """Variants from a JSON list (HTTP bodies, CLI files), refusing unknown keys."""
    if not isinstance(raw, list):
        raise InvalidArgument("variants must be a list of objects", field="variants",
                              received=type(raw).__name__)
    allowed = {"name", "alias", "version", "endpoint", "weight", "shadow"}
    out = []
    for i, v in enumerate(raw):
        if not isinstance(v, Mapping):
            raise InvalidArgument(f"variants[{i}] must be an object", field=f"variants[{i}]",
                                  received=type(v).__name__)
        extra = set(v) - allowed
        if extra:
            raise InvalidArgument(f"variants[{i}] has unknown keys {sorted(extra)}; allowed: "
                                  f"{sorted(allowed)}", field=f"variants[{i}]",
                                  received=sorted(extra))
        for key in ("name", "alias", "endpoint"):
            if not isinstance(v.get(key, ""), str):
                raise InvalidArgument(f"variants[{i}].{key} must be a string",
                                      field=f"variants[{i}].{key}", received=repr(v[key])[:100])
        version = v.get("version", "")
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise InvalidArgument(f"variants[{i}].version must be a string or integer",
                                  field=f"variants[{i}].version", received=repr(version)[:100])
        shadow = v.get("shadow", False)
        if not isinstance(shadow, bool):
            raise InvalidArgument(f"variants[{i}].shadow must be true or false",
                                  field=f"variants[{i}].shadow", received=repr(shadow)[:100])
        out.append(Variant(name=v.get("name", ""), alias=v.get("alias", ""),
                           version=str(version) if version != "" else "",
                           endpoint=v.get("endpoint", ""),
                           weight=v.get("weight", 1.0), shadow=shadow))
    return tuple(out)
