"""Permission rules of governance (issue 21): approvals, policies, lineage.

Voting needs READ on the request's model and an edit-scoped credential (a vote can
apply a transition); the store then requires the APPROVE grant and refuses the
requester (four eyes). Requesting a transition is a
transition (EDIT on the model). Protecting targets, granting APPROVE and writing
policies are administration (admins only). Lineage reads need READ on the model;
recording a run's inputs EDIT on the run. Lists (requests, protected targets,
approvers, versions trained on a dataset) keep only models the caller may READ; a list
asked for one model needs READ on it (an unreadable name answers as a missing one).
"""

from __future__ import annotations

from typing import Any

from metricflow.auth._authz import Authorizer, Need, absent
from metricflow.auth._types import Permission
from metricflow.auth.policy._common import R, Rule, _str, admin, anyone, model, run
from metricflow.store.metadata import model_of_request

E = Permission.EDIT


def approval_request(level: Permission, *, scope: Permission | None = None) -> Rule:
    """`level` on the model the approval request is about; with `scope`, the credential
    must also allow that kind of operation (a `read` token never votes)."""
    def resolve(a: Authorizer, r: Any) -> list[Need]:
        rid = _str(r, "request_id")
        # By the request's model id: the name that model has now (the name stored with
        # the request may belong to another model since a rename).
        exists, name = model_of_request(a.store.engine, rid)
        asked = ("approval_request", rid)
        if not exists:
            raise absent(Need(*asked))
        if name is None:  # the model was deleted: its requests are the admins' to read,
            return [Need("admin", "", level, asked=asked)]  # and missing to anyone else
        # a model the caller may not READ is answered as a missing request, naming neither
        return ([Need("model", name, level, asked=asked)]
                + ([Need("any", "", scope)] if scope else []))
    return Rule(resolve)


def _optional_model(a: Authorizer, r: Any) -> list[Need]:
    name = _str(r, "name")
    return [Need("model", name, R)] if name else [Need("any", "", R)]


_G = "/metricflow.governance.v1.GovernanceService/"
_V = "/api/v1"
_RULES: dict[str, Rule] = {
    "RequestTransition": model(E), "ListApprovalRequests": Rule(_optional_model),
    "GetApprovalRequest": approval_request(R),
    # A vote can apply a transition: READ on the model plus an edit-scoped credential.
    "ApproveRequest": approval_request(R, scope=E), "RejectRequest": approval_request(R, scope=E),
    "ProtectTarget": admin(), "UnprotectTarget": admin(),
    "ListProtectedTargets": Rule(_optional_model),
    "GrantApprover": admin(), "RevokeApprover": admin(),
    # a named model the caller may not READ is answered as a missing one (404)
    "ListApprovers": Rule(_optional_model),
    "PutPolicy": admin(), "DeletePolicy": admin(), "ListPolicies": anyone(R),
    "CheckPolicies": model(R), "GetLineage": model(R),
    "VersionsTrainedOn": anyone(R),  # the answer lists only models the caller may READ
    "LogRunInputs": run(E),
}


_ROUTES: dict[str, tuple[str, str]] = {  # as metricflow.governance mounts them
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
    "PutPolicy": ("POST", "/policies/put"), "DeletePolicy": ("POST", "/policies/delete"),
    "ListPolicies": ("GET", "/policies/list"), "CheckPolicies": ("POST", "/policies/check"),
    "GetLineage": ("GET", "/lineage/model-version"),
    "VersionsTrainedOn": ("GET", "/lineage/trained-on"),
    "LogRunInputs": ("POST", "/lineage/log-inputs"),
}

GRPC_GOVERNANCE_RULES: dict[str, Rule] = {_G + m: rule for m, rule in _RULES.items()}
HTTP_GOVERNANCE_RULES: dict[tuple[str, str], Rule] = {
    (verb, _V + path): _RULES[m] for m, (verb, path) in _ROUTES.items()}
