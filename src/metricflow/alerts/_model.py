"""Alert rules and webhooks as values, checked at construction (field, limit, received)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from metricflow._events import EVENTS
from metricflow.errors import InvalidArgument
from metricflow.store.metadata import (
    canonical_experiment_id,
    check_experiment_id,
)
from metricflow.store.metadata import check_row_id as check_id

CONDITIONS = ("threshold", "nonfinite", "stalled", "change", "failed")
"""threshold: the metric's value `op` `value`; nonfinite: a NaN or +-Inf point;
stalled: no point for `stalled_s` while the run is RUNNING; change: relative change
of the metric over the last `window_steps` steps `op` `value` (0.5 = up 50%);
failed: the run ended FAILED."""
OPS = (">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "error", "critical")
PAYLOAD_FORMATS = ("json", "slack")
MAX_NAME = 256
MAX_FILTER = 4000
MAX_KEY = 250
MAX_CHANNELS = 32
MAX_EXPERIMENTS = 100
MAX_FOR_S = 7 * 24 * 3600.0
MAX_WINDOW = 100_000
FOREVER_MS = 2**62
"""`muted_until` of a rule muted with no end."""
MAX_MUTE_S = 366 * 24 * 3600.0
"""The longest mute with an end (a year and a day); longer: mute until unmuted."""
MIN_SECRET = 16
"""The shortest webhook signing secret (when one is given: none = unsigned deliveries)."""
MAX_SECRET = 512
"""The longest webhook signing secret (the column's size)."""


def _bad(fld: str, msg: str, received: Any = None, limit: Any = None) -> InvalidArgument:
    return InvalidArgument(f"{fld}: {msg}", field=fld, received=received, limit=limit)


def _str(d: Mapping[str, Any], key: str, default: str = "", limit: int = MAX_NAME) -> str:
    v = d.get(key, default)
    if v is None:
        v = default
    if not isinstance(v, str):
        raise _bad(key, f"must be a string, got {type(v).__name__}", str(v)[:80])
    if len(v) > limit:
        raise _bad(key, f"is {len(v)} characters long; the limit is {limit}", v[:80], limit)
    return v


def _num(d: Mapping[str, Any], key: str, default: float, lo: float, hi: float,
         prefix: str = "") -> float:
    v = d.get(key, default)
    if v is None:
        v = default
    fld = prefix + key
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(fld, f"must be a number, got {type(v).__name__}", str(v)[:80])
    if not math.isfinite(v) or not lo <= v <= hi:
        raise _bad(fld, f"must be in [{lo}, {hi}], got {v}", v, hi)
    return float(v)


def _ids(v: Any, fld: str, limit: int) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)):
        raise _bad(fld, f"must be a list, got {type(v).__name__}", str(v)[:80])
    if len(v) > limit:
        raise _bad(fld, f"has {len(v)} entries; the limit is {limit}", len(v), limit)
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (str, int)) or not str(x).strip():
            raise _bad(fld, "entries must be non-empty ids", str(x)[:80])
        out.append(str(x).strip())
    return tuple(out)


def check_mute_s(d: Any) -> float:
    """A mute duration in seconds: a finite number in [0, MAX_MUTE_S]."""
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        raise _bad("duration_s", f"must be a number of seconds in [0, {MAX_MUTE_S:.0f}], "
                   f"got {type(d).__name__}",
                   str(d)[:80], MAX_MUTE_S)
    if (isinstance(d, float) and not math.isfinite(d)) or not 0 <= d <= MAX_MUTE_S:
        got = f"{d:.6g}" if isinstance(d, float) else (
            str(d) if abs(d) < 10**40 else "an integer of more than 40 digits")
        raise _bad("duration_s", f"must be in [0, {MAX_MUTE_S:.0f}] seconds (366 days; "
                   f"mute without a duration to mute until unmuted), got {got}",
                   got, MAX_MUTE_S)
    return float(d)


def canonical_experiments(ids: Sequence[str]) -> tuple[str, ...]:
    """Stored experiment ids as canonical ids ('01' -> '1'; rows written before rule
    ids were canonicalized on create), duplicates dropped."""
    return tuple(dict.fromkeys(canonical_experiment_id(str(e)) for e in ids))


