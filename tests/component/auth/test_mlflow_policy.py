"""The MLflow REST routes are in the permission table, and their rules resolve as intended."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import APIRoute

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._types import AuthConfig, Permission, Principal
from metricflow.auth.policy import FAIL_CLOSED, HTTP_RULES
from metricflow.errors import InvalidArgument, NotFound, PermissionDenied

RUN = "a" * 32
MODEL = "m-" + "b" * 32


def _mounted_routes() -> list[tuple[str, str, Any]]:
    from metricflow.mlflow_compat import MlflowParts, routers

    parts = MlflowParts(store=None, metadata=None, artifacts=SimpleNamespace(blobs=None),
                        tracking=None, query=object())
    out = []
    for router in routers(parts):
        for r in router.routes:
            assert isinstance(r, APIRoute), r  # anything else could not be guarded
            out += [(m, r.path, r.endpoint) for m in r.methods]
    return out


def test_every_mounted_mlflow_route_has_a_rule() -> None:
    """Each route is in the permission table, or its endpoint carries its own rule
    (`mf_rule`) or is declared public (`mf_public`): the guard's two other sources."""
    routes = _mounted_routes()
    assert len(routes) >= 130
    missing = [(m, path) for m, path, fn in routes
               if (m, path) not in HTTP_RULES
               and getattr(fn, "mf_rule", None) is None and not getattr(fn, "mf_public", False)]
    assert not missing, f"add these MLflow routes to auth/policy/_mlflow.py: {missing}"


def _needs(method: str, path: str, request: dict[str, Any]) -> list[Need]:
    rule = HTTP_RULES.get((method, path), FAIL_CLOSED)
    return rule.resolve(None, request)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_run_rules_inherit_the_experiment(prefix: str) -> None:
    assert _needs("GET", prefix + "/runs/get", {"run_uuid": RUN}) == \
        [Need("run", RUN, Permission.READ)]
    assert _needs("POST", prefix + "/runs/log-batch", {"run_id": RUN}) == \
        [Need("run", RUN, Permission.EDIT)]
    assert _needs("POST", prefix + "/runs/delete", {"run_id": RUN}) == \
        [Need("run", RUN, Permission.MANAGE)]
    assert _needs("POST", prefix + "/runs/create", {}) == \
        [Need("experiment", "0", Permission.EDIT)]
    # A bulk read without run ids would read everything: admins only.
    assert _needs("GET", prefix + "/metrics/get-history-bulk-interval", {}) == \
        [Need("admin", "", Permission.MANAGE)]
    assert _needs("GET", prefix + "/metrics/get-history-bulk-interval",
                  {"run_ids": [RUN, "c" * 32]}) == [Need("run", RUN, Permission.READ),
                                                   Need("run", "c" * 32, Permission.READ)]


def test_artifact_proxy_paths_resolve_their_owner_not_the_claimed_experiment() -> None:
    base = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"
    assert _needs("GET", base, {"artifact_path": f"999/{RUN}/artifacts/model.pkl"}) == \
        [Need("run", RUN, Permission.READ)]
    assert _needs("PUT", base, {"artifact_path": f"1/models/{MODEL}/artifacts/x"}) == \
        [Need("logged_model", MODEL, Permission.EDIT)]
    with pytest.raises(InvalidArgument) as ei:
        _needs("GET", base, {"artifact_path": "1/../../etc/passwd"})
    assert ei.value.details["field"] == "artifact_path"


def test_logged_models_are_authorized_by_their_experiment(auth: Any, md: Any) -> None:
    exp_a = md.create_experiment("lm-a")
    auth.create_user("alice")
    auth.set_experiment_permission(exp_a, "alice", Permission.READ, actor="t")
    authz = Authorizer(auth, AuthConfig(enabled=True, default_permission="NO_PERMISSIONS"),
                       lambda ids: {})
    alice = Principal(user="alice")
    need = [Need("logged_model", MODEL, Permission.READ)]
    with pytest.raises(PermissionDenied):  # no owner lookup registered: unknown kind
        authz.check(alice, need)
    authz.owners["logged_model"] = {MODEL: exp_a}.get
    authz.check(alice, need)
    with pytest.raises(PermissionDenied):
        authz.check(alice, [Need("logged_model", MODEL, Permission.EDIT)])
    with pytest.raises(NotFound):
        authz.check(alice, [Need("logged_model", "m-" + "0" * 32, Permission.READ)])


def test_a_run_id_keeps_its_first_owner(auth: Any) -> None:
    authz = Authorizer(auth, AuthConfig(enabled=True), lambda ids: {})
    authz.remember_run(RUN, "1")
    authz.remember_run(RUN, "2")  # a later create reusing the id cannot move it
    assert authz.experiments_of_runs([RUN]) == {RUN: "1"}
