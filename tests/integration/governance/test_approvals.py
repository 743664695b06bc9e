"""Approvals on SQLite and PostgreSQL: four eyes, N approvers, races, expiry, invalidation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from metricflow.errors import AlreadyExists, InvalidArgument, InvalidState, PermissionDenied
from metricflow.store.metadata import ApprovalRequired, open_metadata_store, verify_chain


def _request(store: Any, stage: str = "Production", version: int = 1,
             actor: str = "alice") -> int:
    with pytest.raises(ApprovalRequired) as e:
        store.transition_model_version_stage("m", version, stage, comment="ship it",
                                             actor=actor)
    assert f"approval request {e.value.request.request_id}" in e.value.message
    assert store.get_model_version("m", version).current_stage == "None"  # not applied
    return int(e.value.request.request_id)


def test_n_distinct_approvers_apply_the_transition(gstore: Any) -> None:
    gstore.protect_target("stage", "production", approvals_required=2, actor="admin")
    rid = _request(gstore)
    r = gstore.approve_request(rid, comment="looks right", actor="bob")
    assert (r.state, r.approvals) == ("pending", 1)
    assert gstore.get_model_version("m", 1).current_stage == "None"
    r = gstore.approve_request(rid, comment="ok", actor="carol")
    assert r.state == "applied" and r.approvals == 2
    assert [v.comment for v in r.votes] == ["looks right", "ok"]
    mv = gstore.get_model_version("m", 1)
    assert mv.current_stage == "Production"
    # The transition is recorded in the requester's name with the request's comment.
    moves = gstore.search_audit_log(model_name="m",
                                    action="transition_model_version_stage")[0]
    assert len(moves) == 1 and moves[0].actor == "alice"
    assert f"approval request {rid}" in moves[0].comment
    assert verify_chain(gstore.engine).ok


def test_the_requester_never_votes(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", actor="admin")
    gstore.grant_approver("alice", actor="admin")  # even holding APPROVE
    rid = _request(gstore)
    for vote in (gstore.approve_request, gstore.reject_request):
        with pytest.raises(PermissionDenied, match="four eyes"):
            vote(rid, actor="alice")
    assert gstore.get_approval_request(rid).state == "pending"
    assert gstore.get_approval_request(rid).votes == ()


def test_one_person_votes_once_and_needs_the_grant(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", approvals_required=2, actor="admin")
    rid = _request(gstore)
    gstore.approve_request(rid, comment="ok", actor="bob")
    with pytest.raises(AlreadyExists, match="already voted"):
        gstore.approve_request(rid, comment="ok", actor="bob")
    with pytest.raises(PermissionDenied, match="APPROVE"):
        gstore.approve_request(rid, comment="ok", actor="eve")  # no grant
    with pytest.raises(PermissionDenied, match="authenticated"):
        gstore.approve_request(rid, comment="ok", actor=None)
    r = gstore.get_approval_request(rid)
    assert (r.state, r.approvals) == ("pending", 1)
    gstore.grant_approver("eve", model_name="m", actor="admin")  # a per-model grant
    assert gstore.approve_request(rid, comment="ok", actor="eve").state == "applied"


def _race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) in n threads released together; results or exceptions."""
    out: list[Any] = [None] * n
    go = threading.Barrier(n)

    def one(i: int) -> None:
        go.wait()
        try:
            out[i] = fn(i)
        except Exception as e:  # collected and asserted on
            out[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_racing_approvals_apply_exactly_once(gstore: Any, metadata_uri: str) -> None:
    gstore.protect_target("stage", "Production", approvals_required=2, actor="admin")
    gstore.create_model_version("m", "s3://bucket/m/2", run_id="r2", actor="alice")
    rid = _request(gstore, version=2)
    stores = [open_metadata_store(metadata_uri) for _ in range(3)]
    try:
        results = _race(3, lambda i: stores[i].approve_request(
            rid, comment="ok", actor=("bob", "carol", "dave")[i]))
    finally:
        for s in stores:
            s.close()
    applied = [r for r in results if not isinstance(r, Exception) and r.state == "applied"]
    late = [r for r in results if isinstance(r, InvalidState)]
    assert len(applied) == 1 and len(late) == 1, results
    assert "applied, not pending" in late[0].message
    r = gstore.get_approval_request(rid)
    assert r.state == "applied" and len(r.votes) == 2
    moves = gstore.search_audit_log(model_name="m",
                                    action="transition_model_version_stage")[0]
    assert len(moves) == 1
    assert verify_chain(gstore.engine).ok


def test_one_person_racing_themselves_votes_once(gstore: Any, metadata_uri: str) -> None:
    gstore.protect_target("stage", "Production", approvals_required=2, actor="admin")
    rid = _request(gstore)
    stores = [open_metadata_store(metadata_uri) for _ in range(4)]
    try:
        results = _race(4, lambda i: stores[i].approve_request(rid, comment="ok", actor="bob"))
    finally:
        for s in stores:
            s.close()
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 1, results
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, Exception))
    r = gstore.get_approval_request(rid)
    assert (r.state, r.approvals) == ("pending", 1)


