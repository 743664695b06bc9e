"""Permission rules of alert rules over gRPC (issue 20; the HTTP routes carry the same
rules on their endpoints, metricflow/alerts/_http.py): as for the experiment.

Creating a rule needs EDIT on each experiment it names (a rule over every experiment,
an admin); muting or deleting it EDIT on its experiments, listing READ on the one
asked for (none: an admin); `mf.alert` (Notify) EDIT on the run.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth.policy._common import E, M, R, Rule, _list, _str
from metricflow.errors import InvalidArgument, NotFound
from metricflow.store.metadata import check_row_id


def _rule_experiments(a: Authorizer, rule_id: str) -> list[str]:
    rid = check_row_id(rule_id, "rule_id")
    with a.store.engine.connect() as conn:
        got = conn.execute(sa.text("SELECT experiment_ids FROM alert_rules WHERE rule_id = :r"),
                           {"r": rid}).scalar()
    if got is None:
        raise NotFound(f"alert rule {rid} does not exist", field="rule_id", received=rule_id)
    return [str(e) for e in json.loads(got)]


def rule_experiments(level: Any) -> Rule:
    """`level` on every experiment of the rule named by `rule_id` (none: an admin)."""
    def resolve(a: Authorizer, r: Any) -> list[Need]:
        exps = _rule_experiments(a, _str(r, "rule_id"))
        return [Need("experiment", e, level) for e in exps] or [Need("admin", "", M)]
    return Rule(resolve)


def _create(a: Authorizer, r: Any) -> list[Need]:
    rule = getattr(r, "rule", None)
    exps = list(rule.experiment_ids) if rule is not None else _list(r, "experiment_ids")
    return [Need("experiment", str(e), E) for e in exps] or [Need("admin", "", M)]


def _list_rules(a: Authorizer, r: Any) -> list[Need]:
    e = _str(r, "experiment_id")
    return [Need("experiment", e, R)] if e else [Need("admin", "", M)]


def _notify(a: Authorizer, r: Any) -> list[Need]:
    """EDIT on the run; no run id is a 400, not "run '' does not exist"."""
    run_id = _str(r, "run_id")
    if not run_id:
        raise InvalidArgument("run_id is required", field="run_id", received="")
    return [Need("run", run_id, E)]


_S = "/metricflow.alerts.v1.AlertService/"

GRPC_ALERT_RULES: dict[str, Rule] = {
    _S + "CreateRule": Rule(_create), _S + "ListRules": Rule(_list_rules),
    _S + "MuteRule": rule_experiments(E), _S + "DeleteRule": rule_experiments(E),
    _S + "Notify": Rule(_notify),
}
