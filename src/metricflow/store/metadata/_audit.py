"""The audit log: queries (per model, user, experiment) and entries for changes made
outside a control-plane transaction. Every write goes through `_chain.append_audit`."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from metricflow.entities import AuditEntry
from metricflow.store.metadata._base import StoreBase, actor_name
from metricflow.store.metadata._chain import append_audit_many
from metricflow.store.metadata._paging import decode_token, encode_token
from metricflow.store.metadata._tables import audit_log, registered_models
from metricflow.store.metadata._validate import check_max_results

_A = audit_log.c


def since_created(model_id: Any) -> sa.ColumnElement[bool]:
    """Audit entries of `model_id` (a value or a column of the outer query) from its
    latest `create_registered_model` entry on: SQLite gives a deleted model's id to the
    next model created, whose history must not include the old one's. A model with no
    create entry (older data) keeps all of its entries."""
    created = sa.alias(audit_log, "created")
    first = (sa.select(sa.func.coalesce(sa.func.max(created.c.id), 0))
             .where(created.c.model_id == model_id,
                    created.c.action == "create_registered_model")
             .scalar_subquery())
    return sa.and_(_A.model_id == model_id, _A.id >= first)


class AuditMixin(StoreBase):
    """Read side of the audit log; writes happen inside each change's transaction
    (`record_audit` and `record_audit_many` are the exception: entries in a transaction
    of their own)."""

    def search_audit_log(self, *, model_name: str | None = None, actor: str | None = None,
                         experiment_id: str | None = None, action: str | None = None,
                         max_results: int = 1000, page_token: str | None = None,
                         current_model_only: bool = False
                         ) -> tuple[list[AuditEntry], str | None]:
        """Audit entries, oldest first, filtered by model, actor, experiment and action.

        A model is matched through its surrogate id, so its history survives renames
        and deletion: entries of every model that ever had `model_name` are returned.
        `current_model_only`: only the entries of the model that has `model_name` now
        (by its id, so its history from before a rename too), none if no model has it:
        what a caller whose permission was checked on that model may see (a model that
        had the name before it was renamed or deleted is someone else's).
        """
        check_max_results(max_results, 10_000)
        conds: list[sa.ColumnElement[bool]] = []
        offset = decode_token(page_token)
        with self._read() as conn:
            if model_name is not None and current_model_only:
                mid = conn.execute(sa.select(registered_models.c.model_id).where(
                    registered_models.c.name == model_name)).scalar()
                conds.append(since_created(mid) if mid is not None else sa.false())
            elif model_name is not None:
                # Every model that ever carried this name (renames keep the model id).
                ids = sa.select(_A.model_id).where(_A.model_name == model_name,
                                                   _A.model_id.is_not(None))
                conds.append(sa.or_(_A.model_id.in_(ids), _A.model_name == model_name))
            if actor is not None:
                conds.append(_A.actor == actor)
            if experiment_id is not None:
                conds.append(sa.and_(_A.entity_type == "experiment",
                                     _A.entity_id == str(experiment_id)))
            if action is not None:
                conds.append(_A.action == action)
            rows = conn.execute(sa.select(audit_log).where(*conds).order_by(_A.id)
                                .offset(offset).limit(max_results + 1)).all()
        entries = [AuditEntry(
            id=r.id, timestamp=r.ts, actor=r.actor, action=r.action,
            entity_type=r.entity_type, entity_id=r.entity_id,
            before=json.loads(r.before_json) if r.before_json else None,
            after=json.loads(r.after_json) if r.after_json else None,
            comment=r.comment or "", model_name=r.model_name or "",
            version=str(r.version) if r.version is not None else "",
        ) for r in rows[:max_results]]
        more = len(rows) > max_results
        return entries, encode_token(offset + max_results) if more else None

    def record_audit(self, *, actor: str | None, action: str, entity_type: str,
                     entity_id: str, before: Any = None, after: Any = None,
                     comment: str = "") -> int:
        """Append one audit entry in its own transaction (changes made outside the
        control plane: runs' lifecycle in the data plane); returns its id."""
        return self.record_audit_many([dict(
            actor=actor, action=action, entity_type=entity_type, entity_id=entity_id,
            before=before, after=after, comment=comment)])[0]

    def record_audit_many(self, entries: list[dict[str, Any]]) -> list[int]:
        """Append entries (`record_audit`'s keyword arguments each), in order, in one
        transaction of their own; their ids."""
        with self._write() as conn:
            return append_audit_many(conn, [{**e, "actor": actor_name(e.get("actor"))}
                                            for e in entries])
