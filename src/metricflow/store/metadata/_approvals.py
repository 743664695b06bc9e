"""Approvals: protected stages and aliases, requests, votes, atomic apply.

A transition to a protected target (a stage, or an alias matching a glob, on one
model or on every model) becomes a request instead of a change. Approvers who
hold the APPROVE grant (`governance_approvers`) vote; the requester never does.
When the last required approval arrives, the policies are checked and the
transition is applied in the same transaction as that vote. A request whose
version changed since it was made (edited, deleted, or a newer version
registered) is invalidated; one past its expiry is expired.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from metricflow import _events
from metricflow._validation import to_int64
from metricflow.entities import STAGE_PRODUCTION, STAGE_STAGING, ModelVersion
from metricflow.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidState,
    NotFound,
    PermissionDenied,
)
from metricflow.store.metadata._base import actor_name, inserted_id, now_ms
from metricflow.store.metadata._gov_types import (
    ALIAS,
    ALIAS_REMOVAL,
    APPLIED,
    EXPIRED,
    INVALIDATED,
    PENDING,
    REJECTED,
    REQUEST_STATES,
    STAGE,
    ApprovalRequest,
    ApprovalRequired,
    ProtectedTarget,
    Vote,
)
from metricflow.store.metadata._policy_store import PolicyMixin
from metricflow.store.metadata._tables import (
    approval_requests,
    approval_votes,
    approvers,
    model_aliases,
    model_versions,
    protected_targets,
    registered_models,
)
from metricflow.store.metadata._validate import (
    check_alias,
    check_max_results,
    check_stage,
    check_version,
)

_R, _VT, _P, _AP = approval_requests.c, approval_votes.c, protected_targets.c, approvers.c
_M, _V = registered_models.c, model_versions.c
MAX_APPROVALS = 20
MAX_COMMENT = 5000
MAX_EXPIRY_S = 10 * 365 * 86400
"""The longest a protected target's requests may stay open (10 years)."""


def _check_comment(comment: str) -> str:
    if not isinstance(comment, str):
        raise InvalidArgument("comment must be a string", field="comment")
    if len(comment) > MAX_COMMENT:
        raise InvalidArgument(f"comment is {len(comment)} characters long; the limit is "
                              f"{MAX_COMMENT}", field="comment", limit=MAX_COMMENT,
                              received=len(comment))
    return comment


def _check_kind(kind: str, removal: bool = False) -> str:
    """A protected target's kind; with `removal`, also a request's kind ALIAS_REMOVAL."""
    kinds = (STAGE, ALIAS, ALIAS_REMOVAL) if removal else (STAGE, ALIAS)
    if kind not in kinds:
        raise InvalidArgument(f"kind must be one of {', '.join(map(repr, kinds))}, got "
                              f"{kind!r}", field="kind", received=str(kind)[:40])
    return kind


def matching_rules(conn: sa.Connection, model_id: int, kind: str,
                   target: str) -> list[Any]:
    """The rules (the model's own and global ones, oldest first) that protect `target`:
    a stage by its exact name, an alias by glob. The one rule of what is protected."""
    rows = conn.execute(sa.select(_P.target_id, _P.pattern, _P.approvals_required,
                                  _P.expiry_s).where(
        sa.or_(_P.model_id.is_(None), _P.model_id == model_id), _P.kind == kind)
        .order_by(_P.target_id)).all()
    return [r for r in rows if (r.pattern == target if kind == STAGE
                                else fnmatch.fnmatchcase(target, r.pattern))]


def _rule_kind(kind: str) -> str:
    """The kind of rule that protects a request's target (a removal: the alias's)."""
    return ALIAS if kind == ALIAS_REMOVAL else kind


def protection(conn: sa.Connection, model_id: int, kind: str,
               target: str) -> tuple[int, int | None] | None:
    """(approvals needed, expiry) if `target` is protected on the model, else None.
    Approvals and deployments both ask it."""
    hits = matching_rules(conn, model_id, kind, target)
    if not hits:
        return None
    expiries = [r.expiry_s for r in hits if r.expiry_s]
    return max(r.approvals_required for r in hits), (min(expiries) if expiries else None)


