"""The permission ladder (filter limits, keys-per-run cap: tests/unit/auth/test_limits.py)."""

from __future__ import annotations

import pytest

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._types import AuthConfig, Permission, Principal
from metricflow.errors import NotFound, PermissionDenied


def test_permission_ladder(auth, md) -> None:
    auth.create_user("u")
    e1 = md.create_experiment("e1")
    md.create_registered_model("m")
    az = Authorizer(auth, AuthConfig(enabled=True, default_permission="NO_PERMISSIONS"),
                    lambda ids: {r: e1 for r in ids if r == "a" * 32})
    u = Principal("u")
    with pytest.raises(NotFound):  # no READ: answered as a missing experiment
        az.check(u, [Need("experiment", e1, Permission.READ)])
    auth.set_experiment_permission(e1, "u", "EDIT")
    az.check(u, [Need("run", "a" * 32, Permission.EDIT)])  # runs inherit
    with pytest.raises(PermissionDenied, match="has EDIT .* needs MANAGE"):
        az.check(u, [Need("experiment", e1, Permission.MANAGE)])
    with pytest.raises(NotFound):
        az.check(u, [Need("run", "b" * 32, Permission.READ)])
    with pytest.raises(PermissionDenied, match="scopes"):
        az.check(Principal("u", scopes=("read",)), [Need("experiment", e1, Permission.EDIT)])
    with pytest.raises(PermissionDenied):
        az.check(u, [Need("admin")])
    az.check(Principal("root", is_admin=True), [Need("admin"), Need("model", "m")])
    with pytest.raises(PermissionDenied):  # admin user, but a token without admin scope
        az.check(Principal("root", is_admin=True, scopes=("read", "edit")), [Need("admin")])
    assert az.readable_experiments(u) == {e1}
    auth.set_model_permission("m", "u", "READ")
    # Hard-deleting a model drops its grants; a new model with the name starts clean.
    md.delete_registered_model("m")
    md.create_registered_model("m")
    assert auth.model_permission("u", "m") == (True, None)


def test_another_users_token_is_answered_as_a_missing_one(auth, md) -> None:
    """Revoking (the only "token" need) someone else's token id must not tell it exists:
    the same NotFound, message and field as an unknown id; admins and owners pass."""
    auth.create_user("u")
    auth.create_user("v")
    auth.create_user("root", is_admin=True)
    theirs = auth.create_token("v")[0].token_id
    mine = auth.create_token("u")[0].token_id
    unknown = "0" * len(theirs)
    az = Authorizer(auth, AuthConfig(enabled=True), lambda ids: {})
    u = Principal("u", scopes=("read", "edit", "manage"))
    errors = []
    for tid in (theirs, unknown):
        with pytest.raises(NotFound) as e:
            az.check(u, [Need("token", tid, Permission.READ)])
        errors.append((e.value.message.replace(tid, "<id>"), e.value.details))
    assert errors[0] == errors[1] == ("token '<id>' does not exist", {"field": "token_id"})
    with pytest.raises(NotFound) as e:  # the store's own answer for an unknown id
        auth.get_token(unknown)
    assert (e.value.message, e.value.details) == (f"token {unknown!r} does not exist",
                                                  {"field": "token_id"})
    az.check(u, [Need("token", mine, Permission.READ)])
    az.check(Principal("root", is_admin=True, scopes=("read", "edit", "manage", "admin")),
             [Need("token", theirs, Permission.READ)])
