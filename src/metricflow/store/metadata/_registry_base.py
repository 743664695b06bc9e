"""Loaders and checks shared by the registered-model and model-version parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from metricflow.entities import ModelVersion
from metricflow.errors import Conflict, NotFound
from metricflow.store.metadata._base import StoreBase
from metricflow.store.metadata._tables import (
    model_aliases,
    model_version_tags,
    model_versions,
    registered_models,
)

_M = registered_models.c
_V = model_versions.c


def check_expected(what: str, current: int, expected: int | None) -> None:
    """Optimistic concurrency: raise Conflict if the object changed since it was read."""
    if expected is not None and expected != current:
        raise Conflict(f"{what} was changed concurrently: expected version {expected}, "
                       f"found {current}; reload it and retry",
                       expected_version=expected, current_version=current)


def version_snapshot(mv: ModelVersion) -> dict[str, Any]:
    """The audited fields of a model version."""
    return {"version": mv.version, "source": mv.source, "run_id": mv.run_id,
            "description": mv.description, "status": mv.status,
            "current_stage": mv.current_stage, "tags": dict(mv.tags),
            "aliases": list(mv.aliases), "row_version": mv.row_version}


class RegistryBase(StoreBase):
    """Row access for registered models and their versions."""

    def _check_alias_removal(self, conn: sa.Connection, model_id: int, name: str,
                             aliases: Sequence[str], change: str) -> None:
        """Raise if `change` (a direct write) would remove or orphan a protected alias; the
        approvals layer (ApprovalsMixin) knows what is protected. Here: nothing is."""

    def _alias_changed(self, conn: sa.Connection, model_id: int, alias: str, why: str,
                       actor: str | None, applying: int | None = None) -> None:
        """An alias was moved or removed: requests that depended on where it pointed are
        closed (the approvals layer has them; `applying`: the one doing it). Here: none."""

    def _model_rules_go(self, conn: sa.Connection, model_id: int, name: str,
                        actor: str | None) -> None:
        """The model is being deleted: record its own protection rules as lifted (the
        approvals layer has them). Here: there are none."""

    def _aliases_of(self, conn: sa.Connection, model_id: int,
                    version: int | None = None) -> list[str]:
        """The model's aliases (those pointing at `version` if given), sorted."""
        A = model_aliases.c
        q = sa.select(A.alias).where(A.model_id == model_id)
        if version is not None:
            q = q.where(A.version == version)
        return list(conn.execute(q.order_by(A.alias)).scalars().all())

    def _model(self, conn: sa.Connection, name: str, *, lock: bool = False) -> sa.Row[Any]:
        """The model's row (row-locked on PostgreSQL if `lock`); NotFound otherwise."""
        stmt = sa.select(registered_models).where(_M.name == name)
        row = conn.execute(self._lock(stmt) if lock else stmt).first()
        if row is None:
            raise NotFound(f"registered model {name!r} does not exist", field="name",
                           received=name)
        return row

    def _versions(self, conn: sa.Connection, *where: sa.ColumnElement[bool],
                  order: Sequence[sa.ColumnElement] = (), offset: int = 0,
                  limit: int | None = None) -> list[ModelVersion]:
        stmt = (sa.select(model_versions, _M.name)
                .join(registered_models, _M.model_id == _V.model_id)
                .where(*where).order_by(*order, _M.name, _V.version.desc()))
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        rows = conn.execute(stmt).all()
        if not rows:
            return []
        keys = {(r.model_id, r.version) for r in rows}
        model_ids = list({r.model_id for r in rows})
        tags: dict[tuple[int, int], dict[str, str]] = {k: {} for k in keys}
        aliases: dict[tuple[int, int], list[str]] = {k: [] for k in keys}
        T, A = model_version_tags.c, model_aliases.c
        for t in conn.execute(sa.select(model_version_tags).where(T.model_id.in_(model_ids))):
            if (t.model_id, t.version) in tags:
                tags[(t.model_id, t.version)][t.key] = t.value
        for a in conn.execute(sa.select(model_aliases).where(A.model_id.in_(model_ids))
                              .order_by(A.alias)):
            if (a.model_id, a.version) in aliases:
                aliases[(a.model_id, a.version)].append(a.alias)
        return [ModelVersion(
            name=r.name, version=str(r.version), source=r.source, run_id=r.run_id,
            description=r.description, status=r.status, status_message=r.status_message,
            current_stage=r.current_stage, creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_update_time, tags=tags[(r.model_id, r.version)],
            aliases=tuple(aliases[(r.model_id, r.version)]), user_id=r.user_id,
            run_link=r.run_link, row_version=r.row_version,
        ) for r in rows]

    def _version(self, conn: sa.Connection, model: sa.Row[Any], version: int,
                 *, lock: bool = False) -> ModelVersion:
        """One version of `model`; NotFound if it does not exist."""
        if lock and self._pg:
            conn.execute(sa.select(_V.version).where(_V.model_id == model.model_id,
                                                     _V.version == version)
                         .with_for_update())
        found = self._versions(conn, _V.model_id == model.model_id, _V.version == version)
        if not found:
            raise NotFound(f"model {model.name!r} has no version {version}",
                           field="version", received=str(version))
        return found[0]
