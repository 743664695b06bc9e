"""Governance and auth findings of a security probe, against a secured embedded server
(auth on, default permission NO_PERMISSIONS): grants that outlive their user, histories
leaked through a reused name, source-run values in policy messages and lineage, 500s
on out-of-range numbers, unchecked policy numbers, silently ignored fields, and the
last admin.

The last-admin test runs last: without its fix it would leave the module without an
admin.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from metricflow.auth._types import Permission
from metricflow.entities import Variant

_A = "/api/v1/approvals"
HUGE = "99999999999999999999"
FORGED = "eyJvIjogMTAwMDAwMDAwMDAwMDAwMDAwMDAwMH0="  # {"o": 10**21}


def _meta(secured: Any) -> Any:
    return secured.srv.server.metadata


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _model(secured: Any, name: str, owner: str, versions: int = 1) -> None:
    meta = _meta(secured)
    meta.create_registered_model(name, actor=owner)
    for i in range(versions):
        meta.create_model_version(name, f"s3://bucket/{name}/{i + 1}", actor=owner)
    secured.store.set_model_permission(name, owner, Permission.MANAGE, actor="admin")


# ---------------------------------------------------------------- 1: deleted users' grants
def test_deleting_a_user_takes_every_grant_and_token_with_it(secured: Any) -> None:
    model = _name("secretmodel")
    _model(secured, model, "alice")
    user = _name("gus")
    assert secured.post("admin", "/api/v1/auth/users/create",
                        {"username": user}).status_code == 200
    assert secured.post("admin", f"{_A}/approvers/grant",
                        {"username": user, "name": model}).status_code == 200
    assert secured.post("admin", f"{_A}/approvers/grant", {"username": user}).status_code == 200
    secured.store.set_model_permission(model, user, Permission.READ, actor="admin")
    secured.store.create_token(user)
    r = secured.post("admin", "/api/v1/auth/users/delete", {"username": user})
    assert r.status_code == 200, r.text
    # The same name again: a new person, who inherits nothing.
    assert secured.post("admin", "/api/v1/auth/users/create",
                        {"username": user}).status_code == 200
    listed = secured.get("admin", f"{_A}/approvers/list", params={"name": model}).json()
    assert user not in {a["username"] for a in listed["approvers"]}, listed
    everyone = secured.get("admin", f"{_A}/approvers/list").json()["approvers"]
    assert user not in {a["username"] for a in everyone}
    assert secured.store.list_permissions(user) == {"experiments": {}, "models": {}}
    assert secured.store.list_tokens(user) == []
    # The new user cannot vote on a request about the model.
    secured.tokens[user] = secured.store.create_token(user)[1]
    meta = _meta(secured)
    meta.protect_target("stage", "Production", model_name=model, actor="admin")
    secured.store.set_model_permission(model, user, Permission.EDIT, actor="admin")
    rid = secured.post("alice", f"{_A}/request", {
        "name": model, "version": "1", "kind": "stage", "target": "Production",
        "comment": "ship it"}).json()["request"]["request_id"]
    r = secured.post(user, f"{_A}/approve", {"request_id": rid, "comment": "ok"})
    assert r.status_code == 403 and "APPROVE" in r.json()["message"], r.text
    entries = meta.search_audit_log(action="delete_user")[0]
    assert any(e.entity_id == user and (e.before or {}).get("approver_grants") == 2
               for e in entries)


# ---------------------------------------------------------------- 2: a reused name
@pytest.fixture(scope="module")
def renamed(secured: Any) -> dict[str, Any]:
    """alice's model `old` (a request carol voted on, a deleted deployment) renamed to
    `new`; bob's new model took the name `old` (and the deployment's name)."""
    meta = _meta(secured)
    old, new, dep = _name("fraud"), _name("fraudx"), _name("dep9")
    _model(secured, old, "alice")
    meta.create_deployment(dep, old, [Variant("a", version="1")], actor="alice")
    meta.delete_deployment(dep, actor="alice")
    meta.protect_target("stage", "Production", model_name=old, approvals_required=2,
                        actor="admin")
    meta.grant_approver("carol", model_name=old, actor="admin")
    secured.store.set_model_permission(old, "carol", Permission.READ, actor="admin")
    r = secured.post("alice", f"{_A}/request", {
        "name": old, "version": "1", "kind": "stage", "target": "Production",
        "comment": "alice's secret launch"})
    assert r.status_code == 200, r.text
    rid = r.json()["request"]["request_id"]
    r = secured.post("carol", f"{_A}/approve", {"request_id": rid, "comment": "carol says ok"})
    assert r.status_code == 200, r.text
    meta.rename_registered_model(old, new, actor="alice")
    _model(secured, old, "bob")
    meta.create_deployment(dep, old, [Variant("b", version="1")], actor="bob")
    return {"old": old, "new": new, "rid": rid, "dep": dep}


def test_audit_search_by_a_reused_name_shows_only_the_current_model(
        secured: Any, renamed: dict[str, Any]) -> None:
    r = secured.get("bob", "/api/v1/audit-log/search", params={"model_name": renamed["old"]})
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert entries and {e["actor"] for e in entries} <= {"bob", "admin"}, entries
    assert "alice's secret launch" not in r.text and "carol" not in r.text
    # alice finds her history under the model's name now; admins see everything.
    mine = secured.get("alice", "/api/v1/audit-log/search",
                       params={"model_name": renamed["new"]}).json()["entries"]
    assert any(e["actor"] == "carol" for e in mine)
    everything = secured.get("admin", "/api/v1/audit-log/search",
                             params={"model_name": renamed["old"]}).json()["entries"]
    assert {"alice", "carol", "bob"} <= {e["actor"] for e in everything}


def test_approval_requests_follow_the_model_not_the_name(
        secured: Any, renamed: dict[str, Any]) -> None:
    rid = renamed["rid"]
    r = secured.get("bob", f"{_A}/get", params={"request_id": rid})
    assert r.status_code == 404, r.text
    assert "carol says ok" not in r.text
    listed = secured.get("bob", f"{_A}/list", params={"name": renamed["old"]})
    assert listed.status_code == 200, listed.text
    assert rid not in [x["request_id"] for x in listed.json()["requests"]]
    assert rid not in [x["request_id"] for x in
                       secured.get("bob", f"{_A}/list").json()["requests"]]
    r = secured.post("bob", f"{_A}/approve", {"request_id": rid, "comment": "mine now"})
    assert r.status_code == 404, r.text
    # D6: the owner reads her own request after the rename (checked on the model by id).
    r = secured.get("alice", f"{_A}/get", params={"request_id": rid})
    assert r.status_code == 200, r.text
    assert r.json()["request"]["votes"][0]["approver"] == "carol"
    listed = secured.get("alice", f"{_A}/list", params={"name": renamed["new"]}).json()
    assert rid in [x["request_id"] for x in listed["requests"]]


def test_a_request_of_a_deleted_model_answers_non_admins_as_a_missing_one(
        secured: Any) -> None:
    """Admins read it; to anyone else (even its requester) it is a 404 worded as for an
    id that names no request, so request ids of deleted models cannot be probed."""
    meta = _meta(secured)
    name = _name("gone")
    _model(secured, name, "alice")
    meta.protect_target("stage", "Production", model_name=name, actor="admin")
    meta.grant_approver("carol", model_name=name, actor="admin")
    secured.store.set_model_permission(name, "carol", Permission.READ, actor="admin")
    rid = secured.post("alice", f"{_A}/request", {
        "name": name, "version": "1", "kind": "stage", "target": "Production",
        "comment": "before the delete"}).json()["request"]["request_id"]
    assert secured.get("alice", f"{_A}/get", params={"request_id": rid}).status_code == 200
    meta.delete_registered_model(name, actor="alice")
    unknown = str(int(rid) + 1_000_000)
    missing = secured.get("alice", f"{_A}/get", params={"request_id": unknown})
    assert missing.status_code == 404, missing.text
    for who, call in [("alice", lambda u: secured.get(u, f"{_A}/get",
                                                      params={"request_id": rid})),
                      ("carol", lambda u: secured.post(u, f"{_A}/approve",
                                                       {"request_id": rid, "comment": "ok"}))]:
        r = call(who)
        assert r.status_code == 404, (who, r.text)
        assert r.json()["message"] == missing.json()["message"].replace(unknown, str(rid)), r.text
        assert "before the delete" not in r.text
    r = secured.get("admin", f"{_A}/get", params={"request_id": rid})
    assert r.status_code == 200 and r.json()["request"]["comment"] == "before the delete", r.text


def test_a_request_of_a_model_the_caller_may_not_read_answers_as_a_missing_one(
        secured: Any) -> None:
    """Neither the request's existence nor its model's name shows (a review found the
    404 said "registered model '<name>' does not exist")."""
    name = _name("hiddenmodel")
    _model(secured, name, "alice")
    _meta(secured).protect_target("stage", "Production", model_name=name, actor="admin")
    rid = str(secured.post("alice", f"{_A}/request", {
        "name": name, "version": "1", "kind": "stage", "target": "Production",
        "comment": "hidden plan"}).json()["request"]["request_id"])
    unknown = str(int(rid) + 1_000_000)
    missing = secured.get("bob", f"{_A}/get", params={"request_id": unknown})
    assert missing.status_code == 404, missing.text
    for r in [secured.get("bob", f"{_A}/get", params={"request_id": rid}),
              secured.post("bob", f"{_A}/approve", {"request_id": rid, "comment": "ok"}),
              secured.post("bob", f"{_A}/reject", {"request_id": rid, "comment": "no"})]:
        assert r.status_code == 404, r.text
        assert r.json()["message"] == missing.json()["message"].replace(unknown, rid), r.text
        assert name not in r.text and "hidden plan" not in r.text


def test_deployment_history_of_a_reused_name_shows_only_models_the_caller_manages(
        secured: Any, renamed: dict[str, Any]) -> None:
    r = secured.get("bob", "/api/v1/deployments/history", params={"name": renamed["dep"]})
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert entries and {e["actor"] for e in entries} == {"bob"}, entries
    everything = secured.get("admin", "/api/v1/deployments/history",
                             params={"name": renamed["dep"]}).json()["entries"]
    assert {"alice", "bob"} <= {e["actor"] for e in everything}


# ---------------------------------------------------------------- 3: source-run values
@pytest.fixture(scope="module")
def private_run(secured: Any) -> dict[str, Any]:
    """carol's run (metric secret_acc, param dataset_path, a training input) is the source
    of version 1 of `model`, which alice may EDIT but whose run she may not read."""
    c = secured.client("carol")
    exp = c.get_or_create_experiment(_name("carol-exp"))
    run = c.create_run(exp).info.run_id
    c.log_metric(run, "secret_acc", 0.4242)
    c.log_param(run, "dataset_path", "s3://carol-private/pii.csv")
    c.flush()
    c.close()
    model = _name("polm")
    meta = _meta(secured)
    meta.create_registered_model(model, actor="admin")
    meta.create_model_version(model, f"runs:/{run}/model", run_id=run, actor="admin")
    secured.store.set_model_permission(model, "alice", Permission.EDIT, actor="admin")
    secured.store.set_model_permission(model, "carol", Permission.EDIT, actor="admin")
    r = secured.post("carol", "/api/v1/lineage/log-inputs", {"run_id": run, "datasets": [
        {"name": "pii", "digest": "d1g", "source": "s3://carol-private/pii.csv",
         "context": "training"}]})
    assert r.status_code == 200, r.text
    policy = (f'applies_to = ["alias:champ*"]\nmodels = ["{model}"]\n[[rules]]\n'
              'name = "accurate"\nrun = "metrics.secret_acc >= 0.9 and '
              "params.dataset_path = 's3://public/x.csv'\"\n")
    r = secured.post("admin", "/api/v1/policies/put", {"name": _name("acc"), "source": policy})
    assert r.status_code == 200, r.text
    return {"model": model, "run": run}


def _check(secured: Any, user: str, model: str) -> str:
    deadline = time.monotonic() + 20
    while True:  # the run's values reach the data plane shortly after the flush
        r = secured.post(user, "/api/v1/policies/check", {
            "name": model, "version": "1", "kind": "alias", "target": "champion"})
        assert r.status_code == 200, r.text
        text = r.text
        if "does not exist" not in text or time.monotonic() > deadline:
            return text
        time.sleep(0.25)


def test_policy_messages_show_run_values_only_to_who_may_read_the_run(
        secured: Any, private_run: dict[str, Any]) -> None:
    model = private_run["model"]
    assert "0.4242" in _check(secured, "carol", model)  # her run: the values help her
    text = _check(secured, "alice", model)
    assert "accurate" in text and "not shown" in text, text
    assert "0.4242" not in text and "carol-private" not in text, text
    r = secured.post("alice", "/api/v1/registered-models/alias",
                     {"name": model, "alias": "champion", "version": "1"})
    assert r.status_code == 400, r.text
    assert "accurate" in r.text and "0.4242" not in r.text and "carol-private" not in r.text


def test_lineage_hides_the_datasets_of_a_run_the_caller_cannot_read(
        secured: Any, private_run: dict[str, Any]) -> None:
    q = {"name": private_run["model"], "version": "1"}
    r = secured.get("carol", "/api/v1/lineage/model-version", params=q)
    assert r.status_code == 200 and "carol-private" in r.text, r.text
    r = secured.get("alice", "/api/v1/lineage/model-version", params=q)
    assert r.status_code == 200, r.text
    g = r.json()
    assert [n["kind"] for n in g["nodes"] if n["kind"] == "dataset"] == []
    assert "carol-private" not in r.text and "dataset:" not in r.text


# ---------------------------------------------------------------- 4: hidden approver lists
def test_approvers_of_a_hidden_model_answer_as_a_missing_one(secured: Any) -> None:
    model = _name("secretmodel")
    _model(secured, model, "alice")
    _meta(secured).grant_approver("carol", model_name=model, actor="admin")
    hidden = secured.get("bob", f"{_A}/approvers/list", params={"name": model})
    missing = secured.get("bob", f"{_A}/approvers/list", params={"name": model + "-no"})
    assert (hidden.status_code, missing.status_code) == (404, 404), (hidden.text, missing.text)
    assert hidden.json()["message"].replace(model, "X") == \
        missing.json()["message"].replace(model + "-no", "X")
    ok = secured.get("alice", f"{_A}/approvers/list", params={"name": model}).json()
    assert "carol" in {a["username"] for a in ok["approvers"]}


# ---------------------------------------------------------------- 6: out-of-range numbers
def _is_400(r: Any, field: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and field in body["message"], body


def test_out_of_range_ids_and_forged_page_tokens_are_400s(secured: Any) -> None:
    _is_400(secured.post("admin", f"{_A}/protected-targets/delete", {"target_id": HUGE}),
            "target_id")
    for user in ("alice", "admin"):
        _is_400(secured.get(user, f"{_A}/get", params={"request_id": HUGE}), "request_id")
        _is_400(secured.post(user, f"{_A}/approve", {"request_id": HUGE, "comment": "x"}),
                "request_id")
    model = _name("paged")
    _model(secured, model, "alice")
    _is_400(secured.get("alice", "/api/v1/audit-log/search",
                        params={"model_name": model, "page_token": FORGED}), "page_token")
    for path in ("/api/v1/registered-models/search", "/api/v1/model-versions/search"):
        _is_400(secured.post("alice", path, {"page_token": FORGED}), "page_token")
        _is_400(secured.post("admin", path, {"page_token": FORGED}), "page_token")


def test_protected_target_expiry_is_bounded(secured: Any) -> None:
    model = _name("expiring")
    _model(secured, model, "alice")
    for bad in (HUGE, 9223372036854775807, 10 * 365 * 86400 + 1):
        r = secured.post("admin", f"{_A}/protected-targets/create", {
            "kind": "alias", "pattern": "prod-*", "name": model, "expiry_s": int(bad)})
        _is_400(r, "expiry_s")
        assert ("315360000" if int(bad) < 2**63 else "9223372036854775807") in r.text
    r = secured.post("admin", f"{_A}/protected-targets/create", {
        "kind": "alias", "pattern": "prod-*", "name": model, "expiry_s": 10 * 365 * 86400})
    assert r.status_code == 200, r.text
    # A matching alias still works (a request is made, nothing overflows).
    r = secured.post("alice", "/api/v1/registered-models/alias",
                     {"name": model, "alias": "prod-1", "version": "1"})
    assert r.status_code == 400 and "approval request" in r.text, r.text


def test_grpc_protect_target_bounds_expiry_too(secured: Any, channel: Any) -> None:
    import grpc

    from metricflow._proto.metricflow.governance.v1 import governance_pb2 as pb
    from metricflow._proto.metricflow.governance.v1 import governance_pb2_grpc as pb_grpc

    stub = pb_grpc.GovernanceServiceStub(channel)
    with pytest.raises(grpc.RpcError) as e:
        stub.ProtectTarget(pb.ProtectTargetRequest(
            kind="alias", pattern=f"never-{uuid.uuid4().hex}", expiry_s=2**63 - 1),
            metadata=secured.md("admin"), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expiry_s" in (e.value.details() or "") and "315360000" in (e.value.details() or "")


# ---------------------------------------------------------------- 7: policy numbers
@pytest.mark.parametrize("age", ["nan", "inf", "1e400", HUGE, "-1", "0", "true"])
def test_max_age_days_must_be_a_finite_number_in_range(secured: Any, age: str) -> None:
    src = f'models = ["nothing-{uuid.uuid4().hex}"]\n[[rules]]\nname = "fresh"\n' \
          f"max_age_days = {age}\n"
    r = secured.post("admin", "/api/v1/policies/put", {"name": _name("age"), "source": src})
    _is_400(r, "max_age_days")
    assert "36500" in r.json()["message"]


def test_max_age_days_in_range_is_accepted(secured: Any) -> None:
    name = _name("age")
    src = f'models = ["nothing-{uuid.uuid4().hex}"]\n[[rules]]\nname = "fresh"\n' \
          "max_age_days = 36500\n"
    assert secured.post("admin", "/api/v1/policies/put",
                        {"name": name, "source": src}).status_code == 200
    assert secured.post("admin", "/api/v1/policies/delete", {"name": name}).status_code == 200


# ---------------------------------------------------------------- 8: unknown fields, scopes
def test_unknown_fields_of_governance_posts_are_refused(secured: Any) -> None:
    model = _name("fieldy")
    _model(secured, model, "alice")
    r = secured.post("admin", f"{_A}/protected-targets/create", {
        "kind": "stage", "pattern": "Production", "model": model, "approvals_required": 1})
    _is_400(r, "model")
    assert "Extra inputs are not permitted" in r.text
    listed = secured.get("admin", f"{_A}/protected-targets/list").json()["targets"]
    assert not any(t["model_name"] == "" and t["pattern"] == "Production" for t in listed)
    _is_400(secured.post("admin", f"{_A}/approvers/grant",
                         {"username": "bob", "model": model}), "model")


def test_unknown_query_parameters_of_governance_gets_are_refused(secured: Any) -> None:
    model = _name("paramy")
    _model(secured, model, "alice")
    # `model` instead of `name`: silently ignored, it listed every model's requests
    r = secured.get("alice", f"{_A}/list", params={"model": model})
    _is_400(r, "'model'")
    assert "max_results, name, state" in r.json()["message"]
    r = secured.get("alice", "/api/v1/lineage/model-version",
                    params={"name": model, "version": "1", "verison": "2"})
    _is_400(r, "'verison'")
    ok = secured.get("alice", f"{_A}/list", params={"name": model, "state": "pending"})
    assert ok.status_code == 200, ok.text
    ok = secured.get("alice", "/api/v1/lineage/model-version",
                     params={"name": model, "version": "1"})
    assert ok.status_code == 200, ok.text


def test_an_unknown_token_scope_is_a_400_naming_the_valid_ones(secured: Any) -> None:
    r = secured.post("alice", "/api/v1/auth/tokens/create", {"scopes": ["bogus"]})
    _is_400(r, "scopes")
    assert "read, edit, manage, admin" in r.json()["message"]
    r = secured.post("alice", "/api/v1/auth/tokens/create", {"scopes": ["admin"]})
    assert r.status_code == 403, r.text  # a known scope beyond the caller's: still 403


# ---------------------------------------------------------------- 9: token revocation oracle
def test_revoking_another_users_token_answers_as_an_unknown_id(secured: Any) -> None:
    """A non-admin learns nothing about token ids that are not theirs: someone else's
    and a missing one get the same 404 and the same message shape (a 403 told them
    apart). Admins still revoke anyone's token; owners their own."""
    bobs = secured.store.create_token("bob", name="bobs")[0].token_id
    unknown = "f" * len(bobs)
    theirs = secured.post("alice", "/api/v1/auth/tokens/revoke", {"token_id": bobs})
    missing = secured.post("alice", "/api/v1/auth/tokens/revoke", {"token_id": unknown})
    assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
    assert theirs.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                             "message": f"token {bobs!r} does not exist"}
    assert missing.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                              "message": f"token {unknown!r} does not exist"}
    assert secured.store.get_token(bobs).revoked_at is None
    # admins: unchanged (an unknown id is a 404, anyone's token is revoked)
    r = secured.post("admin", "/api/v1/auth/tokens/revoke", {"token_id": unknown})
    assert r.status_code == 404 and r.json()["message"] == f"token {unknown!r} does not exist"
    r = secured.post("admin", "/api/v1/auth/tokens/revoke", {"token_id": bobs})
    assert r.status_code == 200 and r.json()["info"]["revoked_at"], r.text
    # the owner revokes their own
    alices = secured.store.create_token("alice", name="spare")[0].token_id
    r = secured.post("alice", "/api/v1/auth/tokens/revoke", {"token_id": alices})
    assert r.status_code == 200 and r.json()["info"]["revoked_at"], r.text