def test_a_changed_version_invalidates_the_request(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", actor="admin")
    newer = _request(gstore)
    gstore.create_model_version("m", "s3://bucket/m/2", actor="alice")  # a newer version
    assert gstore.get_approval_request(newer).state == "invalidated"
    with pytest.raises(InvalidState, match="newer version"):
        gstore.approve_request(newer, comment="ok", actor="bob")
    assert gstore.get_approval_request(newer).state == "invalidated"  # recorded
    assert gstore.get_model_version("m", 1).current_stage == "None"

    edited = _request(gstore, version=2)
    gstore.update_model_version("m", 2, "changed after the request", actor="alice")
    with pytest.raises(InvalidState, match="changed since"):
        gstore.approve_request(edited, comment="ok", actor="bob")

    gone = _request(gstore, version=2)
    gstore.delete_model_version("m", 2, actor="alice")
    with pytest.raises(InvalidState, match="deleted"):
        gstore.approve_request(gone, comment="ok", actor="bob")
    states = {r.request_id: r.state for r in gstore.list_approval_requests()}
    assert states == {newer: "invalidated", edited: "invalidated", gone: "invalidated"}


def test_requests_expire(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", expiry_s=1, actor="admin")
    rid = _request(gstore)
    assert gstore.get_approval_request(rid).expires_at is not None
    time.sleep(1.2)  # the expiry must pass: time passing is the point
    assert [r.request_id for r in gstore.list_approval_requests(state="expired")] == [rid]
    with pytest.raises(InvalidState, match="expired"):
        gstore.approve_request(rid, comment="ok", actor="bob")
    assert gstore.get_model_version("m", 1).current_stage == "None"


def test_reject_closes_the_request(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", approvals_required=2, actor="admin")
    rid = _request(gstore)
    gstore.approve_request(rid, comment="ok", actor="bob")
    r = gstore.reject_request(rid, comment="no model card", actor="carol")
    assert r.state == "rejected" and "carol" in r.resolution
    with pytest.raises(InvalidState, match="rejected"):
        gstore.approve_request(rid, comment="ok", actor="dave")
    assert gstore.get_model_version("m", 1).current_stage == "None"


def test_protected_aliases_per_model_and_global(gstore: Any) -> None:
    gstore.create_registered_model("other", actor="admin")
    gstore.create_model_version("other", "s3://bucket/o/1", actor="alice")
    gstore.protect_target("alias", "prod-*", model_name="m", actor="admin")
    gstore.protect_target("alias", "champion", actor="admin")  # every model
    gstore.set_registered_model_alias("m", "staging-a", 1, actor="alice")  # unprotected
    gstore.set_registered_model_alias("other", "prod-eu", 1, actor="alice")  # other model
    for model, alias in (("m", "prod-eu"), ("m", "champion"), ("other", "champion")):
        with pytest.raises(ApprovalRequired) as e:
            gstore.set_registered_model_alias(model, alias, 1, actor="alice")
        r = gstore.approve_request(e.value.request.request_id, comment="ok", actor="bob")
        assert r.state == "applied"
        assert gstore.get_model_version_by_alias(model, alias).version == "1"
    moved = gstore.search_audit_log(model_name="m", action="set_registered_model_alias")[0]
    assert moved[-1].comment.startswith("approval request ")  # the request's comment
    applied = gstore.search_audit_log(model_name="m", action="applied_request")[0]
    assert "policies passed: none in force" in applied[-1].comment
    rules = gstore.list_protected_targets("other")
    assert [(t.kind, t.pattern, t.model_name) for t in rules] == [("alias", "champion", "")]


def test_archive_existing_applies_with_the_request(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", actor="admin")
    rid = _request(gstore)
    gstore.approve_request(rid, comment="ok", actor="bob")
    gstore.create_model_version("m", "s3://bucket/m/2", actor="alice")
    with pytest.raises(ApprovalRequired) as e:
        gstore.transition_model_version_stage("m", 2, "Production",
                                              archive_existing_versions=True, actor="alice")
    gstore.approve_request(e.value.request.request_id, comment="ok", actor="carol")
    assert gstore.get_model_version("m", 2).current_stage == "Production"
    assert gstore.get_model_version("m", 1).current_stage == "Archived"


def test_asking_again_names_the_open_request(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", actor="admin")
    first = _request(gstore)
    assert _request(gstore) == first  # the same person, the same change: one request
    other = _request(gstore, actor="zed")  # someone else asking is their own request
    assert other != first
    gstore.reject_request(first, comment="ok", actor="bob")
    assert _request(gstore) not in (first, other)  # closed: a new one
    assert len(gstore.list_approval_requests()) == 3


def test_every_step_has_a_comment(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", actor="admin")
    with pytest.raises(ApprovalRequired) as e:  # a transition through an API with none
        gstore.transition_model_version_stage("m", 1, "Production", actor="alice")
    assert e.value.request.comment == "stage 'Production' asked for by a transition of alice"
    with pytest.raises(InvalidArgument, match="a vote needs a comment"):
        gstore.approve_request(e.value.request.request_id, comment="  ", actor="bob")
    with pytest.raises(InvalidArgument, match="a request needs a comment"):
        gstore.request_transition("m", 1, "stage", "Production", actor="alice")
    assert gstore.get_approval_request(e.value.request.request_id).votes == ()


def test_a_revoked_approvers_vote_stops_counting(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", approvals_required=2, actor="admin")
    rid = _request(gstore)
    gstore.approve_request(rid, comment="ok", actor="bob")
    gstore.revoke_approver("bob", actor="admin")
    r = gstore.approve_request(rid, comment="ok", actor="carol")
    assert (r.state, len(r.votes)) == ("pending", 2)  # bob's vote no longer counts
    assert gstore.approve_request(rid, comment="ok", actor="dave").state == "applied"


def test_a_renamed_model_invalidates_naming_the_new_name(gstore: Any) -> None:
    gstore.protect_target("stage", "Production", actor="admin")
    rid = _request(gstore)
    gstore.rename_registered_model("m", "m2", actor="admin")
    r = gstore.get_approval_request(rid)
    assert r.state == "invalidated" and "renamed to 'm2'" in r.resolution



def test_a_page_of_requests_is_filled_with_visible_ones(gstore: Any) -> None:
    """Requests the caller may not see are skipped before max_results counts, so a
    caller who sees one model still gets its requests behind newer hidden ones."""
    gstore.protect_target("stage", "Production", actor="admin")
    gstore.create_registered_model("hidden", actor="admin")
    gstore.create_model_version("hidden", "s3://bucket/hidden/1", actor="alice")
    seen = _request(gstore)  # model m, the oldest
    gstore.protect_target("stage", "Staging", actor="admin")
    for stage in ("Production", "Staging"):
        with pytest.raises(ApprovalRequired):
            gstore.transition_model_version_stage("hidden", 1, stage, comment="x",
                                                  actor=f"u-{stage}")
    assert len(gstore.list_approval_requests()) == 3

    def visible(model: str) -> bool:
        return model == "m"
    for state in (None, "pending"):
        page = gstore.list_approval_requests(state=state, max_results=1, visible=visible)
        assert [r.request_id for r in page] == [seen], state


def test_a_protected_alias_is_never_removed_by_a_direct_write(gstore: Any) -> None:
    gstore.create_model_version("m", "s3://bucket/m/2", actor="alice")
    gstore.set_registered_model_alias("m", "champion", 2, actor="alice")
    gstore.set_registered_model_alias("m", "staging", 2, actor="alice")
    rule = gstore.protect_target("alias", "champ*", model_name="m", actor="admin")
    with pytest.raises(InvalidState, match=(
            rf"model 'm' has protected alias 'champion' \(rule {rule.target_id} "
            r"\('champ\*'\)\): deleting version 2 would remove it")) as e:
        gstore.delete_model_version("m", 2, actor="alice")
    assert e.value.details["field"] == "alias" and "unprotect" in str(e.value)
    # Nor orphaned: models:/m@champion would point nowhere after a rename or a delete.
    with pytest.raises(InvalidState, match="renaming the model to 'm2' would remove it"):
        gstore.rename_registered_model("m", "m2", actor="alice")
    with pytest.raises(InvalidState, match="deleting the model would remove it"):
        gstore.delete_registered_model("m", actor="alice")
    gstore.update_registered_model("m", "a description is not a rename", actor="alice")
    assert gstore.get_model_version_by_alias("m", "champion").version == "2"
    assert gstore.get_model_version_by_alias("m", "staging").version == "2"  # not half done
    gstore.delete_registered_model_alias("m", "staging", actor="alice")  # not protected
    # Removing it makes a request, like moving it; an approval removes it.
    with pytest.raises(ApprovalRequired, match=(
            r"alias 'champion' of model 'm' is protected: its removal \(from version 2\) "
            r"was not applied; approval request \d+ was created")) as r:
        gstore.delete_registered_model_alias("m", "champion", actor="alice")
    req = r.value.request
    assert (req.kind, req.target, req.version, req.requester) == (
        "unalias", "champion", "2", "alice")
    assert gstore.get_model_version_by_alias("m", "champion").version == "2"
    done = gstore.approve_request(req.request_id, comment="retired", actor="bob")
    assert done.state == "applied"
    with pytest.raises(Exception, match="no alias 'champion'"):
        gstore.get_model_version_by_alias("m", "champion")
    removed = gstore.search_audit_log(model_name="m", action="delete_registered_model_alias")[0]
    assert sorted((e.before["alias"], e.actor) for e in removed) == [
        ("champion", "alice"), ("staging", "alice")]  # in the requester's name
    assert [e.comment for e in removed if e.before["alias"] == "champion"] == [
        f"approval request {req.request_id}: removal of alias 'champion' asked for by alice"]
    # Set again (through a request); once an admin lifts the rule, direct writes go through.
    with pytest.raises(ApprovalRequired) as again:
        gstore.set_registered_model_alias("m", "champion", 2, actor="alice")
    gstore.approve_request(again.value.request.request_id, comment="back", actor="bob")
    gstore.unprotect_target(rule.target_id, actor="admin")
    gstore.delete_model_version("m", 2, actor="alice")
    with pytest.raises(Exception, match="no alias 'champion'"):
        gstore.get_model_version_by_alias("m", "champion")


def test_a_removal_request_is_checked_and_invalidated_when_the_alias_moves(
        gstore: Any) -> None:
    gstore.create_model_version("m", "s3://bucket/m/2", actor="alice")
    gstore.set_registered_model_alias("m", "champion", 1, actor="alice")
    gstore.set_registered_model_alias("m", "dev", 1, actor="alice")
    with pytest.raises(InvalidArgument, match="alias 'dev' of model 'm' is not protected: "
                                              "remove it directly"):
        gstore.request_transition("m", 1, "unalias", "dev", comment="x", actor="alice")
    gstore.protect_target("alias", "champion", actor="admin")  # every model
    with pytest.raises(InvalidArgument, match="points to version 1, not 2") as e:
        gstore.request_transition("m", 2, "unalias", "champion", comment="x", actor="alice")
    assert e.value.details["field"] == "version"
    with pytest.raises(InvalidArgument, match="kind must be one of"):
        gstore.request_transition("m", 1, "drop", "champion", comment="x", actor="alice")
    moved = gstore.request_transition("m", 1, "unalias", "champion", comment="retire",
                                      actor="alice")
    # Editing the version, or a newer version, does not matter to a removal ...
    gstore.update_model_version("m", 1, "edited", actor="alice")
    gstore.create_model_version("m", "s3://bucket/m/3", actor="alice")
    assert gstore.get_approval_request(moved.request_id).state == "pending"
    # ... the alias moving does (through its own approval).
    with pytest.raises(ApprovalRequired) as r:
        gstore.set_registered_model_alias("m", "champion", 2, actor="carol")
    gstore.approve_request(r.value.request.request_id, comment="ok", actor="bob")
    got = gstore.get_approval_request(moved.request_id)
    assert (got.state, got.resolution) == (
        "invalidated", "alias 'champion' was moved to version 2 since the request")
    with pytest.raises(InvalidState, match="is invalidated, not pending"):
        gstore.approve_request(moved.request_id, comment="ok", actor="bob")
    assert gstore.get_model_version_by_alias("m", "champion").version == "2"
    req = gstore.request_transition("m", 2, "unalias", "champion", comment="retire",
                                    actor="alice")
    with pytest.raises(PermissionDenied, match="four eyes"):
        gstore.approve_request(req.request_id, comment="mine", actor="alice")


def test_every_protected_alias_is_named_and_a_deleted_models_rules_are_audited(
        gstore: Any) -> None:
    gstore.create_registered_model("gone", actor="admin")
    gstore.create_model_version("gone", "s3://bucket/g/1", actor="alice")
    for alias in ("prod-eu", "prod-us", "dev"):
        gstore.set_registered_model_alias("gone", alias, 1, actor="alice")
    rule = gstore.protect_target("alias", "prod-*", model_name="gone", actor="admin")
    with pytest.raises(InvalidState, match=(
            r"protected alias 'prod-eu' \(rule \d+ \('prod-\*'\)\); alias 'prod-us' "
            r"\(rule \d+ \('prod-\*'\)\): deleting version 1 would remove them")) as e:
        gstore.delete_model_version("gone", 1, actor="alice")
    assert e.value.details["received"] == "prod-eu, prod-us"
    # A stage rule of the model is not about aliases: the model goes once the alias rule
    # is lifted, and its remaining rule is recorded as lifted with it.
    stage_rule = gstore.protect_target("stage", "Production", model_name="gone",
                                       actor="admin")
    gstore.unprotect_target(rule.target_id, actor="admin")
    gstore.delete_registered_model("gone", actor="alice")
    lifted = gstore.search_audit_log(model_name="gone", action="unprotect_target")[0]
    by_id = {e.entity_id: e for e in lifted}
    assert set(by_id) == {str(rule.target_id), str(stage_rule.target_id)}
    assert by_id[str(stage_rule.target_id)].comment == "registered model 'gone' deleted"
    assert by_id[str(stage_rule.target_id)].actor == "alice"
    import sqlalchemy as sa

    from metricflow.store.metadata._tables import protected_targets
    with gstore.engine.connect() as conn:  # the rows went with the model (cascade)
        assert conn.execute(sa.select(sa.func.count()).select_from(protected_targets)
                            ).scalar() == 0


def test_an_invalidated_removal_stays_invalidated(gstore: Any) -> None:
    """The alias moving away and back, or removed and set again, does not revive it."""
    gstore.create_model_version("m", "s3://bucket/m/2", actor="alice")
    gstore.set_registered_model_alias("m", "champion", 1, actor="alice")
    gstore.protect_target("alias", "champion", model_name="m", actor="admin")

    def move(v: int) -> None:
        with pytest.raises(ApprovalRequired) as r:
            gstore.set_registered_model_alias("m", "champion", v, actor="dave")
        gstore.approve_request(r.value.request.request_id, comment="ok", actor="bob")

    aba = gstore.request_transition("m", 1, "unalias", "champion", comment="x", actor="alice")
    move(2)
    move(1)
    got = gstore.get_approval_request(aba.request_id)
    assert (got.state, got.resolution) == (
        "invalidated", "alias 'champion' was moved to version 2 since the request")
    with pytest.raises(InvalidState, match="invalidated"):
        gstore.approve_request(aba.request_id, comment="ok", actor="bob")
    first = gstore.request_transition("m", 1, "unalias", "champion", comment="a",
                                      actor="alice")
    second = gstore.request_transition("m", 1, "unalias", "champion", comment="c",
                                       actor="carol")
    assert gstore.approve_request(first.request_id, comment="ok", actor="bob").state == \
        "applied"
    move(1)  # set again, at the same version
    got = gstore.get_approval_request(second.request_id)
    assert (got.state, got.resolution) == (
        "invalidated", "alias 'champion' was removed since the request")
    assert gstore.get_model_version_by_alias("m", "champion").version == "1"


def test_a_request_does_not_outlive_its_model_or_a_stricter_rule(gstore: Any) -> None:
    gstore.protect_target("alias", "champion", actor="admin")  # every model
    old = gstore.request_transition("m", 1, "alias", "champion", comment="x", actor="alice")
    gstore.delete_registered_model("m", actor="admin")  # it holds no protected alias
    gstore.create_registered_model("m", actor="mallory")  # (SQLite: the same id again)
    gstore.create_model_version("m", "s3://evil/1", actor="mallory")
    got = gstore.get_approval_request(old.request_id)
    assert (got.state, got.resolution) == (
        "invalidated", "model 'm' was deleted and another model took its name")
    # A rule made stricter after the request: the vote needs what it asks for now.
    req = gstore.request_transition("m", 1, "alias", "champion", comment="y", actor="alice")
    gstore.protect_target("alias", "champ*", model_name="m", approvals_required=2,
                          actor="admin")
    assert gstore.approve_request(req.request_id, comment="1", actor="bob").state == "pending"
    done = gstore.approve_request(req.request_id, comment="2", actor="carol")
    assert (done.state, done.approvals_required) == ("applied", 2)


def test_a_removal_is_not_held_by_policies(gstore: Any) -> None:
    gstore.set_registered_model_alias("m", "champion", 1, actor="alice")
    gstore.protect_target("alias", "champion", actor="admin")
    gstore.put_policy("prod", 'applies_to = ["alias:champion"]\n[[rules]]\nname = "d"\n'
                      'require = ["description"]\n', actor="admin")
    req = gstore.request_transition("m", 1, "unalias", "champion", comment="x", actor="alice")
    # (this store has no policy evaluator: a promotion could not be decided at all)
    assert gstore.approve_request(req.request_id, comment="ok", actor="bob").state == "applied"
    with pytest.raises(InvalidArgument, match="why this alias should be removed"):
        gstore.request_transition("m", 1, "unalias", "champion", comment=" ", actor="alice")
