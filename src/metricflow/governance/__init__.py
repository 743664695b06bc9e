"""Governance (issue 21): approvals, policies, the audit chain's tools, and lineage.

The records live in the control plane (`metricflow.store.metadata`: protected
targets, approval requests and votes, versioned policies, run inputs, the
hash-chained audit log). This package serves them and evaluates policies:

- `policy_gate(runs, artifacts)`: the `PolicyGate` a metadata store checks
  transitions with (policies read the data plane and the artifact store).
- `parse_policy(name, source, format)`: the policy language (TOML or YAML).
- `governance_router(store)`: `/api/v1/approvals/*`, `/policies/*`, `/lineage/*`.
- `add_to_server(server, store)`: gRPC `metricflow.governance.v1.GovernanceService`.
- `GovernanceClient`, `open_channel`: that service from Python.
- `add_parsers(sub)`: `metricflow approvals | policy | lineage | audit`.
- `export_audit`, `verify_audit`: the offline audit tools behind `metricflow audit`.

Modules load on first use: `import metricflow.governance` needs neither FastAPI
nor grpc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "policy_gate": "_facts", "StoreFacts": "_facts",
    "parse_policy": "_policy", "PolicyEvaluator": "_policy", "RunFacts": "_policy",
    "governance_router": "_http",
    "GovernanceServicer": "_grpc", "add_to_server": "_grpc",
    "GovernanceClient": "_client", "open_channel": "_client",
    "add_parsers": "_cli",
    "export_audit": "_audit", "verify_audit": "_audit",
}
_ALIASES = {"export_audit": "export", "verify_audit": "verify"}

__all__ = [
    "GovernanceClient", "GovernanceServicer", "PolicyEvaluator", "RunFacts", "StoreFacts",
    "add_parsers", "add_to_server", "export_audit", "governance_router", "open_channel",
    "parse_policy", "policy_gate", "verify_audit",
]

if TYPE_CHECKING:
    from metricflow.governance._audit import export as export_audit
    from metricflow.governance._audit import verify as verify_audit
    from metricflow.governance._cli import add_parsers
    from metricflow.governance._client import GovernanceClient, open_channel
    from metricflow.governance._facts import StoreFacts, policy_gate
    from metricflow.governance._grpc import GovernanceServicer, add_to_server
    from metricflow.governance._http import governance_router
    from metricflow.governance._policy import PolicyEvaluator, RunFacts, parse_policy


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), _ALIASES.get(name, name))