# ---------------------------------------------------------------- 5: the last admin (last)
def test_the_last_admin_can_be_neither_demoted_nor_deleted(secured: Any) -> None:
    others = [u.username for u in secured.store.list_users()
              if u.is_admin and u.username != "admin"]
    for u in others:  # a module run in any order: "admin" is the only admin
        secured.store.update_user(u, is_admin=False, actor="admin")
    r = secured.post("admin", "/api/v1/auth/users/update",
                     {"username": "admin", "is_admin": False})
    assert r.status_code == 400 and "last admin" in r.json()["message"], r.text
    r = secured.post("admin", "/api/v1/auth/users/delete", {"username": "admin"})
    assert r.status_code == 400 and "last admin" in r.json()["message"], r.text
    assert secured.store.get_user("admin").is_admin
    # With a second admin, either may step down (once).
    second = _name("root")
    secured.store.create_user(second, is_admin=True, actor="admin")
    assert secured.post("admin", "/api/v1/auth/users/update",
                        {"username": second, "is_admin": False}).status_code == 200
    secured.store.update_user(second, is_admin=True, actor="admin")
    assert secured.post("admin", "/api/v1/auth/users/delete",
                        {"username": second}).status_code == 200
    r = secured.post("admin", "/api/v1/auth/users/delete", {"username": "admin"})
    assert r.status_code == 400, r.text
