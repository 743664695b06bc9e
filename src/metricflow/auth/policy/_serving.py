"""Permission rules of deployments (issue 19): what each call needs on the model served.

Changes need MANAGE on the model, status reports from serve processes EDIT, reads
READ. A call naming a deployment is checked against the model the deployment
serves right now (looked up in the control plane); create names its model.
"""

from __future__ import annotations

from typing import Any

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._types import Permission
from metricflow.auth.policy._common import R, Rule, _str, model, search
from metricflow.errors import NotFound
from metricflow.store.metadata import check_deployment_name, model_of_deployment

E, M = Permission.EDIT, Permission.MANAGE


def deployment(level: Permission, field: str = "name", *, deleted: bool = False) -> Rule:
    """`level` on the model the named deployment serves (`deleted`: or served, for the
    history of a deleted deployment)."""
    def resolve(a: Authorizer, r: Any) -> list[Need]:
        name = check_deployment_name(_str(r, field), field)
        owner = model_of_deployment(a.store.engine, name, deleted=deleted)
        if owner is None:
            raise NotFound(f"deployment {name!r} does not exist", field=field, received=name)
        # by_name: a caller who may not read the model gets the answer for a missing
        # deployment (the same words), never the model's name.
        return [Need("model", owner, level, by_name=name)]
    return Rule(resolve)


_DS = "/metricflow.serving.v1.DeploymentService/"
_V = "/api/v1/deployments"

GRPC_SERVING_RULES: dict[str, Rule] = {
    _DS + "CreateDeployment": model(M, "model_name"),
    _DS + "UpdateDeployment": deployment(M), _DS + "DeleteDeployment": deployment(M),
    _DS + "GetDeployment": deployment(R),
    _DS + "ListDeployments": search(),  # filtered to readable models by the servicer
    _DS + "ReportVariantStatus": deployment(E),
    _DS + "GetDeploymentReport": deployment(R),
    # audit entries: MANAGE, as the audit log's rule; also of a deleted deployment
    _DS + "GetDeploymentHistory": deployment(M, deleted=True),
}

HTTP_SERVING_RULES: dict[tuple[str, str], Rule] = {
    ("POST", _V + "/create"): model(M, "model_name"),
    ("POST", _V + "/update"): deployment(M), ("POST", _V + "/delete"): deployment(M),
    ("GET", _V + "/get"): deployment(R),
    ("GET", _V + "/list"): search(),  # filtered to readable models by the route
    ("POST", _V + "/report-status"): deployment(E),
    ("GET", _V + "/report"): deployment(R),
    ("GET", _V + "/history"): deployment(M, deleted=True),
}
