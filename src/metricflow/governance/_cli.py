"""`metricflow approvals | policy | lineage | audit`: the governance command line.

`approvals`, `policy` and `lineage` talk to a server over gRPC (`--tracking-uri`,
`--token`); `audit` reads the control-plane database itself (`--metadata`), so an
auditor's check depends on nothing but the records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from metricflow import _env
from metricflow.errors import InvalidArgument


def _client(a: argparse.Namespace) -> Any:
    from metricflow.governance._client import GovernanceClient, open_channel

    return GovernanceClient(open_channel(a.tracking_uri, a.token), actor=a.actor)


def _print(a: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    try:
        print(json.dumps(result, indent=2, sort_keys=True) if a.json else text, flush=True)
    except BrokenPipeError:  # `metricflow approvals list | head`: the reader left
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _request_line(r: dict[str, Any]) -> str:
    votes = ", ".join(f"{v['approver']}:{v['decision']}" for v in r.get("votes", []))
    approvals = sum(1 for v in r.get("votes", []) if v["decision"] == "approve")
    change = (f"removes alias {r['target']}" if r["kind"] == "unalias"
              else f"-> {r['kind']} {r['target']}")
    line = (f"#{r['request_id']} {r['state']:<11} {r['model_name']} v{r['version']} {change}"
            f"  by {r['requester']}  "
            f"{approvals}/{r['approvals_required']} approvals")
    if votes:
        line += f"  [{votes}]"
    if r.get("resolution"):
        line += f"  ({r['resolution']})"
    return line


def _approvals(a: argparse.Namespace) -> int:
    c = _client(a)
    cmd = a.approvals_command
    if cmd == "list":
        out = c.call("ListApprovalRequests", state=a.state or "", name=a.model or "",
                     max_results=a.max_results)
        _print(a, out, "\n".join(_request_line(r) for r in out["requests"])
               or "no approval requests")
    elif cmd in ("approve", "reject", "show"):
        if cmd == "show":
            out = c.call("GetApprovalRequest", request_id=a.request_id)
        else:
            out = c.call("ApproveRequest" if cmd == "approve" else "RejectRequest",
                         request_id=a.request_id, comment=a.comment)
        _print(a, out, _request_line(out["request"]))
    elif cmd == "request":
        kind, target = (("unalias", a.remove_alias) if a.remove_alias else
                        ("alias", a.alias) if a.alias else ("stage", a.stage))
        out = c.call("RequestTransition", name=a.model, version=str(a.version), kind=kind,
                     target=target, archive_existing=a.archive_existing, comment=a.comment)
        _print(a, out, _request_line(out["request"]))
    elif cmd == "protect":
        kind, pattern = ("alias", a.alias) if a.alias else ("stage", a.stage)
        out = c.call("ProtectTarget", kind=kind, pattern=pattern, name=a.model or "",
                     approvals_required=a.approvals, expiry_s=a.expiry_s or 0)
        _print(a, out, f"protected target {out['target_id']}: {kind} {pattern!r} on "
               f"{a.model or 'every model'}, {a.approvals} approval(s)")
    elif cmd == "unprotect":
        _print(a, c.call("UnprotectTarget", target_id=a.target_id),
               f"removed protected target {a.target_id}")
    elif cmd == "protected":
        out = c.call("ListProtectedTargets", name=a.model or "")
        _print(a, out, "\n".join(
            f"{t['target_id']}: {t['kind']} {t['pattern']!r} on {t['model_name'] or '*'} "
            f"needs {t['approvals_required']}"
            + (f", expires after {t['expiry_s']} s" if int(t["expiry_s"]) else "")
            for t in out["targets"]) or "nothing is protected")
    elif cmd in ("grant", "revoke"):
        c.call("GrantApprover" if cmd == "grant" else "RevokeApprover", username=a.username,
               name=a.model or "")
        _print(a, {}, f"{'granted' if cmd == 'grant' else 'revoked'} APPROVE for "
               f"{a.username} on {a.model or 'every model'}")
    elif cmd == "approvers":
        out = c.call("ListApprovers", name=a.model or "")
        _print(a, out, "\n".join(f"{x['username']} on {x['model_name']}"
                                 for x in out["approvers"]) or "no approvers")
    return 0


def _policy(a: argparse.Namespace) -> int:
    c = _client(a)
    cmd = a.policy_command
    if cmd == "put":
        with open(a.file) as f:
            source = f.read()
        fmt = a.format or ("yaml" if a.file.endswith((".yaml", ".yml")) else "toml")
        out = c.call("PutPolicy", name=a.name, source=source, format=fmt)
        _print(a, out, f"policy {out['name']} version {out['version']} is in force")
    elif cmd == "delete":
        out = c.call("DeletePolicy", name=a.name)
        _print(a, out, f"policy {a.name} retired (version {out['version']})")
    elif cmd == "list":
        out = c.call("ListPolicies", history=a.history)
        _print(a, out, "\n".join(
            f"{p['name']} v{p['version']}{' (deleted)' if p['deleted'] else ''} "
            f"by {p['created_by']}" for p in out["policies"]) or "no policies")
    elif cmd == "check":
        kind, target = ("alias", a.alias) if a.alias else ("stage", a.stage)
        out = c.call("CheckPolicies", name=a.model, version=str(a.version), kind=kind,
                     target=target)
        found = out["violations"]
        _print(a, out, "\n".join(f"VIOLATION [{v['policy']}/{v['rule']}] {v['message']}"
                                 for v in found)
               or f"{a.model} v{a.version} -> {kind} {target}: every policy passes")
        return 1 if found else 0
    return 0


def _lineage(a: argparse.Namespace) -> int:
    c = _client(a)
    if a.lineage_command == "trained-on":
        out = c.call("VersionsTrainedOn", digest=a.digest, dataset_name=a.dataset or "")
        _print(a, out, "\n".join(f"{v['model_name']} v{v['version']} (run {v['run_id']})"
                                 for v in out["versions"]) or "no model version")
        return 0
    out = c.call("GetLineage", name=a.model, version=str(a.version))
    lines = [f"lineage of {out['root']}"]
    lines += [f"  {e['source']} --{e['relation']}--> {e['target']}" for e in out["edges"]]
    _print(a, out, "\n".join(lines))
    return 0


def _audit(a: argparse.Namespace) -> int:
    from metricflow.governance import _audit as audit
    from metricflow.store.metadata import AnchorForged

    cmd = a.audit_command
    uri = a.metadata or _env.METADATA_URI.get()
    if not uri and not (cmd == "verify" and a.export):
        raise InvalidArgument("--metadata (or METRICFLOW_METADATA_URI) names the control-plane "
                              "database to read", field="metadata")
    if cmd == "verify":
        t0 = time.perf_counter()
        try:
            if a.export:  # a report file on its own, no database
                report = audit.verify_export(
                    a.export, audit.read_anchor(a.anchor) if a.anchor else None,
                    audit.read_key(a.key_file) if a.key_file else None)
                seconds = time.perf_counter() - t0
            else:
                report, seconds = audit.verify(uri, anchor_path=a.anchor,
                                               key_path=a.key_file,
                                               workers=a.workers or audit.default_workers(uri))
        except AnchorForged as e:  # a tamper signal, like a broken chain: exit 2
            print(json.dumps({"ok": False, "problem": {"kind": "forged_anchor",
                                                       "message": e.message}})
                  if a.json else f"audit anchor FORGED: {e.message}")
            return 2
        if a.json:
            print(json.dumps({"ok": report.ok, "entries": report.entries,
                              "head_id": report.head_id, "head_hash": report.head_hash,
                              "seconds": round(seconds, 3),
                              "problem": None if report.problem is None else {
                                  "entry_id": report.problem.entry_id,
                                  "kind": report.problem.kind,
                                  "message": report.problem.message}}))
        else:
            print(f"{audit.describe(report)} ({seconds:.2f} s)")
        return 0 if report.ok else 2
    if cmd == "anchor":
        text = json.dumps(audit.anchor(uri, a.key_file), indent=2)
        if a.output:
            try:
                with open(a.output, "w") as f:
                    f.write(text + "\n")
            except OSError as e:
                raise InvalidArgument(f"cannot write {a.output}: {e.strerror}",
                                      field="output", received=a.output) from None
        print(text)
        return 0
    n, signed = audit.export_to(uri, a.output, fmt=a.format, since=a.since,
                                key_path=a.key_file)
    where = a.output or "stdout"
    print(f"exported {n} audit entries to {where}"
          + (f"; anchor (head {signed['head_id']} {signed['head_hash']}) in "
             f"{where}.anchor.json" if signed and a.output else ""), file=sys.stderr)
    if signed and not a.output:
        print(json.dumps(signed), file=sys.stderr)
    return 0


def _remote(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default=None,
                   help="grpc://host:port of a server (env METRICFLOW_TRACKING_URI)")
    p.add_argument("--token", default=None, help="bearer token (env METRICFLOW_TOKEN)")
    p.add_argument("--actor", default=None, help="user for the audit log when auth is off")
    p.add_argument("--json", action="store_true", help="print JSON")


def _target(p: argparse.ArgumentParser, required: bool = True,
            default_stage: str | None = None, removal: bool = False) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--stage", default=default_stage, help="a stage (Staging, Production...)")
    g.add_argument("--alias", default=None, help="an alias (a glob when protecting)")
    if removal:
        g.add_argument("--remove-alias", default=None,
                       help="remove this protected alias (VERSION: the one it points to)")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # argparse's API
    """Add `approvals`, `policy`, `lineage` and `audit` to the `metricflow` CLI."""
    ap = sub.add_parser("approvals", help="approval requests for protected stages and aliases")
    aps = ap.add_subparsers(dest="approvals_command", required=True)
    x = aps.add_parser("list", help="approval requests, newest first")
    x.add_argument("--state", default=None,
                   choices=["pending", "applied", "rejected", "expired", "invalidated"])
    x.add_argument("--model", default=None)
    x.add_argument("--max-results", type=int, default=100)
    for verb in ("approve", "reject"):
        x = aps.add_parser(verb, help=f"{verb} a request (needs the APPROVE grant)")
        x.add_argument("request_id", type=int)
        x.add_argument("--comment", default="", help="recorded with the vote")
    x = aps.add_parser("show", help="one request and its votes")
    x.add_argument("request_id", type=int)
    x = aps.add_parser("request", help="ask for a transition to a protected target, or for "
                                       "the removal of a protected alias")
    x.add_argument("model")
    x.add_argument("version")
    _target(x, removal=True)
    x.add_argument("--archive-existing", action="store_true")
    x.add_argument("--comment", default="")
    x = aps.add_parser("protect", help="protect a stage or alias pattern (admin)")
    _target(x)
    x.add_argument("--model", default=None, help="one model (default: every model)")
    x.add_argument("--approvals", type=int, default=1, help="distinct approvers needed")
    x.add_argument("--expiry-s", type=int, default=None, help="requests expire after this")
    x = aps.add_parser("unprotect", help="remove a protected target (admin)")
    x.add_argument("target_id", type=int)
    x = aps.add_parser("protected", help="protected targets")
    x.add_argument("--model", default=None)
    for verb in ("grant", "revoke"):
        x = aps.add_parser(verb, help=f"{verb} the APPROVE permission (admin)")
        x.add_argument("username")
        x.add_argument("--model", default=None, help="one model (default: every model)")
    x = aps.add_parser("approvers", help="who holds APPROVE")
    x.add_argument("--model", default=None)
    for p in aps.choices.values():
        _remote(p)
    ap.set_defaults(func=_approvals)

    pp = sub.add_parser("policy", help="policies checked before transitions and approvals")
    pps = pp.add_subparsers(dest="policy_command", required=True)
    x = pps.add_parser("put", help="store a new version of a policy (admin)")
    x.add_argument("name")
    x.add_argument("file", help="a TOML or YAML policy document")
    x.add_argument("--format", choices=["toml", "yaml"], default=None)
    x = pps.add_parser("delete", help="retire a policy (admin)")
    x.add_argument("name")
    x = pps.add_parser("list", help="policies in force")
    x.add_argument("--history", action="store_true", help="every version")
    x = pps.add_parser("check", help="dry-run the policies for a version (exit 1 if any fail)")
    x.add_argument("model")
    x.add_argument("version")
    _target(x, required=False, default_stage="Production")
    for p in pps.choices.values():
        _remote(p)
    pp.set_defaults(func=_policy)

    lp = sub.add_parser("lineage", help="datasets -> runs -> model versions -> deployments")
    lps = lp.add_subparsers(dest="lineage_command", required=True)
    x = lps.add_parser("show", help="upstream and downstream of a model version")
    x.add_argument("model")
    x.add_argument("version")
    x = lps.add_parser("trained-on", help="model versions trained on a dataset digest")
    x.add_argument("digest")
    x.add_argument("--dataset", default=None, help="the dataset's name, too")
    for p in lps.choices.values():
        _remote(p)
    lp.set_defaults(func=_lineage)

    au = sub.add_parser("audit", help="verify, export and anchor the hash-chained audit log")
    aus = au.add_subparsers(dest="audit_command", required=True)
    x = aus.add_parser("verify", help="report the first edited, deleted or reordered entry "
                       "(exit 2 if any)")
    x.add_argument("--export", default=None,
                   help="verify a JSON-lines file from `audit export` instead of the database")
    x.add_argument("--anchor", default=None, help="an anchor file from `audit anchor`")
    x.add_argument("--key-file", default=None, help="the key the anchor was signed with")
    x.add_argument("--workers", type=int, default=None,
                   help="processes that verify id ranges in parallel (default: 1 on up to "
                        "2 CPUs, else the CPUs up to 4, half of them for PostgreSQL)")
    x.add_argument("--json", action="store_true")
    x = aus.add_parser("export", help="write a compliance report")
    x.add_argument("--since", default=None, help="ms since the epoch or an ISO date (UTC)")
    x.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    x.add_argument("--output", default=None, help="file (default: stdout)")
    x.add_argument("--key-file", default=None,
                   help="sign the head with this key; the anchor goes to OUTPUT.anchor.json")
    x = aus.add_parser("anchor", help="print the chain's head, signed (HMAC-SHA256)")
    x.add_argument("--key-file", required=True, help="the operator's key (>= 16 bytes)")
    x.add_argument("--output", default=None, help="also write it to this file")
    for p in aus.choices.values():
        p.add_argument("--metadata", default=None,
                       help="control-plane URI (env METRICFLOW_METADATA_URI)")
    au.set_defaults(func=_audit)