def protected_patterns(conn: sa.Connection, model_id: int) -> list[tuple[str, str]]:
    """(kind, pattern) of every rule that applies to the model (its own and global ones)."""
    return [(r.kind, r.pattern) for r in conn.execute(
        sa.select(_P.kind, _P.pattern).where(
            sa.or_(_P.model_id.is_(None), _P.model_id == model_id))
        .order_by(_P.kind, _P.pattern)).all()]


class ApprovalsMixin(PolicyMixin):
    """Protected targets, approvers and approval requests of `MetadataStore`."""

    # --------------------------------------------------------- protected targets
    def protect_target(self, kind: str, pattern: str, *, model_name: str | None = None,
                       approvals_required: int = 1, expiry_s: int | None = None,
                       actor: str | None = None) -> ProtectedTarget:
        """Protect a stage (exact name) or aliases matching a glob, on one model or all."""
        _check_kind(kind)
        if kind == STAGE:
            pattern = check_stage(pattern)
        elif not isinstance(pattern, str) or not pattern or len(pattern) > 256:
            raise InvalidArgument("alias pattern must be 1-256 characters (a glob such as "
                                  "'prod-*')", field="pattern", received=str(pattern)[:80])
        if not isinstance(approvals_required, int) or not 1 <= approvals_required <= \
                MAX_APPROVALS:
            raise InvalidArgument(f"approvals_required must be 1-{MAX_APPROVALS}, got "
                                  f"{approvals_required!r}", field="approvals_required",
                                  limit=MAX_APPROVALS, received=approvals_required)
        if expiry_s is not None and (isinstance(expiry_s, bool) or not isinstance(
                expiry_s, int) or not 0 < expiry_s <= MAX_EXPIRY_S):
            raise InvalidArgument(f"expiry_s must be a number of seconds in 1-{MAX_EXPIRY_S} "
                                  f"(10 years), got {str(expiry_s)[:40]}", field="expiry_s",
                                  limit=MAX_EXPIRY_S, received=str(expiry_s)[:80])
        ts = now_ms()
        with self._write() as conn:
            mid = self._model(conn, model_name).model_id if model_name else None
            dup = conn.execute(sa.select(_P.target_id).where(
                _P.model_id.is_(None) if mid is None else _P.model_id == mid,
                _P.kind == kind, _P.pattern == pattern)).scalar()
            if dup is not None:
                raise AlreadyExists(f"{kind} {pattern!r} is already protected"
                                    + (f" on model {model_name!r}" if model_name else "")
                                    + f" (rule {dup})", field="pattern", received=pattern)
            tid = inserted_id(conn.execute(protected_targets.insert().values(
                model_id=mid, kind=kind, pattern=pattern,
                approvals_required=approvals_required, expiry_s=expiry_s,
                created_by=actor_name(actor), created_at=ts)))
            after = {"kind": kind, "pattern": pattern, "model": model_name or "*",
                     "approvals_required": approvals_required, "expiry_s": expiry_s}
            self._audit(conn, actor=actor, action="protect_target",
                        entity_type="protected_target", entity_id=str(tid), after=after,
                        model_id=mid, model_name=model_name)
        return ProtectedTarget(tid, model_name or "", kind, pattern, approvals_required,
                               expiry_s, actor_name(actor), ts)

    def _check_alias_removal(self, conn: sa.Connection, model_id: int, name: str,
                             aliases: Sequence[str], change: str) -> None:
        """A protected alias is moved only through an approval and never removed or
        orphaned by a direct write (deployments and models:/ URIs follow it):
        InvalidState naming every such alias and the rules to lift."""
        hit = {a: rs for a in aliases if (rs := matching_rules(conn, model_id, ALIAS, a))}
        if not hit:
            return
        said = "; ".join(f"alias {a!r} (rule " + ", ".join(
            f"{r.target_id} ({r.pattern!r})" for r in rs) + ")" for a, rs in hit.items())
        raise InvalidState(
            f"model {name!r} has protected {said}: {change} would remove "
            f"{'it' if len(hit) == 1 else 'them'}. Remove or move a protected alias through "
            f"an approval request first (removing it makes one), or have an admin lift the "
            f"rule (metricflow approvals unprotect ID)", field="alias",
            received=", ".join(hit))

    def _alias_changed(self, conn: sa.Connection, model_id: int, alias: str, why: str,
                       actor: str | None, applying: int | None = None) -> None:
        """Pending removals of the alias are invalidated for good: recorded now, so the
        alias coming back to the same version does not revive them."""
        for (rid,) in conn.execute(sa.select(_R.request_id).where(
                _R.model_id == model_id, _R.kind == ALIAS_REMOVAL, _R.target == alias,
                _R.state == PENDING).order_by(_R.request_id)).all():
            if rid != applying:
                self._close(conn, self._request(conn, rid), INVALIDATED, why, actor)

    def _model_rules_go(self, conn: sa.Connection, model_id: int, name: str,
                        actor: str | None) -> None:
        for row in conn.execute(sa.select(protected_targets).where(_P.model_id == model_id)
                                .order_by(_P.target_id)).all():
            self._audit(conn, actor=actor, action="unprotect_target",
                        entity_type="protected_target", entity_id=str(row.target_id),
                        before={"kind": row.kind, "pattern": row.pattern,
                                "approvals_required": row.approvals_required},
                        comment=f"registered model {name!r} deleted", model_id=model_id,
                        model_name=name)

    def unprotect_target(self, target_id: int, *, actor: str | None = None) -> None:
        with self._write() as conn:
            row = conn.execute(sa.select(protected_targets).where(
                _P.target_id == to_int64("target_id", target_id))).first()
            if row is None:
                raise NotFound(f"protected target {target_id} does not exist",
                               field="target_id", received=str(target_id))
            conn.execute(protected_targets.delete().where(_P.target_id == row.target_id))
            self._audit(conn, actor=actor, action="unprotect_target",
                        entity_type="protected_target", entity_id=str(row.target_id),
                        before={"kind": row.kind, "pattern": row.pattern,
                                "approvals_required": row.approvals_required},
                        model_id=row.model_id)

    def list_protected_targets(self, model_name: str | None = None) -> list[ProtectedTarget]:
        """Every rule (global ones and, with `model_name`, that model's)."""
        with self._read() as conn:
            stmt = (sa.select(protected_targets, _M.name)
                    .join(registered_models, _M.model_id == _P.model_id, isouter=True))
            if model_name is not None:
                mid = self._model(conn, model_name).model_id
                stmt = stmt.where(sa.or_(_P.model_id.is_(None), _P.model_id == mid))
            rows = conn.execute(stmt.order_by(_P.target_id)).all()
        return [ProtectedTarget(r.target_id, r.name or "", r.kind, r.pattern,
                                r.approvals_required, r.expiry_s, r.created_by,
                                r.created_at) for r in rows]

    # --------------------------------------------------------------- approvers
    def grant_approver(self, username: str, *, model_name: str | None = None,
                       actor: str | None = None) -> None:
        """Give `username` the APPROVE permission on one model, or on every model."""
        if not isinstance(username, str) or not username or len(username) > 256:
            raise InvalidArgument("username must be 1-256 characters", field="username",
                                  received=str(username)[:80])
        with self._write() as conn:
            mid = self._model(conn, model_name).model_id if model_name else None
            if self._is_approver(conn, username, mid, exact=True):
                return
            conn.execute(approvers.insert().values(model_id=mid, username=username,
                                                   granted_by=actor_name(actor),
                                                   granted_at=now_ms()))
            self._audit(conn, actor=actor, action="grant_approver", entity_type="permission",
                        entity_id=f"{username}@{model_name or '*'}",
                        after={"username": username, "model": model_name or "*",
                               "permission": "APPROVE"}, model_id=mid, model_name=model_name)

    def revoke_approver(self, username: str, *, model_name: str | None = None,
                        actor: str | None = None) -> None:
        with self._write() as conn:
            mid = self._model(conn, model_name).model_id if model_name else None
            scope = _AP.model_id.is_(None) if mid is None else _AP.model_id == mid
            n = conn.execute(approvers.delete().where(_AP.username == username, scope)).rowcount
            if not n:
                raise NotFound(f"{username!r} holds no APPROVE grant on "
                               f"{model_name or 'every model'}", field="username",
                               received=username)
            self._audit(conn, actor=actor, action="revoke_approver", entity_type="permission",
                        entity_id=f"{username}@{model_name or '*'}",
                        before={"username": username, "model": model_name or "*",
                                "permission": "APPROVE"}, model_id=mid, model_name=model_name)

    def list_approvers(self, model_name: str | None = None) -> list[tuple[str, str]]:
        """(username, model name or "*") of every APPROVE grant."""
        with self._read() as conn:
            stmt = (sa.select(_AP.username, _M.name)
                    .join(registered_models, _M.model_id == _AP.model_id, isouter=True))
            if model_name is not None:
                mid = self._model(conn, model_name).model_id
                stmt = stmt.where(sa.or_(_AP.model_id.is_(None), _AP.model_id == mid))
            return [(r.username, r.name or "*")
                    for r in conn.execute(stmt.order_by(_AP.username, _AP.grant_id))]

    def _is_approver(self, conn: sa.Connection, username: str, model_id: int | None, *,
                     exact: bool = False) -> bool:
        scope = (_AP.model_id.is_(None) if model_id is None else _AP.model_id == model_id)
        if not exact and model_id is not None:
            scope = sa.or_(_AP.model_id.is_(None), _AP.model_id == model_id)
        return conn.execute(sa.select(_AP.grant_id).where(_AP.username == username, scope)
                            .limit(1)).first() is not None

    # ------------------------------------------------------------- transitions
    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False, *,
                                       comment: str = "", expected_version: int | None = None,
                                       actor: str | None = None) -> ModelVersion:
        """A stage transition, checked and applied in one transaction: a protected
        stage creates a request instead (ApprovalRequired); policies must pass."""
        canonical = check_stage(stage)
        if archive_existing_versions and canonical not in (STAGE_STAGING, STAGE_PRODUCTION):
            raise InvalidArgument("archive_existing_versions is only allowed when moving to "
                                  f"Staging or Production, not {canonical}",
                                  field="archive_existing_versions")
        if self._config.require_transition_comment and not (comment or "").strip():
            raise InvalidArgument("this registry requires a comment on every stage "
                                  "transition", field="comment")
        v = check_version(version)

        def apply(conn: sa.Connection) -> ModelVersion:
            return self._update_version(  # type: ignore[attr-defined,no-any-return]
                name, v, "transition_model_version_stage", actor, expected_version,
                {"current_stage": canonical}, comment=comment,
                archive_stage=canonical if archive_existing_versions else None, conn=conn)
        out = self._gated(name, v, STAGE, canonical, archive_existing_versions, comment,
                          actor, apply)
        assert isinstance(out, ModelVersion)
        return out

    def set_registered_model_alias(self, name: str, alias: str, version: str | int, *,
                                   actor: str | None = None) -> None:
        """Point an alias, checked and applied in one transaction: a protected alias
        creates a request instead (ApprovalRequired); policies must pass."""
        check_alias(alias)
        v = check_version(version)
        self._gated(name, v, ALIAS, alias, False, "", actor,
                    lambda conn: self._set_alias_in(  # type: ignore[attr-defined]
                        conn, name, alias, v, actor))

    def delete_registered_model_alias(self, name: str, alias: str, *,
                                      actor: str | None = None) -> None:
        """Remove an alias, checked and applied in one transaction: a protected alias
        makes a removal request instead (ApprovalRequired)."""
        made: ApprovalRequest | None = None
        with self._write() as conn:
            model = self._model(conn, name, lock=True)
            old = self._alias_version(conn, model.model_id, name, alias)  # type: ignore[attr-defined]
            protected = protection(conn, model.model_id, ALIAS, alias)
            if protected is None:
                self._delete_alias_in(conn, model.model_id, name, alias,  # type: ignore[attr-defined]
                                      old, actor)
                return
            mv = self._version(conn, model, old, lock=True)
            made = self._make_request(conn, model, mv, ALIAS_REMOVAL, alias, False, "",
                                      actor, protected)
        raise ApprovalRequired(made)

    def _gated(self, name: str, v: int, kind: str, target: str, archive: bool, comment: str,
               actor: str | None, apply: Callable[[sa.Connection], Any]) -> Any:
        """Protection and policies checked in the change's own transaction, on the
        primary, with the model row locked: no rule or version can change between the
        check and the change. A protected target commits a request instead, then
        raises ApprovalRequired."""
        made: ApprovalRequest | None = None
        with self._write() as conn:
            model = self._model(conn, name, lock=True)
            mv = self._version(conn, model, v, lock=True)
            protected = protection(conn, model.model_id, kind, target)
            if protected is None:
                self._enforce_policies(conn, mv, kind, target)
                return apply(conn)
            made = self._make_request(conn, model, mv, kind, target, archive, comment,
                                      actor, protected)
        raise ApprovalRequired(made)

    # ----------------------------------------------------------------- requests
    def request_transition(self, name: str, version: str | int, kind: str, target: str, *,
                           archive_existing: bool = False, comment: str = "",
                           actor: str | None = None) -> ApprovalRequest:
        """Ask for a transition to a protected target, or (kind ALIAS_REMOVAL) for the
        removal of a protected alias from `version`; returns the pending request."""
        _check_kind(kind, removal=True)
        target = check_stage(target) if kind == STAGE else check_alias(target)
        _check_comment(comment)
        if not comment.strip():
            raise InvalidArgument("a request needs a comment (why this "
                                  + ("alias should be removed)" if kind == ALIAS_REMOVAL
                                     else "version should move)"), field="comment")
        if archive_existing and kind == ALIAS_REMOVAL:
            raise InvalidArgument("archive_existing applies to stage transitions, not to "
                                  "an alias removal", field="archive_existing")
        v = check_version(version)
        with self._write() as conn:
            model = self._model(conn, name, lock=True)
            mv = self._version(conn, model, v)
            if kind == ALIAS_REMOVAL:
                points_to = self._alias_version(conn, model.model_id, name, target)  # type: ignore[attr-defined]
                if points_to != v:
                    raise InvalidArgument(f"alias {target!r} of model {name!r} points to "
                                          f"version {points_to}, not {v}", field="version",
                                          received=str(v))
            protected = protection(conn, model.model_id, _rule_kind(kind), target)
            if protected is None:
                raise InvalidArgument(f"{'alias' if kind == ALIAS_REMOVAL else kind} "
                                      f"{target!r} of model {name!r} is not protected: "
                                      f"{'remove' if kind == ALIAS_REMOVAL else 'transition'} "
                                      "it directly", field="target", received=target)
            return self._make_request(conn, model, mv, kind, target, archive_existing,
                                      comment, actor, protected)

    def _make_request(self, conn: sa.Connection, model: Any, mv: ModelVersion, kind: str,
                      target: str, archive: bool, comment: str, actor: str | None,
                      protected: tuple[int, int | None]) -> ApprovalRequest:
        _check_comment(comment)
        if not comment.strip():  # a blocked change through an API without a comment
            comment = (f"removal of alias {target!r} asked for by {actor_name(actor)}"
                       if kind == ALIAS_REMOVAL else
                       f"{kind} {target!r} asked for by a transition of {actor_name(actor)}")
        need, expiry = protected
        # The same change asked for again by the same person while it is still open
        # names the open request instead of making another one to vote on.
        for open_id in conn.execute(sa.select(_R.request_id).where(
                _R.model_id == model.model_id, _R.version == int(mv.version),
                _R.kind == kind, _R.target == target, _R.state == PENDING,
                _R.requester == actor_name(actor), _R.archive_existing == bool(archive))):
            same = self._effective(conn, self._request(conn, open_id[0]))
            if same.state == PENDING:
                return same
        ts = now_ms()
        rid = inserted_id(conn.execute(approval_requests.insert().values(
            model_id=model.model_id, model_name=model.name, version=int(mv.version),
            kind=kind, target=target, archive_existing=bool(archive), state=PENDING,
            requester=actor_name(actor), comment=comment or "", approvals_required=need,
            created_at=ts, expires_at=ts + expiry * 1000 if expiry else None,
            version_row_version=mv.row_version, model_last_version=model.last_version)))
        req = self._request(conn, rid)
        self._audit(conn, actor=actor, action="request_approval",
                    entity_type="approval_request", entity_id=str(rid),
                    after=_snapshot(req), comment=comment, model_id=model.model_id,
                    model_name=model.name, version=int(mv.version), ts=ts)
        self._event(conn, _events.APPROVAL_REQUESTED, f"model:{model.name}", _snapshot(req), actor)
        return req

    def get_approval_request(self, request_id: int) -> ApprovalRequest:
        with self._read() as conn:
            return self._effective(conn, self._request(conn, request_id))

    def list_approval_requests(self, *, state: str | None = None,
                               model_name: str | None = None,
                               max_results: int = 100,
                               visible: Callable[[str | None], bool] | None = None
                               ) -> list[ApprovalRequest]:
        """Requests, newest first; `state` filters on the effective state (a pending
        request past its expiry or whose version changed lists as expired/invalidated).
        `visible(model name now, None if deleted)` drops requests the caller may not see
        before counting toward max_results, so a page is full whenever enough visible
        requests exist."""
        check_max_results(max_results, 10_000)
        if state is not None and state not in REQUEST_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(REQUEST_STATES)}, got "
                                  f"{state!r}", field="state", received=str(state)[:40])
        # The model is matched, and `visible` asked, by the name the request's model has
        # now (by id): a renamed model's requests go with it, a new model that took the
        # old name sees none of them, and a deleted model's requests are visible(None).
        stmt = (sa.select(_R.request_id, _M.name)
                .join(registered_models, _same_model(), isouter=True))
        if state in (APPLIED, REJECTED):
            stmt = stmt.where(_R.state == state)
        elif state is not None:  # expired/invalidated may still be stored as pending
            stmt = stmt.where(_R.state.in_(sorted({state, PENDING})))
        stmt = stmt.order_by(_R.request_id.desc())
        out: list[ApprovalRequest] = []
        with self._read() as conn:
            if model_name is not None:
                mid = conn.execute(sa.select(_M.model_id)
                                   .where(_M.name == model_name)).scalar()
                # no model has the name now: a deleted model's requests (admins only get
                # here: everyone else needs READ on a model of that name)
                stmt = stmt.where(_same_model() if mid is not None
                                  else _R.model_name == model_name)
                if mid is not None:
                    stmt = stmt.where(_M.model_id == mid)
            if state in (None, APPLIED, REJECTED) and visible is None:
                stmt = stmt.limit(max_results)  # the stored state is the answer
            for rid, model in conn.execute(stmt):
                if visible is not None and not visible(model):
                    continue
                req = self._effective(conn, self._request(conn, rid))
                if state is None or req.state == state:
                    out.append(req)
                    if len(out) >= max_results:
                        break
            return out

    def approve_request(self, request_id: int, *, comment: str = "",
                        actor: str | None = None) -> ApprovalRequest:
        """Approve; the last required approval applies the transition atomically."""
        return self._vote(request_id, "approve", comment, actor)

    def reject_request(self, request_id: int, *, comment: str = "",
                       actor: str | None = None) -> ApprovalRequest:
        """Reject: the request is closed and nothing is applied."""
        return self._vote(request_id, "reject", comment, actor)

    def _vote(self, request_id: int, decision: str, comment: str,
              actor: str | None) -> ApprovalRequest:
        _check_comment(comment)
        if not actor:
            raise PermissionDenied("approvals need an authenticated caller: anonymous votes "
                                   "cannot be told apart", field="actor")
        closed: ApprovalRequest | None = None
        with self._write() as conn:
            req = self._request(conn, request_id, lock=True)
            if req.state != PENDING:
                raise InvalidState(f"approval request {request_id} is {req.state}, not "
                                   "pending", state=req.state)
            eff = self._effective(conn, req)
            if eff.state != PENDING:  # recorded now; the error is raised after commit
                closed = self._close(conn, req, eff.state, eff.resolution, actor)
            else:
                mid = conn.execute(sa.select(_M.model_id).where(
                    _M.name == req.model_name)).scalar()
                if actor == req.requester:
                    raise PermissionDenied(f"{actor!r} made approval request {request_id} and "
                                           "cannot vote on it (four eyes)", field="actor")
                if not self._is_approver(conn, actor, mid):
                    raise PermissionDenied(f"{actor!r} lacks the APPROVE permission on model "
                                           f"{req.model_name!r}", field="actor")
                if any(v.approver == actor for v in req.votes):
                    raise AlreadyExists(f"{actor!r} already voted on approval request "
                                        f"{request_id}", field="actor")
                if not comment.strip():  # every step of the record says why
                    raise InvalidArgument(f"a vote needs a comment (why you {decision} "
                                          f"request {request_id})", field="comment")
                try:
                    with conn.begin_nested():
                        conn.execute(approval_votes.insert().values(
                            request_id=req.request_id, approver=actor, decision=decision,
                            comment=comment or "", ts=now_ms()))
                except sa.exc.IntegrityError:
                    raise AlreadyExists(f"{actor!r} already voted on approval request "
                                        f"{request_id}", field="actor") from None
                req = self._request(conn, request_id)
                # A vote counts while its approver still holds APPROVE (a grant revoked
                # after voting takes the vote with it).
                counted = sum(1 for x in req.votes if x.decision == "approve"
                              and self._is_approver(conn, x.approver, mid))
                # A rule made stricter since the request counts: the most any rule asks
                # for now, or what the request was made with.
                strictest = (protection(conn, mid, _rule_kind(req.kind), req.target)
                             if mid is not None else None)
                if strictest is not None and strictest[0] > req.approvals_required:
                    conn.execute(approval_requests.update().where(
                        _R.request_id == req.request_id).values(
                        approvals_required=strictest[0]))
                    req = self._request(conn, request_id)
                applies = decision == "approve" and counted >= req.approvals_required
                if applies and req.kind != ALIAS_REMOVAL:  # policies first (a removal
                    # promotes nothing): no audit append (PostgreSQL: the chain's lock) is
                    # held while they read the data plane
                    model = self._model(conn, req.model_name, lock=True)
                    self._enforce_policies(conn, self._version(
                        conn, model, int(req.version), lock=True), req.kind, req.target)
                self._audit(conn, actor=actor, action=f"{decision}_request",
                            entity_type="approval_request", entity_id=str(request_id),
                            after={"decision": decision}, comment=comment, model_id=mid,
                            model_name=req.model_name, version=int(req.version))
                if decision == "reject":
                    req = self._close(conn, req, REJECTED, f"rejected by {actor}", actor)
                elif applies:
                    req = self._apply(conn, req, actor)
                self._event(conn, _events.APPROVAL_DECIDED, f"model:{req.model_name}",
                            {**_snapshot(req), "decision": decision, "approver": actor},
                            actor)
                return req
        assert closed is not None
        raise InvalidState(f"approval request {request_id} is {closed.state}: "
                           f"{closed.resolution}", state=closed.state)

    def _apply(self, conn: sa.Connection, req: ApprovalRequest,
               actor: str | None) -> ApprovalRequest:
        """Make the change in the last vote's transaction (policies were checked)."""
        comment = f"approval request {req.request_id}: {req.comment}".strip()
        if req.kind == STAGE:
            self._update_version(  # type: ignore[attr-defined]
                req.model_name, req.version, "transition_model_version_stage",
                req.requester, None, {"current_stage": req.target}, comment=comment,
                archive_stage=req.target if req.archive_existing else None, conn=conn)
        elif req.kind == ALIAS_REMOVAL:
            model = self._model(conn, req.model_name, lock=True)
            self._delete_alias_in(conn, model.model_id, req.model_name,  # type: ignore[attr-defined]
                                  req.target, int(req.version), req.requester, comment,
                                  req.request_id)
        else:
            self._set_alias_in(conn, req.model_name, req.target,  # type: ignore[attr-defined]
                               int(req.version), req.requester, comment)
        in_force = ", ".join(f"{p.name} v{p.version}" for p in self._policies(conn))
        return self._close(conn, req, APPLIED,
                           f"applied after {req.approvals} approval(s); policies passed: "
                           f"{in_force or 'none in force'}", actor)

    def _close(self, conn: sa.Connection, req: ApprovalRequest, state: str, why: str,
               actor: str | None) -> ApprovalRequest:
        conn.execute(approval_requests.update().where(_R.request_id == req.request_id)
                     .values(state=state, resolved_at=now_ms(), resolution=why))
        out = self._request(conn, req.request_id)
        mid = conn.execute(sa.select(_R.model_id)
                           .where(_R.request_id == req.request_id)).scalar()
        self._audit(conn, actor=actor, action=f"{state}_request",
                    entity_type="approval_request", entity_id=str(req.request_id),
                    before={"state": req.state}, after=_snapshot(out), comment=why,
                    model_id=mid, model_name=req.model_name, version=int(req.version))
        return out

    def _effective(self, conn: sa.Connection, req: ApprovalRequest) -> ApprovalRequest:
        """The request as it stands now: expired, or invalidated by a changed version."""
        if req.state != PENDING:
            return req
        import dataclasses

        if req.expires_at is not None and now_ms() >= req.expires_at:
            import datetime as dt

            when = dt.datetime.fromtimestamp(req.expires_at / 1000, dt.UTC)
            return dataclasses.replace(req, state=EXPIRED, resolution=(
                f"expired at {when.isoformat(timespec='seconds')} ({req.expires_at} ms)"))
        row = conn.execute(sa.select(_R.model_id, _R.version_row_version,
                                     _R.model_last_version)
                           .where(_R.request_id == req.request_id)).one()
        model = conn.execute(sa.select(_M.model_id, _M.last_version, _M.creation_time).where(
            _M.name == req.model_name)).first()
        why = ""
        if model is not None and model.model_id == row.model_id \
                and model.creation_time > req.created_at:  # SQLite reuses a deleted id
            why = (f"model {req.model_name!r} was deleted and another model took its name")
        elif model is None or model.model_id != row.model_id:
            now = conn.execute(sa.select(_M.name).where(_M.model_id == row.model_id)).scalar()
            why = (f"model {req.model_name!r} was renamed to {now!r} since the request"
                   if now is not None else f"model {req.model_name!r} was deleted"
                   + (" and another model took its name" if model is not None else ""))
        else:
            rv = conn.execute(sa.select(_V.row_version).where(
                _V.model_id == model.model_id, _V.version == int(req.version))).scalar()
            if rv is None:
                why = f"version {req.version} was deleted"
            elif req.kind == ALIAS_REMOVAL:
                at = conn.execute(sa.select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model.model_id,
                    model_aliases.c.alias == req.target)).scalar()
                if at is None:
                    why = f"alias {req.target!r} was removed since the request"
                elif int(at) != int(req.version):
                    why = f"alias {req.target!r} was moved to version {at} since the request"
            elif rv != row.version_row_version:
                why = f"version {req.version} changed since the request"
            elif model.last_version != row.model_last_version:
                why = (f"a newer version ({model.last_version}) was registered since the "
                       "request")
        return dataclasses.replace(req, state=INVALIDATED, resolution=why) if why else req

    def _request(self, conn: sa.Connection, request_id: int, *,
                 lock: bool = False) -> ApprovalRequest:
        rid = check_request_id(request_id)
        stmt = sa.select(approval_requests).where(_R.request_id == rid)
        r = conn.execute(self._lock(stmt) if lock else stmt).first()
        if r is None:
            raise NotFound(f"approval request {rid} does not exist", field="request_id",
                           received=str(rid))
        votes = tuple(Vote(v.approver, v.decision, v.comment, v.ts) for v in conn.execute(
            sa.select(approval_votes).where(_VT.request_id == rid).order_by(_VT.ts,
                                                                             _VT.approver)))
        return ApprovalRequest(
            request_id=r.request_id, model_name=r.model_name, version=str(r.version),
            kind=r.kind, target=r.target, archive_existing=bool(r.archive_existing),
            state=r.state, requester=r.requester, comment=r.comment,
            approvals_required=r.approvals_required, created_at=r.created_at,
            expires_at=r.expires_at, resolved_at=r.resolved_at,
            resolution=r.resolution or "", votes=votes)