def covers(hook_experiments: Sequence[str], experiment_ids: Sequence[str]) -> bool:
    """Whether a webhook scoped to `hook_experiments` may carry alerts of rules over
    `experiment_ids`: it has no scope (every experiment), or the rule names experiments
    and each is in the webhook's scope. A rule over every experiment (none named) may
    use only unscoped webhooks."""
    if not hook_experiments:
        return True
    scope = set(canonical_experiments(hook_experiments))
    return bool(experiment_ids) and all(canonical_experiment_id(str(e)) in scope
                                        for e in experiment_ids)


@dataclass(frozen=True)
class Rule:
    """One alert rule. `experiment_ids` empty = every experiment the creator may read
    (the API requires at least one with auth on)."""

    name: str
    condition: str
    experiment_ids: tuple[str, ...] = ()
    run_filter: str = ""
    metric_key: str = ""
    op: str = ">"
    threshold: float = 0.0
    window_steps: int = 0
    stalled_s: float = 0.0
    for_s: float = 0.0
    severity: str = "warning"
    channels: tuple[int, ...] = ()
    muted_until: int = 0
    rule_id: int = 0
    created_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        cond: dict[str, Any] = {"type": self.condition}
        if self.condition in ("threshold", "change", "nonfinite"):
            cond["metric"] = self.metric_key
        if self.condition in ("threshold", "change"):
            cond.update(op=self.op, value=self.threshold)
        if self.condition == "change":
            cond["window_steps"] = self.window_steps
        if self.condition == "stalled":
            cond["seconds"] = self.stalled_s
        return {"rule_id": str(self.rule_id), "name": self.name,
                "experiment_ids": list(self.experiment_ids), "run_filter": self.run_filter,
                "condition": cond, "for_s": self.for_s, "severity": self.severity,
                "channels": [str(c) for c in self.channels], "muted_until": self.muted_until,
                "created_by": self.created_by, "creation_time": self.creation_time,
                "last_update_time": self.last_update_time}


def rule_from_dict(d: Mapping[str, Any]) -> Rule:
    """A rule from the API's JSON body (docs/alerts.md): every field checked."""
    if not isinstance(d, Mapping):
        raise _bad("rule", "must be a JSON object", str(d)[:80])
    name = _str(d, "name")
    if not name.strip():
        raise _bad("name", "must not be empty", name)
    cond = d.get("condition")
    if not isinstance(cond, Mapping):
        raise _bad("condition", "must be an object with a 'type'", str(cond)[:80])
    ctype = _str(cond, "type")
    if ctype not in CONDITIONS:
        raise _bad("condition.type", f"must be one of {', '.join(CONDITIONS)}", ctype)
    metric = _str(cond, "metric", limit=MAX_KEY)
    if metric.startswith("metrics."):
        metric = metric[len("metrics."):]
    op, value, window, stalled = ">", 0.0, 0, 0.0
    if ctype in ("threshold", "change", "nonfinite") and not metric:
        raise _bad("condition.metric", f"is required for a {ctype} condition", metric)
    if ctype in ("threshold", "change"):
        op = _str(cond, "op", ">")
        if op not in OPS:
            raise _bad("condition.op", f"must be one of {' '.join(OPS)}", op)
        if "value" not in cond:
            raise _bad("condition.value", f"is required for a {ctype} condition")
        value = _num(cond, "value", 0.0, -1e308, 1e308, "condition.")
    if ctype == "change":
        window = int(_num(cond, "window_steps", 0, 1, MAX_WINDOW, "condition."))
    if ctype == "stalled":
        stalled = _num(cond, "seconds", 0.0, 0.1, MAX_FOR_S, "condition.")
    severity = _str(d, "severity", "warning")
    if severity not in SEVERITIES:
        raise _bad("severity", f"must be one of {', '.join(SEVERITIES)}", severity)
    channels = _ids(d.get("channels"), "channels", MAX_CHANNELS)
    chans = tuple(dict.fromkeys(check_id(c, "channels") for c in channels))
    # Canonical ids ('01' -> '1'): the permission check reads '01' as experiment 1, and
    # the evaluator and the rule listing compare the stored ids with canonical ones.
    exps = tuple(dict.fromkeys(check_experiment_id(e, "experiment_ids") for e in _ids(
        d.get("experiment_ids"), "experiment_ids", MAX_EXPERIMENTS)))
    return Rule(name=name, condition=ctype, experiment_ids=exps,
                run_filter=_str(d, "run_filter", limit=MAX_FILTER).strip(), metric_key=metric,
                op=op, threshold=value, window_steps=window, stalled_s=stalled,
                for_s=_num(d, "for_s", 0.0, 0.0, MAX_FOR_S), severity=severity,
                channels=chans)


