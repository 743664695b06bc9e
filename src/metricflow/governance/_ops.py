"""The governance calls, transport-neutral: a JSON-shaped request in, a JSON-shaped answer
out. `/api/v1` (`_http.py`) and gRPC (`_grpc.py`, through the protobuf JSON mapping)
both call these, so the two surfaces cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from metricflow._validation import to_int64
from metricflow.auth import Permission, current
from metricflow.errors import InvalidArgument
from metricflow.governance._access import caller_reads_run
from metricflow.governance._policy import parse_policy
from metricflow.store.metadata import (
    ApprovalRequest,
    DatasetInput,
    LineageGraph,
    Policy,
    ProtectedTarget,
)

Op = Callable[[Any, "str | None", dict[str, Any]], dict[str, Any]]


def _s(p: dict[str, Any], key: str, default: str = "") -> str:
    v = p.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise InvalidArgument(f"{key} must be a string, got {type(v).__name__}", field=key,
                              received=repr(v)[:80])
    return str(v)


def _i(p: dict[str, Any], key: str, default: int = 0) -> int:
    """An integer field: an int64 (the gRPC messages' type), or text of one (query
    parameters); InvalidArgument naming the field, the bounds and what was received."""
    v = p.get(key, default)
    if v in (None, ""):
        return default
    if isinstance(v, str):
        try:
            v = int(v.strip())
        except ValueError:
            raise InvalidArgument(f"{key} must be an integer, got {v!r:.40}", field=key,
                                  received=repr(v)[:80]) from None
    return to_int64(key, v)


def _b(p: dict[str, Any], key: str) -> bool:
    v = p.get(key, False)
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes")
    return bool(v)


def _readable() -> Callable[[str | None], bool]:
    """Whether the caller may READ a model (every model with auth off, or for admins):
    lists show only what the caller could open one by one. "" is a rule or grant on
    every model; None a model that was deleted (admins only)."""
    cur = current()
    if cur is None or cur[0].admin:
        return lambda name: True
    p, authz = cur
    if p.ceiling < Permission.READ:
        return lambda name: False
    seen: dict[str, bool] = {}

    def ok(name: str | None) -> bool:
        if name is None:
            return False
        if not name:  # a rule or grant on every model
            return True
        if name not in seen:
            seen[name] = authz.model_level(p, name) >= Permission.READ
        return seen[name]
    return ok


def request_json(r: ApprovalRequest) -> dict[str, Any]:
    return {"request_id": r.request_id, "model_name": r.model_name, "version": r.version,
            "kind": r.kind, "target": r.target, "archive_existing": r.archive_existing,
            "state": r.state, "requester": r.requester, "comment": r.comment,
            "approvals_required": r.approvals_required, "created_at": r.created_at,
            "expires_at": r.expires_at or 0, "resolved_at": r.resolved_at or 0,
            "resolution": r.resolution,
            "votes": [{"approver": v.approver, "decision": v.decision, "comment": v.comment,
                       "timestamp": v.timestamp} for v in r.votes]}


def target_json(t: ProtectedTarget) -> dict[str, Any]:
    return {"target_id": t.target_id, "model_name": t.model_name, "kind": t.kind,
            "pattern": t.pattern, "approvals_required": t.approvals_required,
            "expiry_s": t.expiry_s or 0, "created_by": t.created_by,
            "created_at": t.created_at}


def policy_json(p: Policy) -> dict[str, Any]:
    return {"name": p.name, "version": p.version, "format": p.format, "source": p.source,
            "deleted": p.deleted, "created_by": p.created_by, "created_at": p.created_at}


def graph_json(g: LineageGraph) -> dict[str, Any]:
    return {"root": g.root,
            "nodes": [{"kind": n.kind, "id": n.id, "attrs_json": json.dumps(n.attrs)}
                      for n in g.nodes],
            "edges": [{"source": e.source, "target": e.target, "relation": e.relation}
                      for e in g.edges]}


def request_transition(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    req = store.request_transition(_s(p, "name"), _s(p, "version"), _s(p, "kind", "stage"),
                                   _s(p, "target"), archive_existing=_b(p, "archive_existing"),
                                   comment=_s(p, "comment"), actor=actor)
    return {"request": request_json(req)}


def list_requests(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    reqs = store.list_approval_requests(state=_s(p, "state") or None,
                                        model_name=_s(p, "name") or None,
                                        max_results=_i(p, "max_results", 100) or 100,
                                        visible=_readable())
    return {"requests": [request_json(r) for r in reqs]}


def get_request(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return {"request": request_json(store.get_approval_request(_i(p, "request_id")))}


def approve(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return {"request": request_json(store.approve_request(
        _i(p, "request_id"), comment=_s(p, "comment"), actor=actor))}


def reject(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return {"request": request_json(store.reject_request(
        _i(p, "request_id"), comment=_s(p, "comment"), actor=actor))}


def protect(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    t = store.protect_target(_s(p, "kind", "stage"), _s(p, "pattern"),
                             model_name=_s(p, "name") or None,
                             approvals_required=_i(p, "approvals_required", 1) or 1,
                             expiry_s=_i(p, "expiry_s") or None, actor=actor)
    return target_json(t)


def unprotect(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    store.unprotect_target(_i(p, "target_id"), actor=actor)
    return {}


def list_targets(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    ok = _readable()
    return {"targets": [target_json(t) for t in
                        store.list_protected_targets(_s(p, "name") or None)
                        if ok(t.model_name)]}


def grant(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    store.grant_approver(_s(p, "username"), model_name=_s(p, "name") or None, actor=actor)
    return {}


def revoke(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    store.revoke_approver(_s(p, "username"), model_name=_s(p, "name") or None, actor=actor)
    return {}


def list_approvers(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    ok = _readable()
    return {"approvers": [{"username": u, "model_name": m}
                          for u, m in store.list_approvers(_s(p, "name") or None)
                          if ok("" if m == "*" else m)]}


def put_policy(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    name, fmt, source = _s(p, "name"), _s(p, "format", "toml") or "toml", _s(p, "source")
    parse_policy(name, source, fmt)  # refuse a document the gate could not read
    return policy_json(store.put_policy(name, source, format=fmt, actor=actor))


def delete_policy(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return policy_json(store.delete_policy(_s(p, "name"), actor=actor))


def list_policies(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return {"policies": [policy_json(x) for x in store.list_policies(history=_b(p, "history"))]}


def check_policies(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    found = store.check_policies(_s(p, "name"), _s(p, "version"),
                                 kind=_s(p, "kind") or "stage",
                                 target=_s(p, "target") or "Production")
    return {"violations": [{"policy": v.policy, "rule": v.rule, "message": v.message}
                           for v in found]}


def lineage(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return graph_json(_visible_graph(store.lineage(_s(p, "name"), _s(p, "version"))))


def _visible_graph(g: LineageGraph) -> LineageGraph:
    """The graph without what the caller may not read: the source run's datasets (the
    run's inputs) unless they may READ the run, and versions of other models registered
    from this one unless they may READ those models."""
    ok = _readable()
    hidden: set[str] = set()
    for n in g.nodes:
        if n.kind == "run" and not caller_reads_run(n.id):
            hidden |= {e.source for e in g.edges
                       if e.target == f"run:{n.id}" and e.source.startswith("dataset:")}
        elif n.kind == "model_version" and f"model_version:{n.id}" != g.root \
                and not ok(n.id.rsplit("/", 1)[0]):
            hidden.add(f"model_version:{n.id}")
    if not hidden:
        return g
    return LineageGraph(g.root,
                        tuple(n for n in g.nodes if f"{n.kind}:{n.id}" not in hidden),
                        tuple(e for e in g.edges
                              if e.source not in hidden and e.target not in hidden))


def trained_on(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    digest = _s(p, "digest")
    if not digest:
        raise InvalidArgument("digest is required", field="digest")
    rows = store.versions_trained_on(digest, name=_s(p, "dataset_name") or None)
    ok = _readable()
    return {"versions": [{"model_name": n, "version": v, "run_id": r} for n, v, r in rows
                         if ok(n)]}


def log_inputs(store: Any, actor: str | None, p: dict[str, Any]) -> dict[str, Any]:
    items = p.get("datasets") or []
    if not isinstance(items, list):
        raise InvalidArgument("datasets must be a list", field="datasets")
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, dict):
            raise InvalidArgument(f"datasets[{i}] must be an object", field=f"datasets[{i}]")
        tags = d.get("tags") or {}
        if not isinstance(tags, dict):
            raise InvalidArgument(f"datasets[{i}].tags must be an object",
                                  field=f"datasets[{i}].tags")
        out.append(DatasetInput(
            name=_s(d, "name"), digest=_s(d, "digest"), source_type=_s(d, "source_type"),
            source=_s(d, "source"), schema=_s(d, "schema"), profile=_s(d, "profile"),
            context=_s(d, "context") or str(tags.get("mlflow.data.context", "")),
            tags={str(k): str(v) for k, v in tags.items()}))
    store.log_run_inputs(_s(p, "run_id"), out, actor=actor)
    return {}


OPS: dict[str, Op] = {
    "RequestTransition": request_transition, "ListApprovalRequests": list_requests,
    "GetApprovalRequest": get_request, "ApproveRequest": approve, "RejectRequest": reject,
    "ProtectTarget": protect, "UnprotectTarget": unprotect,
    "ListProtectedTargets": list_targets, "GrantApprover": grant, "RevokeApprover": revoke,
    "ListApprovers": list_approvers, "PutPolicy": put_policy, "DeletePolicy": delete_policy,
    "ListPolicies": list_policies, "CheckPolicies": check_policies, "GetLineage": lineage,
    "VersionsTrainedOn": trained_on, "LogRunInputs": log_inputs,
}
"""gRPC method name -> call."""

ROUTES: dict[str, tuple[str, str]] = {
    "RequestTransition": ("POST", "/approvals/request"),
    "ListApprovalRequests": ("GET", "/approvals/list"),
    "GetApprovalRequest": ("GET", "/approvals/get"),
    "ApproveRequest": ("POST", "/approvals/approve"),
    "RejectRequest": ("POST", "/approvals/reject"),
    "ProtectTarget": ("POST", "/approvals/protected-targets/create"),
    "UnprotectTarget": ("POST", "/approvals/protected-targets/delete"),
    "ListProtectedTargets": ("GET", "/approvals/protected-targets/list"),
    "GrantApprover": ("POST", "/approvals/approvers/grant"),
    "RevokeApprover": ("POST", "/approvals/approvers/revoke"),
    "ListApprovers": ("GET", "/approvals/approvers/list"),
    "PutPolicy": ("POST", "/policies/put"),
    "DeletePolicy": ("POST", "/policies/delete"),
    "ListPolicies": ("GET", "/policies/list"),
    "CheckPolicies": ("POST", "/policies/check"),
    "GetLineage": ("GET", "/lineage/model-version"),
    "VersionsTrainedOn": ("GET", "/lineage/trained-on"),
    "LogRunInputs": ("POST", "/lineage/log-inputs"),
}
"""gRPC method name -> its `/api/v1` route (method, path under /api/v1)."""
