"""Auth rules of the MLflow routes served here but not in `auth.policy.HTTP_RULES`.

With auth on, a route outside that table is admin-only unless its endpoint
carries `mf_rule`; these give MLflow's basic-auth semantics (reads need READ on
the run or logged model they name, uploads EDIT on the run).
"""

from __future__ import annotations

from typing import Any

from metricflow.auth import Need, Permission
from metricflow.auth.policy import Rule


def _one(r: Any, *names: str) -> str:
    for n in names:
        v = r.param(n)
        if isinstance(v, str) and v:
            return v
    return ""


def run_param(level: Permission, *names: str) -> Rule:
    """The run named by the first of `names` present (run_id, run_uuid)."""
    return Rule(lambda a, r: [Need("run", _one(r, *names), level)])


def runs_param(name: str) -> Rule:
    """Every run of list parameter `name`; none named is admin-only (never all runs)."""
    def resolve(a: Any, r: Any) -> list[Need]:
        ids = [str(i) for i in (r.param_list(name) or [])]
        return [Need("run", i, Permission.READ) for i in ids] or \
            [Need("admin", "", Permission.MANAGE)]
    return Rule(resolve)


def logged_model_param(level: Permission) -> Rule:
    return Rule(lambda a, r: [Need("logged_model", _one(r, "model_id"), level)])


def anyone_read() -> Rule:
    """Any authenticated caller (the handler filters what it returns)."""
    return Rule(lambda a, r: [Need("any", "", Permission.READ)])


def experiments_param(name: str) -> Rule:
    """READ on every experiment of list parameter `name` (none named: admin-only)."""
    def resolve(a: Any, r: Any) -> list[Need]:
        ids = [str(i) for i in (r.param_list(name) or [])]
        return [Need("experiment", i, Permission.READ) for i in ids] or \
            [Need("admin", "", Permission.MANAGE)]
    return Rule(resolve)
