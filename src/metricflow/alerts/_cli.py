"""`metricflow alerts create|list|mute|delete|...`: manage rules and webhooks over /api/v1.

`metricflow alerts` with no subcommand runs the alerts role (metricflow.app); with one
it is a client of a server's HTTP API (`--url`, default http://127.0.0.1:5000).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from metricflow import _env

_WHEN = re.compile(r"^\s*(?:metrics\.)?(\S+?)\s*(>=|<=|>|<)\s*([-+0-9.eE]+|inf|-inf)\s*$")


def _when(text: str, flag: str) -> dict[str, Any]:
    m = _WHEN.match(text)
    if m is None:
        raise SystemExit(f"metricflow alerts: {flag} must look like \"metrics.loss > 10\", "
                         f"got {text!r}")
    try:
        value = float(m.group(3))
    except ValueError:
        raise SystemExit(f"metricflow alerts: {flag}: {m.group(3)!r} is not a number") from None
    return {"metric": m.group(1), "op": m.group(2), "value": value}


def _condition(a: argparse.Namespace) -> dict[str, Any]:
    given = [x for x in ("when", "nonfinite", "stalled", "change", "failed")
             if getattr(a, x) not in (None, False)]
    if len(given) != 1:
        raise SystemExit("metricflow alerts create: give exactly one of --when, --nonfinite, "
                         "--stalled, --change, --failed")
    if a.when:
        return {"type": "threshold", **_when(a.when, "--when")}
    if a.nonfinite:
        return {"type": "nonfinite", "metric": a.nonfinite}
    if a.stalled is not None:
        return {"type": "stalled", "seconds": a.stalled}
    if a.change:
        if a.window is None:
            raise SystemExit("metricflow alerts create: --change needs --window STEPS")
        return {"type": "change", "window_steps": a.window, **_when(a.change, "--change")}
    return {"type": "failed"}


def _call(a: argparse.Namespace, method: str, path: str, body: Any = None,
          params: dict[str, Any] | None = None) -> Any:
    import requests

    headers = {}
    token = a.token or _env.API_TOKEN.get()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if a.actor:
        headers["X-Metricflow-Actor"] = a.actor
    url = a.url.rstrip("/") + "/api/v1" + path
    try:
        r = requests.request(method, url, json=body, params=params, headers=headers,
                             timeout=30)
    except requests.RequestException as e:
        raise SystemExit(f"metricflow alerts: {url} unreachable: {e}") from None
    try:
        out = r.json()
    except ValueError:
        out = {"message": r.text[:500]}
    if r.status_code >= 400:
        raise SystemExit(f"metricflow alerts: {out.get('error_code', r.status_code)}: "
                         f"{out.get('message', '')}")
    return out


def _print(a: argparse.Namespace, out: Any, lines: list[str]) -> int:
    if a.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print("\n".join(lines))
    return 0


def _create(a: argparse.Namespace) -> int:
    body = {"name": a.name, "experiment_ids": a.experiment or [], "run_filter": a.filter or "",
            "condition": _condition(a), "for_s": a.for_s, "severity": a.severity,
            "channels": a.channel or []}
    out = _call(a, "POST", "/alerts/rules/create", body)
    return _print(a, out, [f"rule {out['rule']['rule_id']} created"])


def _list(a: argparse.Namespace) -> int:
    out = _call(a, "GET", "/alerts/rules/list",
                params={"experiment_id": a.experiment} if a.experiment else None)
    lines = [f"{r['rule_id']}\t{r['name']}\t{r['severity']}\t{json.dumps(r['condition'])}"
             f"\tfor={r['for_s']:g}s\texperiments={','.join(r['experiment_ids']) or '*'}"
             + ("\tmuted" if r["muted_until"] else "") for r in out["rules"]]
    return _print(a, out, lines)


def _mute(a: argparse.Namespace) -> int:
    dur = 0.0 if a.unmute else a.duration
    out = _call(a, "POST", "/alerts/rules/mute", {"rule_id": a.rule_id, "duration_s": dur})
    return _print(a, out, [f"rule {a.rule_id} " + ("unmuted" if a.unmute else "muted")])


def _delete(a: argparse.Namespace) -> int:
    out = _call(a, "POST", "/alerts/rules/delete", {"rule_id": a.rule_id})
    return _print(a, out, [f"rule {a.rule_id} deleted"])


def _webhook_create(a: argparse.Namespace) -> int:
    body = {"name": a.name or a.webhook_url, "url": a.webhook_url, "events": a.event,
            "secret": a.secret or "",
            "experiment_ids": a.experiment or [],
            "payload_format": "slack" if a.slack else "json"}
    out = _call(a, "POST", "/webhooks/create", body)
    return _print(a, out, [f"webhook {out['webhook']['webhook_id']} created"])


def _webhooks(a: argparse.Namespace) -> int:
    out = _call(a, "GET", "/webhooks/list")
    return _print(a, out, [f"{w['webhook_id']}\t{w['url']}\t{','.join(w['events'])}"
                           f"\t{w['payload_format']}\t{w['status']}" for w in out["webhooks"]])


def _deliveries(a: argparse.Namespace) -> int:
    params = {k: v for k, v in (("webhook_id", a.webhook), ("status", a.status)) if v}
    out = _call(a, "GET", "/webhooks/deliveries", params=params)
    return _print(a, out, [f"{d['delivery_id']}\t{d['webhook_id']}\t{d['event']}\t{d['status']}"
                           f"\tattempts={d['attempts']}\t{d['last_error'] or ''}"
                           for d in out["deliveries"]])


def _redeliver(a: argparse.Namespace) -> int:
    out = _call(a, "POST", "/webhooks/redeliver",
                {"webhook_id": a.webhook_id, "delivery_ids": a.delivery or []})
    return _print(a, out, [f"{out['redelivered']} deliveries queued again"])


def _test(a: argparse.Namespace) -> int:
    out = _call(a, "POST", "/webhooks/test", {"webhook_id": a.webhook_id})
    _print(a, out, [f"status {out['status_code']}" + (f": {out['error']}" if out["error"]
                                                      else "")])
    return 0 if out["delivered"] else 1


def add_alerts_commands(role_parser: argparse.ArgumentParser) -> None:
    """The management subcommands under the `metricflow alerts` role parser."""
    sub = role_parser.add_subparsers(dest="alerts_command", metavar="COMMAND")

    def cmd(name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--url", default="http://127.0.0.1:5000",
                       help="the server's HTTP address (a role serving /api/v1)")
        p.add_argument("--token", default=None, help="bearer token (env METRICFLOW_TOKEN)")
        p.add_argument("--actor", default=None, help="user recorded when auth is off")
        p.add_argument("--json", action="store_true", help="print the answer as JSON")
        p.set_defaults(func=fn)
        return p

    c = cmd("create", _create, "create an alert rule")
    c.add_argument("name")
    c.add_argument("--experiment", action="append", metavar="ID",
                   help="experiment in scope (repeatable)")
    c.add_argument("--filter", default="", help="run filter (search grammar)")
    c.add_argument("--when", help='threshold: "metrics.loss > 10"')
    c.add_argument("--nonfinite", metavar="KEY", help="NaN or +-Inf seen on KEY")
    c.add_argument("--stalled", type=float, metavar="SECONDS",
                   help="no point for SECONDS while RUNNING")
    c.add_argument("--change", help='relative change: "metrics.loss > 0.5" (up 50%%)')
    c.add_argument("--window", type=int, metavar="STEPS", help="--change's window")
    c.add_argument("--failed", action="store_true", help="the run ended FAILED")
    c.add_argument("--for", dest="for_s", type=float, default=0.0, metavar="SECONDS",
                   help="the condition must hold this long")
    c.add_argument("--severity", default="warning",
                   choices=("info", "warning", "error", "critical"))
    c.add_argument("--channel", action="append", metavar="WEBHOOK_ID",
                   help="webhook that receives it (repeatable)")
    ls = cmd("list", _list, "list alert rules")
    ls.add_argument("--experiment", default=None)
    m = cmd("mute", _mute, "mute a rule's notifications")
    m.add_argument("rule_id")
    m.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                   help="default: until unmuted")
    m.add_argument("--unmute", action="store_true")
    d = cmd("delete", _delete, "delete a rule")
    d.add_argument("rule_id")
    w = cmd("webhook-create", _webhook_create, "subscribe a URL to events")
    # Not `url`: that is the server's address (--url) of every subcommand.
    w.add_argument("webhook_url", metavar="URL", help="where the events are POSTed")
    w.add_argument("--event", action="append", required=True, help="event name (repeatable)")
    w.add_argument("--name", default="")
    w.add_argument("--secret", default="",
                   help="HMAC-SHA256 signing secret (16 to 512 characters)")
    w.add_argument("--experiment", action="append", metavar="ID")
    w.add_argument("--slack", action="store_true", help="Slack-compatible payload")
    cmd("webhooks", _webhooks, "list webhooks")
    dl = cmd("deliveries", _deliveries, "the delivery log (--status dead: dead letters)")
    dl.add_argument("--webhook", default=None)
    dl.add_argument("--status", default=None)
    rd = cmd("redeliver", _redeliver, "queue a webhook's dead letters again")
    rd.add_argument("webhook_id")
    rd.add_argument("--delivery", action="append", metavar="ID")
    t = cmd("test-webhook", _test, "send a test payload now")
    t.add_argument("webhook_id")

