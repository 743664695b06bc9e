"""Store-level parts of the governance probe fixes, on SQLite and PostgreSQL: requests
and audit searches follow a model's id (not a reused name), a deleted user's APPROVE
grants go with them, the last admin stays, and out-of-range numbers are refused."""

from __future__ import annotations

from typing import Any

import pytest

from metricflow.auth._store import AuthStore
from metricflow.errors import InvalidArgument, InvalidState
from metricflow.store.metadata import ApprovalRequired, model_of_request


def _request(s: Any) -> int:
    with pytest.raises(ApprovalRequired) as e:
        s.transition_model_version_stage("m", 1, "Production", comment="go", actor="alice")
    return int(e.value.request.request_id)


def test_requests_and_history_follow_the_model_id_not_a_reused_name(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", model_name="m", actor="admin")
    rid = _request(gstore)
    gstore.rename_registered_model("m", "m2", actor="alice")
    gstore.create_registered_model("m", actor="bob")  # the old name, someone else's model
    assert model_of_request(gstore._engine, rid) == (True, "m2")
    assert model_of_request(gstore._engine, str(rid + 1000)) == (False, None)
    assert [r.request_id for r in gstore.list_approval_requests(model_name="m2")] == [rid]
    assert gstore.list_approval_requests(model_name="m") == []
    seen: list[str | None] = []
    gstore.list_approval_requests(visible=lambda name: seen.append(name) or True)
    assert seen == ["m2"]  # visibility is asked by the name the model has now
    mine = gstore.search_audit_log(model_name="m", current_model_only=True)[0]
    assert {e.actor for e in mine} == {"bob"}
    every = gstore.search_audit_log(model_name="m")[0]
    assert {"alice", "bob"} <= {e.actor for e in every}
    gstore.delete_registered_model("m2", actor="alice")
    assert model_of_request(gstore._engine, rid) == (True, None)


def test_out_of_range_numbers_are_invalid_arguments(gstore: Any) -> None:
    for bad in (2**63, "99999999999999999999"):
        with pytest.raises(InvalidArgument, match="request_id"):
            gstore.get_approval_request(bad)
        with pytest.raises(InvalidArgument, match="request_id"):
            model_of_request(gstore._engine, bad)
        with pytest.raises(InvalidArgument, match="target_id"):
            gstore.unprotect_target(bad, actor="admin")
    for expiry in (2**63 - 1, 10 * 365 * 86400 + 1, 0, True):
        with pytest.raises(InvalidArgument, match="expiry_s"):
            gstore.protect_target("alias", "prod-*", expiry_s=expiry, actor="admin")
    with pytest.raises(InvalidArgument, match="page_token"):
        gstore.search_audit_log(page_token="eyJvIjogMTAwMDAwMDAwMDAwMDAwMDAwMDAwMH0=")
    with pytest.raises(InvalidArgument, match="page_token"):
        gstore.search_registered_models(page_token="eyJvIjogMTAwMDAwMDAwMDAwMDAwMDAwMDAwMH0=")


def test_deleting_a_user_removes_their_approve_grants(gstore: Any) -> None:
    auth = AuthStore(gstore._engine)
    auth.create_user("root", is_admin=True)
    auth.create_user("bob")
    gstore.grant_approver("bob", model_name="m", actor="admin")  # plus the fixture's global
    assert ("bob", "m") in gstore.list_approvers()
    auth.delete_user("bob", actor="root")
    assert [u for u, _ in gstore.list_approvers() if u == "bob"] == []
    auth.create_user("bob")
    assert [u for u, _ in gstore.list_approvers() if u == "bob"] == []


def test_the_last_admin_stays(gstore: Any) -> None:
    auth = AuthStore(gstore._engine)
    auth.create_user("root", is_admin=True)
    with pytest.raises(InvalidState, match="last admin"):
        auth.update_user("root", is_admin=False)
    with pytest.raises(InvalidState, match="last admin"):
        auth.delete_user("root")
    auth.create_user("root2", is_admin=True)
    auth.update_user("root", is_admin=False)
    with pytest.raises(InvalidState, match="last admin"):
        auth.delete_user("root2")
    assert auth.get_user("root2").is_admin
