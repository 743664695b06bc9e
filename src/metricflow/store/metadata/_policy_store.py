"""Policies in the control plane: versioned documents, checked before transitions.

A policy is a named TOML or YAML document. Every `put_policy` adds a version (the
newest non-deleted version of each name is in force); nothing is overwritten.
The store does not interpret the documents: it hands the ones in force, with the
version, its target and its run's datasets, to the `PolicyGate` the process was
built with (`metricflow.governance`), which reads the data plane and the artifact
store. With policies in force but no gate, transitions fail closed.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from metricflow.entities import ModelVersion
from metricflow.errors import InvalidArgument, InvalidState, NotFound
from metricflow.store.metadata._base import actor_name, now_ms
from metricflow.store.metadata._gov_types import (
    ALIAS,
    STAGE,
    GateSubject,
    Policy,
    PolicyViolation,
    Violation,
)
from metricflow.store.metadata._lineage import LineageMixin
from metricflow.store.metadata._tables import policies
from metricflow.store.metadata._validate import check_version

_PO = policies
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
MAX_POLICY_SOURCE = 100_000
FORMATS = ("toml", "yaml")


def _policy(r: sa.Row) -> Policy:  # type: ignore[type-arg]
    return Policy(r.name, r.version, r.format, r.source, bool(r.deleted), r.created_by,
                  r.created_at)


class PolicyMixin(LineageMixin):
    """Versioned policy documents and the check before a transition applies."""

    def put_policy(self, name: str, source: str, *, format: str = "toml",
                   actor: str | None = None) -> Policy:
        """Store a new version of policy `name` (validated by the caller's gate)."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidArgument("policy name must be 1-256 letters, digits and _.-",
                                  field="name", received=str(name)[:80])
        if format not in FORMATS:
            raise InvalidArgument(f"format must be toml or yaml, got {format!r}",
                                  field="format", received=str(format)[:20])
        if not isinstance(source, str) or len(source) > MAX_POLICY_SOURCE:
            raise InvalidArgument(f"policy source must be a string of at most "
                                  f"{MAX_POLICY_SOURCE} characters", field="source",
                                  limit=MAX_POLICY_SOURCE,
                                  received=len(source) if isinstance(source, str) else None)
        return self._policy_version(name, format, source, False, actor)

    def delete_policy(self, name: str, *, actor: str | None = None) -> Policy:
        """Retire a policy: a deleted version is added; the history stays."""
        current = self.get_policy(name)
        return self._policy_version(name, current.format, current.source, True, actor)

    def _policy_version(self, name: str, format: str, source: str, deleted: bool,
                        actor: str | None) -> Policy:
        ts = now_ms()
        with self._write() as conn:
            last = conn.execute(sa.select(sa.func.max(_PO.c.version))
                                .where(_PO.c.name == name)).scalar() or 0
            conn.execute(sa.insert(_PO).values(name=name, version=last + 1, format=format,
                                               source=source, deleted=deleted,
                                               created_by=actor_name(actor), created_at=ts))
            self._audit(conn, actor=actor,
                        action="delete_policy" if deleted else "put_policy",
                        entity_type="policy", entity_id=name,
                        after={"name": name, "version": last + 1, "format": format,
                               "source": source, "deleted": deleted}, ts=ts)
        return Policy(name, last + 1, format, source, deleted, actor_name(actor), ts)

    def get_policy(self, name: str, version: int | None = None) -> Policy:
        """The newest version of `name` (or the one asked for); NotFound if none or
        the newest is deleted."""
        with self._read() as conn:
            stmt = sa.select(_PO).where(_PO.c.name == name)
            stmt = (stmt.where(_PO.c.version == int(version)) if version is not None
                    else stmt.order_by(_PO.c.version.desc()).limit(1))
            r = conn.execute(stmt).first()
        if r is None or (version is None and r.deleted):
            raise NotFound(f"policy {name!r} does not exist"
                           + (f" at version {version}" if version is not None else ""),
                           field="name", received=name)
        return _policy(r)

    def list_policies(self, *, history: bool = False) -> list[Policy]:
        """Policies in force (or every version of every policy with `history`)."""
        with self._read() as conn:
            return self._policies(conn, history=history)

    def _policies(self, conn: sa.Connection, *, history: bool = False) -> list[Policy]:
        rows = conn.execute(sa.select(_PO).order_by(_PO.c.name, _PO.c.version)).all()
        if history:
            return [_policy(r) for r in rows]
        newest = {r.name: r for r in rows}
        return [_policy(r) for r in newest.values() if not r.deleted]

    def check_policies(self, name: str, version: str | int, *, kind: str = STAGE,
                       target: str = "Production") -> list[Violation]:
        """Dry run: the violations a transition of the version to `target` would meet."""
        if kind not in (STAGE, ALIAS):
            raise InvalidArgument(f"kind must be 'stage' or 'alias', got {kind!r}",
                                  field="kind")
        v = check_version(version)
        with self._read() as conn:
            mv = self._version(conn, self._model(conn, name), v)  # type: ignore[attr-defined]
            return self._violations(conn, mv, kind, target)

    def _enforce_policies(self, conn: sa.Connection, mv: ModelVersion, kind: str,
                          target: str) -> None:
        found = self._violations(conn, mv, kind, target)
        if found:
            raise PolicyViolation(f"moving model {mv.name!r} version {mv.version} to {kind} "
                                  f"{target!r}", found)

    def _violations(self, conn: sa.Connection, mv: ModelVersion, kind: str,
                    target: str) -> list[Violation]:
        docs = self._policies(conn)
        if not docs:
            return []
        gate = self._config.policy_gate
        if gate is None:
            raise InvalidState(f"{len(docs)} polic{'y is' if len(docs) == 1 else 'ies are'} "
                               "in force but this process has no policy evaluator "
                               "(open the store through the server, which builds one)")
        subject = GateSubject(mv, kind, target, self._datasets_of(conn, mv.run_id),
                              now_ms())
        return list(gate(subject, docs))

