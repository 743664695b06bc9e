"""Value types and errors of governance: approvals, policies, lineage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from metricflow.entities import ModelVersion
from metricflow.errors import InvalidState

STAGE, ALIAS = "stage", "alias"
ALIAS_REMOVAL = "unalias"
"""The kind of an approval request that removes a protected alias (its target is the
alias, its version the one the alias points to)."""
PENDING, APPLIED, REJECTED, EXPIRED, INVALIDATED = (
    "pending", "applied", "rejected", "expired", "invalidated")
REQUEST_STATES = (PENDING, APPLIED, REJECTED, EXPIRED, INVALIDATED)


@dataclass(frozen=True)
class ProtectedTarget:
    """A stage or alias pattern whose transitions need approval."""

    target_id: int
    model_name: str
    """"" = every model."""
    kind: str
    """"stage" or "alias"."""
    pattern: str
    """A stage name, or an alias glob (`prod-*`)."""
    approvals_required: int
    expiry_s: int | None
    created_by: str
    created_at: int


@dataclass(frozen=True)
class Vote:
    approver: str
    decision: str
    """"approve" or "reject"."""
    comment: str
    timestamp: int


@dataclass(frozen=True)
class ApprovalRequest:
    """A transition to a protected target, waiting for (or past) its approvals."""

    request_id: int
    model_name: str
    version: str
    kind: str
    target: str
    archive_existing: bool
    state: str
    requester: str
    comment: str
    approvals_required: int
    created_at: int
    expires_at: int | None
    resolved_at: int | None
    resolution: str
    votes: tuple[Vote, ...] = ()

    @property
    def approvals(self) -> int:
        return sum(1 for v in self.votes if v.decision == "approve")


@dataclass(frozen=True)
class Violation:
    """One policy rule a version does not meet."""

    policy: str
    rule: str
    message: str
    """Names the rule and the value found."""


@dataclass(frozen=True)
class Policy:
    """One version of a named policy document."""

    name: str
    version: int
    format: str
    """"toml" or "yaml"."""
    source: str
    deleted: bool
    created_by: str
    created_at: int


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run consumed (MLflow's DatasetInput)."""

    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str = ""
    profile: str = ""
    context: str = ""
    """MLflow's `mlflow.data.context` tag: "training", "eval", ..."""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateSubject:
    """What a policy is checked against: the version, its target, its run's inputs."""

    version: ModelVersion
    kind: str
    target: str
    datasets: Sequence[DatasetInput]
    now_ms: int


PolicyGate = Callable[[GateSubject, Sequence[Policy]], list[Violation]]
"""Evaluates policies for a subject; built by the composition root (it reads the data
plane and the artifact store, which the control plane cannot see)."""


@dataclass(frozen=True)
class LineageNode:
    kind: str
    """"dataset", "run", "model_version" or "deployment"."""
    id: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageEdge:
    source: str
    """"<kind>:<id>" of the upstream node."""
    target: str
    relation: str


@dataclass(frozen=True)
class LineageGraph:
    root: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]


class ApprovalRequired(InvalidState):
    """The transition targets a protected stage or alias: a request was created."""

    def __init__(self, request: ApprovalRequest) -> None:
        what = (f"alias {request.target!r} of model {request.model_name!r} is protected: "
                f"its removal (from version {request.version}) was not applied; "
                if request.kind == ALIAS_REMOVAL else
                f"{request.kind} {request.target!r} of model {request.model_name!r} is "
                f"protected: the transition of version {request.version} was not applied; ")
        super().__init__(
            what +
            f"approval request {request.request_id} was created and needs "
            f"{request.approvals_required} approval(s) "
            f"(metricflow approvals approve {request.request_id})",
            request_id=request.request_id, state=request.state)
        self.request = request


class PolicyViolation(InvalidState):
    """Policies refuse the transition; every violation is listed."""

    def __init__(self, what: str, violations: Sequence[Violation]) -> None:
        lines = "; ".join(f"[{v.policy}/{v.rule}] {v.message}" for v in violations)
        super().__init__(f"{what} violates {len(violations)} policy rule(s): {lines}",
                         violations=[v.__dict__ for v in violations])
        self.violations = tuple(violations)
