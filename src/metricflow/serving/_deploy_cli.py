"""`metricflow deploy create|update|show|list|delete|report|restore|history` (over gRPC).

Variants are written NAME=TARGET[:WEIGHT], TARGET being @ALIAS, vN (a pinned
version) or an http(s) URL; shadows the same with --shadow (WEIGHT = the mirrored
fraction, default 1):

    metricflow deploy create fraud --model fraud-clf \\
        --variant champion=@champion:90 --variant canary=@challenger:10 \\
        --shadow next=v7:0.5 --sticky header:X-User-Id \\
        --max-error-rate 0.05 --max-p99-ms 250 --window-s 30
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from metricflow import _env
from metricflow.entities import Deployment, Guardrails, Variant
from metricflow.errors import InvalidArgument
from metricflow.store.metadata import parse_sticky_key


def parse_variant(text: str, *, shadow: bool = False) -> Variant:
    """NAME=TARGET[:WEIGHT] -> Variant (the store checks names, targets and weights)."""
    flag = "--shadow" if shadow else "--variant"
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise InvalidArgument(f"{flag} must be NAME=TARGET[:WEIGHT] (TARGET: @alias, vN or an "
                              f"http(s) URL), got {text!r}", field=flag, received=text)
    weight = 1.0
    head, colon, tail = rest.rpartition(":")
    if colon:
        try:
            weight = float(tail)
            rest = head
        except ValueError:
            if not rest.startswith(("http://", "https://")):  # else the colon is the URL's
                raise InvalidArgument(f"{flag} weight after ':' must be a number, got {tail!r} "
                                      f"in {text!r}", field=flag, received=text) from None
    if rest.startswith("@"):
        return Variant(name, alias=rest[1:], weight=weight, shadow=shadow)
    if rest.startswith(("http://", "https://")):
        return Variant(name, endpoint=rest, weight=weight, shadow=shadow)
    version = rest[1:] if rest[:1] in ("v", "V") else rest
    if not version.isdigit():
        raise InvalidArgument(f"{flag} target {rest!r} must be @alias, vN or an http(s) URL",
                              field=flag, received=text)
    return Variant(name, version=version, weight=weight, shadow=shadow)


def _guardrails(a: argparse.Namespace, base: Guardrails | None = None) -> Guardrails | None:
    given = {k: getattr(a, k) for k in ("max_error_rate", "max_p99_ms", "window_s",
                                        "min_requests", "fallback")
             if getattr(a, k) is not None}
    if not given:
        return None
    b = base or Guardrails()
    return Guardrails(
        max_error_rate=given.get("max_error_rate", b.max_error_rate),
        max_latency_p99_ms=given.get("max_p99_ms", b.max_latency_p99_ms),
        window_s=given.get("window_s", b.window_s),
        min_requests=given.get("min_requests", b.min_requests),
        fallback=given.get("fallback", b.fallback))


def _client(a: argparse.Namespace) -> Any:
    from metricflow.serving._deploy_client import DeployClient, open_channel

    return DeployClient(open_channel(a.tracking_uri, a.token), actor=a.actor)


def _variants(a: argparse.Namespace) -> list[Variant]:
    return ([parse_variant(v) for v in a.variant or ()]
            + [parse_variant(v, shadow=True) for v in a.shadow or ()])


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


def show_text(d: Deployment) -> str:
    """The human form of `deploy show`."""
    total = sum(v.weight for v in d.routed) or 1.0
    lines = [f"deployment {d.name}  model {d.model_name}  (row_version {d.row_version})"]
    if d.description:
        lines.append(f"  {d.description}")
    lines.append("  variants:")
    for v in d.variants:
        share = (f"mirror {v.weight:.0%}" if v.shadow else f"{v.weight:g} ({v.weight / total:.1%})")
        st = d.status_of(v.name)
        state = "" if st is None else f"  [{st.state}{' v' + st.version if st.version else ''}" \
            f"{': ' + st.reason if st.reason else ''}{' by ' + st.reporter if st.reporter else ''}]"
        resolved = (f" -> v{v.resolved_version}" if v.resolved_version else
                    "" if v.endpoint else " -> (unresolved)")
        lines.append(f"    {v.name:<16} {'shadow' if v.shadow else 'routed'}  {v.target}{resolved}"
                     f"  {share}{'  (fallback)' if v.name == d.fallback else ''}{state}")
    lines.append(f"  sticky key: {d.sticky_key if d.sticky_key else 'none (random per request)'}")
    g = d.guardrails
    if g.enabled:
        lines.append(f"  guardrails: error rate <= {_fmt(g.max_error_rate)}, p99 <= "
                     f"{_fmt(g.max_latency_p99_ms)} ms over {g.window_s:g} s "
                     f"(from {g.min_requests} requests); fallback {d.fallback}")
    else:
        lines.append("  guardrails: none")
    return "\n".join(lines)


def report_text(r: dict[str, Any]) -> str:
    """The human form of `deploy report`."""
    out = [f"deployment {r['deployment']}  model {r['model_name']}  baseline {r['baseline']}  "
           f"confidence {r['confidence']:g}"]
    out.append(f"{'variant':<16}{'count':>8}{'err rate':>10}  {'interval':<17}{'mean ms':>9}"
               f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for v in r["variants"]:
        lat, er = v["latency_ms"], v["error_rate"]
        ci = f"[{_fmt(er['ci_low'], '.4f')}, {_fmt(er['ci_high'], '.4f')}]"
        out.append(f"{v['variant'] + (' (shadow)' if v['shadow'] else ''):<16}{v['count']:>8}"
                   f"{_fmt(er['mean'], '.4f'):>10}  {ci:<17}{_fmt(lat['mean'], '.2f'):>9}"
                   f"{_fmt(lat['p50'], '.2f'):>9}{_fmt(lat['p95'], '.2f'):>9}"
                   f"{_fmt(lat['p99'], '.2f'):>9}")
        if v["versions"]:
            out.append("    versions: " + ", ".join(
                f"{'v' + ver if ver else 'endpoint'} ({n})" for ver, n in v["versions"].items()))
        for name, o in v["outcomes"].items():
            out.append(f"    outcome {name} ({o['kind']}, n={o['count']}): "
                       f"{_fmt(o['mean'])} [{_fmt(o['ci_low'])}, {_fmt(o['ci_high'])}]")
    for c in r["comparisons"]:
        out.append(f"{c['variant']} vs {c['baseline']}:")
        rows = [("error_rate", c["error_rate"]), ("latency_ms", c["latency_ms"])]
        rows += [(f"outcome {k}", v) for k, v in c["outcomes"].items()]
        for label, t in rows:
            f, s = t["fixed_horizon"], t["sequential"]
            out.append(f"    {label:<20} diff {_fmt(f['difference']):>10} "
                       f"[{_fmt(f['ci_low'])}, {_fmt(f['ci_high'])}]  {f['test']} "
                       f"p={_fmt(f['p_value'])}  msprt p={_fmt(s['p_value'])} "
                       f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]")
    out.append("tests: " + "; ".join(f"{k}: {v}" for k, v in r["tests"].items()))
    return "\n".join(out)


def _run(a: argparse.Namespace) -> int:
    c = _client(a)
    cmd = a.deploy_command
    if cmd == "create":
        if not a.variant:
            raise InvalidArgument("deploy create needs at least one --variant", field="--variant")
        d = c.create(a.name, a.model, _variants(a),
                     sticky_key=parse_sticky_key(a.sticky) if a.sticky else None,
                     guardrails=_guardrails(a), description=a.description or "")
    elif cmd == "update":
        kw: dict[str, Any] = {}
        if a.variant or a.shadow:
            kw["variants"] = _variants(a)
        if a.sticky is not None:
            kw["sticky_key"] = parse_sticky_key(a.sticky) if a.sticky != "none" else None
        cur = c.get(a.name)
        g = _guardrails(a, cur.guardrails)
        if g is not None:
            kw["guardrails"] = g
        d = c.update(a.name, description=a.description, expected_version=a.expected_version,
                     comment=a.comment or "", **kw)
    elif cmd == "show":
        d = c.get(a.name)
    elif cmd == "list":
        found = c.list_deployments(a.model or "")
        if a.json:
            print(json.dumps([x.to_dict() for x in found], indent=2))
        else:
            for x in found:
                parts = ", ".join(f"{v.name}={v.target}" + (" shadow" if v.shadow else
                                                            f":{v.weight:g}") for v in x.variants)
                bad = [s.variant + ":" + s.state for s in x.statuses if s.state != "serving"]
                print(f"{x.name}\t{x.model_name}\t{parts}" + (f"\t{' '.join(bad)}" if bad else ""))
        return 0
    elif cmd == "restore":
        st = c.get(a.name).status_of(a.variant)
        d = c.report_status(a.name, a.variant, "serving", version=st.version if st else "",
                            reason=a.comment or "restored", reporter="metricflow deploy restore",
                            restore=True)
    elif cmd == "delete":
        c.delete(a.name, expected_version=a.expected_version)
        print(f"deleted deployment {a.name}")
        return 0
    elif cmd == "report":
        rep = c.report(a.name, confidence=a.confidence, baseline=a.baseline or "")
        print(json.dumps(rep, indent=2) if a.json else report_text(rep))
        return 0
    elif cmd == "history":
        for e in c.history(a.name, a.max_results):
            print(json.dumps(e) if a.json else
                  f"{e['timestamp']}\t{e['actor']}\t{e['action']}\t{e['comment']}")
        return 0
    else:  # argparse allows only the commands above
        raise AssertionError(cmd)
    print(json.dumps(d.to_dict(), indent=2) if a.json else show_text(d))
    if cmd == "show" and a.history:
        for e in c.history(a.name, 50):
            print(f"  {e['timestamp']}  {e['actor']:<12} {e['action']}"
                  f"{'  ' + e['comment'] if e['comment'] else ''}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default=None,
                   help="grpc://host:port of a server (env METRICFLOW_TRACKING_URI; default "
                   f"{_env.TRACKING_URI.default})")
    p.add_argument("--token", default=None, help="bearer token (env METRICFLOW_TOKEN)")
    p.add_argument("--actor", default=None, help="user for the audit log when auth is off")
    p.add_argument("--json", action="store_true", help="print JSON")


def _spec_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", action="append", metavar="NAME=TARGET[:WEIGHT]",
                   help="a routed variant: TARGET is @alias, vN or an http(s) URL (repeat)")
    p.add_argument("--shadow", action="append", metavar="NAME=TARGET[:FRACTION]",
                   help="a shadow variant (mirrored requests, answers discarded)")
    p.add_argument("--sticky", default=None, metavar="header:NAME|field:NAME",
                   help="hash this header or input field to pick the variant ('none' clears)")
    p.add_argument("--max-error-rate", type=float, default=None)
    p.add_argument("--max-p99-ms", type=float, default=None)
    p.add_argument("--window-s", type=float, default=None)
    p.add_argument("--min-requests", type=int, default=None)
    p.add_argument("--fallback", default=None, help="variant that takes a tripped one's traffic")
    p.add_argument("--description", default=None)


def add_deploy_parsers(sub: argparse._SubParsersAction) -> None:  # argparse API
    """Add `metricflow deploy ...` to the CLI."""
    dp = sub.add_parser("deploy", help="manage model deployments (A/B, canary, shadow)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ds = dp.add_subparsers(dest="deploy_command", required=True)
    c = ds.add_parser("create", help="create a deployment")
    c.add_argument("name")
    c.add_argument("--model", required=True, help="registered model")
    _spec_flags(c)
    u = ds.add_parser("update", help="change variants, weights, sticky key or guardrails")
    u.add_argument("name")
    _spec_flags(u)
    u.add_argument("--expected-version", type=int, default=None,
                   help="fail if the deployment changed since this row_version")
    u.add_argument("--comment", default=None, help="recorded in the audit log")
    s = ds.add_parser("show", help="a deployment, its resolved versions and reported status")
    s.add_argument("name")
    s.add_argument("--history", action="store_true", help="also its audit entries")
    ls = ds.add_parser("list", help="deployments (of one model)")
    ls.add_argument("--model", default=None)
    d = ds.add_parser("delete", help="delete a deployment")
    d.add_argument("name")
    d.add_argument("--expected-version", type=int, default=None)
    r = ds.add_parser("report", help="per-variant figures and tests against the baseline")
    r.add_argument("name")
    r.add_argument("--confidence", type=float, default=0.95)
    r.add_argument("--baseline", default=None, help="default: the fallback (champion)")
    rs = ds.add_parser("restore", help="put a variant that is out of rotation (or failed to "
                       "load) back into rotation: reports it serving (EDIT on the model)")
    rs.add_argument("name")
    rs.add_argument("variant")
    rs.add_argument("--comment", default=None, help="recorded in the audit log")
    h = ds.add_parser("history", help="a deployment's audit entries")
    h.add_argument("name")
    h.add_argument("--max-results", type=int, default=1000)
    for p in (c, u, s, ls, d, r, rs, h):
        _common(p)
        p.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:  # for `python -m` use in tests
    p = argparse.ArgumentParser(prog="metricflow")
    add_deploy_parsers(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(argv)
    return int(a.func(a))


if __name__ == "__main__":
    sys.exit(main())
