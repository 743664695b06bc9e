"""SQLite gives a deleted model's id to the next model created: that model must not
inherit the old one's approval requests or audit history (a review of the probe fixes
found both readable by the new model's creator)."""

from __future__ import annotations

from metricflow.store.metadata import ApprovalRequired, model_of_request, open_metadata_store


def test_a_new_model_with_a_reused_id_sees_none_of_the_old_ones_history(tmp_path) -> None:
    s = open_metadata_store(f"sqlite:///{tmp_path}/md.db")
    old = s.create_registered_model("m", actor="admin")
    s.create_model_version("m", "s3://bucket/m/1", run_id="r1", description="first",
                           actor="alice")
    s.grant_approver("bob", actor="admin")
    s.protect_target("stage", "Production", model_name="m", actor="admin")
    try:
        s.transition_model_version_stage("m", 1, "Production", comment="secret plan",
                                         actor="alice")
        raise AssertionError("the protected transition was applied")
    except ApprovalRequired as e:
        rid = int(e.request.request_id)
    assert model_of_request(s._engine, rid) == (True, "m")
    s.delete_registered_model("m", actor="alice")
    s.create_registered_model("evil", actor="mallory")
    with s._engine.connect() as conn:  # SQLite reused the id: the case under test
        assert conn.exec_driver_sql("SELECT model_id FROM registered_models "
                                    "WHERE name = 'evil'").scalar() == 1
    assert model_of_request(s._engine, rid) == (True, None)  # a deleted model's: admins
    assert s.list_approval_requests(model_name="evil") == []
    entries = s.search_audit_log(model_name="evil", current_model_only=True)[0]
    assert [(e.actor, e.action) for e in entries] == [("mallory", "create_registered_model")]
    # the old model's history is still there for admins, by its old name
    assert "request_approval" in [e.action for e in s.search_audit_log(model_name="m")[0]]
    assert old.name == "m"