def _secret(d: Mapping[str, Any]) -> str:
    """The webhook's signing secret: "" (none), or MIN_SECRET..MAX_SECRET characters.
    Errors give its type or length, never the secret itself."""
    v = d.get("secret")
    if v is None or v == "":
        return ""
    if not isinstance(v, str):
        raise _bad("secret", f"must be a string, got {type(v).__name__}")
    if not MIN_SECRET <= len(v) <= MAX_SECRET:
        short = len(v) < MIN_SECRET
        limit = MIN_SECRET if short else MAX_SECRET
        raise _bad("secret", f"must be {'at least' if short else 'at most'} {limit} characters "
                   f"long, got {len(v)} character{'' if len(v) == 1 else 's'} (the secret "
                   "itself is not shown)", received=len(v), limit=limit)
    return v


@dataclass(frozen=True)
class Webhook:
    """A subscription: `events` POSTed to `url`, signed with `secret`."""

    name: str
    url: str
    events: tuple[str, ...]
    secret: str = ""
    experiment_ids: tuple[str, ...] = ()
    payload_format: str = "json"
    status: str = "ACTIVE"
    webhook_id: int = 0
    created_by: str = ""
    creation_time: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Never the secret."""
        return {"webhook_id": str(self.webhook_id), "name": self.name, "url": self.url,
                "events": list(self.events), "experiment_ids": list(self.experiment_ids),
                "payload_format": self.payload_format, "status": self.status,
                "created_by": self.created_by, "creation_time": self.creation_time}


def webhook_from_dict(d: Mapping[str, Any]) -> Webhook:
    if not isinstance(d, Mapping):
        raise _bad("webhook", "must be a JSON object", str(d)[:80])
    name = _str(d, "name")
    url = _str(d, "url", limit=2000)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad("url", "must be an http:// or https:// URL", url[:80])
    if "@" in parts.netloc:  # it would be listed, audited and sent as Basic auth
        raise _bad("url", "must not carry credentials (user:password@); sign with `secret`",
                   parts.scheme + "://...@" + parts.netloc.rsplit("@", 1)[1][:80])
    if any(c in parts.netloc for c in "\\%") or any(ord(c) < 33 for c in url):
        # parsers disagree on these (a backslash ends the host for some, a %-escape is
        # decoded by some): the host checked must be the host connected to
        raise _bad("url", "must not hold a backslash, a %-escape in its host, spaces or "
                   "control characters", url[:80])
    events = _ids(d.get("events"), "events", 64)
    if not events:
        raise _bad("events", "must name at least one event", [])
    for e in events:
        if e not in EVENTS:
            raise _bad("events", f"unknown event {e!r}; one of {', '.join(sorted(EVENTS))}", e)
    fmt = _str(d, "payload_format", "json")
    if fmt not in PAYLOAD_FORMATS:
        raise _bad("payload_format", f"must be one of {', '.join(PAYLOAD_FORMATS)}", fmt)
    status = _str(d, "status", "ACTIVE")
    if status not in ("ACTIVE", "DISABLED"):
        raise _bad("status", "must be ACTIVE or DISABLED", status)
    return Webhook(name=name or url, url=url, events=events,
                   secret=_secret(d),
                   experiment_ids=tuple(dict.fromkeys(
                       check_experiment_id(e, "experiment_ids") for e in _ids(
                           d.get("experiment_ids"), "experiment_ids", MAX_EXPERIMENTS))),
                   payload_format=fmt, status=status)