def _snapshot(req: ApprovalRequest) -> dict[str, Any]:
    return {"request_id": req.request_id, "model": req.model_name, "version": req.version,
            "kind": req.kind, "target": req.target, "state": req.state,
            "requester": req.requester, "approvals": req.approvals,
            "approvals_required": req.approvals_required}



def _same_model() -> sa.ColumnElement[bool]:
    """A request's model by id, and only a model created before the request: SQLite
    gives a deleted model's id to the next model created, which must not inherit the
    old one's requests (or their comments and votes)."""
    return sa.and_(_M.model_id == _R.model_id, _M.creation_time <= _R.created_at)


def model_of_request(engine: sa.Engine, request_id: object) -> tuple[bool, str | None]:
    """(the approval request exists, the name its model has now) for permission checks.

    The model is found by its id, not by the name stored with the request: after a
    rename the request belongs to the renamed model (its owner keeps reading it), and a
    new model that took the old name gets no access to it. The name is None when the
    model was deleted."""
    rid = check_request_id(request_id)
    with engine.connect() as conn:
        row = conn.execute(sa.select(_R.request_id, _M.name)
                           .join(registered_models, _same_model(), isouter=True)
                           .where(_R.request_id == rid)).first()
    if row is None:
        return False, None
    return True, row.name


def check_request_id(request_id: object) -> int:
    """An approval request id: an integer in int64 (InvalidArgument naming request_id)."""
    if isinstance(request_id, str):
        text = request_id
        try:
            request_id = int(text.strip())
        except ValueError:
            raise InvalidArgument(f"request_id must be an integer, got {text!r:.40}",
                                  field="request_id", received=text[:40]) from None
    return to_int64("request_id", request_id)
