"""Registered models on SQL: create, rename, describe, delete, tags, aliases, search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from metricflow import _events
from metricflow.entities import STAGES, ModelVersion, RegisteredModel
from metricflow.errors import AlreadyExists, NotFound
from metricflow.store.metadata._base import inserted_id, now_ms, upsert
from metricflow.store.metadata._filter import compile_filter, parse_order_by
from metricflow.store.metadata._paging import decode_token, encode_token
from metricflow.store.metadata._registry_base import RegistryBase, check_expected
from metricflow.store.metadata._tables import (
    model_aliases,
    model_versions,
    registered_model_tags,
    registered_models,
)
from metricflow.store.metadata._validate import (
    check_alias,
    check_max_results,
    check_model_name_chars,
    check_name,
    check_tag,
    check_tags,
    check_version,
)

_M = registered_models.c
_V = model_versions.c
_ATTRS: dict[str, tuple[sa.ColumnElement, type]] = {
    "name": (_M.name, str), "creation_timestamp": (_M.creation_time, int),
    "last_updated_timestamp": (_M.last_update_time, int),
}
_ORDER = {"name": _M.name, "creation_timestamp": _M.creation_time,
          "last_updated_timestamp": _M.last_update_time, "timestamp": _M.last_update_time}


def _duplicate(name: str) -> AlreadyExists:
    return AlreadyExists(f"a registered model named {name!r} already exists",
                         field="name", received=name)


class ModelsMixin(RegistryBase):
    """The registered-model part of `MetadataStore`."""

    def _load_models(self, conn: sa.Connection, *where: sa.ColumnElement[bool],
                     order: Sequence[sa.ColumnElement] = (), offset: int = 0,
                     limit: int | None = None) -> list[RegisteredModel]:
        stmt = sa.select(registered_models).where(*where).order_by(*order, _M.name)
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        rows = conn.execute(stmt).all()
        ids = [r.model_id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        aliases: dict[int, dict[str, str]] = {i: {} for i in ids}
        latest: dict[int, dict[str, ModelVersion]] = {i: {} for i in ids}
        if ids:
            T, A = registered_model_tags.c, model_aliases.c
            for t in conn.execute(sa.select(registered_model_tags).where(T.model_id.in_(ids))):
                tags[t.model_id][t.key] = t.value
            for a in conn.execute(sa.select(model_aliases).where(A.model_id.in_(ids))):
                aliases[a.model_id][a.alias] = str(a.version)
            top = (sa.select(_V.model_id, _V.current_stage, sa.func.max(_V.version).label("v"))
                   .where(_V.model_id.in_(ids))
                   .group_by(_V.model_id, _V.current_stage).subquery())
            id_of = {r.name: r.model_id for r in rows}
            for mv in self._versions(conn, sa.tuple_(_V.model_id, _V.version).in_(
                    sa.select(top.c.model_id, top.c.v))):
                latest[id_of[mv.name]][mv.current_stage] = mv
        return [RegisteredModel(
            name=r.name, description=r.description, creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_update_time, tags=tags[r.model_id],
            aliases=aliases[r.model_id], row_version=r.row_version,
            latest_versions=tuple(latest[r.model_id][s] for s in STAGES
                                  if s in latest[r.model_id]),
        ) for r in rows]

    def _get_model(self, conn: sa.Connection, name: str) -> RegisteredModel:
        found = self._load_models(conn, _M.name == name)
        if not found:
            raise NotFound(f"registered model {name!r} does not exist", field="name",
                           received=name)
        return found[0]

    def _snapshot(self, conn: sa.Connection, name: str) -> dict[str, Any]:
        m = self._get_model(conn, name)
        return {"name": m.name, "description": m.description, "tags": dict(m.tags),
                "aliases": dict(m.aliases), "row_version": m.row_version}

    def create_registered_model(self, name: str, tags: Mapping[str, str] | None = None,
                                description: str = "", *,
                                actor: str | None = None) -> RegisteredModel:
        """Create a model; AlreadyExists if the name is taken."""
        check_name("registered model name", name)
        check_model_name_chars(name)
        clean = check_tags("registered model tag", tags)
        ts = now_ms()
        try:
            with self._write() as conn:
                if conn.execute(sa.select(_M.model_id).where(_M.name == name)).first():
                    raise _duplicate(name)
                mid = inserted_id(conn.execute(registered_models.insert().values(
                    name=name, description=description or "", creation_time=ts,
                    last_update_time=ts, last_version=0, row_version=1)))
                if clean:
                    conn.execute(registered_model_tags.insert(), [
                        {"model_id": mid, "key": k, "value": v} for k, v in clean.items()])
                after = self._snapshot(conn, name)
                self._audit(conn, actor=actor, action="create_registered_model",
                            entity_type="registered_model", entity_id=name, after=after,
                            model_id=mid, model_name=name, ts=ts)
                self._event(conn, _events.REGISTERED_MODEL_CREATED, f"model:{name}", {
                    "name": name, "tags": dict(clean), "description": description or None},
                    actor)
                return self._get_model(conn, name)
        except sa.exc.IntegrityError as e:
            raise _duplicate(name) from e

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases and latest version per stage."""
        with self._read() as conn:
            return self._get_model(conn, name)

    def _update_model(self, name: str, action: str, actor: str | None,
                      expected_version: int | None, values: dict[str, Any],
                      comment: str = "") -> RegisteredModel:
        """Change model fields under optimistic concurrency and audit it."""
        new_name = values.get("name", name)
        try:
            with self._write() as conn:
                row = self._model(conn, name, lock=True)
                check_expected(f"registered model {name!r}", row.row_version, expected_version)
                if new_name != name:  # models:/<name>@<alias> would point nowhere
                    self._check_alias_removal(conn, row.model_id, name,
                                              self._aliases_of(conn, row.model_id),
                                              f"renaming the model to {new_name!r}")
                before = self._snapshot(conn, name)
                conn.execute(registered_models.update().where(_M.model_id == row.model_id)
                             .values(**values, row_version=row.row_version + 1,
                                     last_update_time=now_ms()))
                after = self._snapshot(conn, new_name)
                self._audit(conn, actor=actor, action=action, entity_type="registered_model",
                            entity_id=new_name, before=before, after=after, comment=comment,
                            model_id=row.model_id, model_name=new_name)
                return self._get_model(conn, new_name)
        except sa.exc.IntegrityError as e:
            raise _duplicate(new_name) from e

    def rename_registered_model(self, name: str, new_name: str, *,
                                expected_version: int | None = None,
                                actor: str | None = None) -> RegisteredModel:
        """Rename a model; its versions, aliases and audit history follow it."""
        check_name("registered model name", new_name)
        check_model_name_chars(new_name)
        return self._update_model(name, "rename_registered_model", actor, expected_version,
                                  {"name": new_name})

    def update_registered_model(self, name: str, description: str, *,
                                expected_version: int | None = None,
                                actor: str | None = None) -> RegisteredModel:
        """Set the description; Conflict if `expected_version` is stale."""
        return self._update_model(name, "update_registered_model", actor, expected_version,
                                  {"description": description or ""})

    def delete_registered_model(self, name: str, *, expected_version: int | None = None,
                                actor: str | None = None) -> None:
        """Delete a model with all its versions, tags and aliases (the audit log stays)."""
        with self._write() as conn:
            row = self._model(conn, name, lock=True)
            check_expected(f"registered model {name!r}", row.row_version, expected_version)
            self._check_alias_removal(conn, row.model_id, name,
                                      self._aliases_of(conn, row.model_id),
                                      "deleting the model")
            before = self._snapshot(conn, name)
            before["versions"] = [mv.version for mv in self._versions(
                conn, _V.model_id == row.model_id)]
            self._model_rules_go(conn, row.model_id, name, actor)
            conn.execute(registered_models.delete().where(_M.model_id == row.model_id))
            self._audit(conn, actor=actor, action="delete_registered_model",
                        entity_type="registered_model", entity_id=name, before=before,
                        model_id=row.model_id, model_name=name)

    def set_registered_model_tag(self, name: str, key: str, value: str, *,
                                 actor: str | None = None) -> None:
        """Set (insert or overwrite) a model tag."""
        check_tag("registered model tag", key, value)
        self._model_tag(name, key, value, actor)

    def delete_registered_model_tag(self, name: str, key: str, *,
                                    actor: str | None = None) -> None:
        """Delete a model tag; NotFound if the model has no such tag."""
        self._model_tag(name, key, None, actor)

    def _model_tag(self, name: str, key: str, value: str | None, actor: str | None) -> None:
        with self._write() as conn:
            row = self._model(conn, name, lock=True)
            before = self._snapshot(conn, name)
            T = registered_model_tags.c
            if value is None:
                if key not in before["tags"]:
                    raise NotFound(f"registered model {name!r} has no tag {key!r}",
                                   field="key", received=key)
                conn.execute(registered_model_tags.delete().where(
                    T.model_id == row.model_id, T.key == key))
            else:
                upsert(conn, registered_model_tags, {"model_id": row.model_id, "key": key},
                       {"value": value})
            conn.execute(registered_models.update().where(_M.model_id == row.model_id)
                         .values(row_version=row.row_version + 1, last_update_time=now_ms()))
            self._audit(conn, actor=actor,
                        action="set_registered_model_tag" if value is not None
                        else "delete_registered_model_tag",
                        entity_type="registered_model", entity_id=name,
                        before={"key": key, "value": before["tags"].get(key)},
                        after={"key": key, "value": value},
                        model_id=row.model_id, model_name=name)

    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] = (), page_token: str | None = None
                                 ) -> tuple[list[RegisteredModel], str | None]:
        """Search by name and tags, ordered and paged."""
        check_max_results(max_results, 1000)
        T = registered_model_tags.c
        conds = compile_filter(
            filter_string, _ATTRS,
            lambda key, cond: sa.exists().where(T.model_id == _M.model_id, T.key == key, cond),
            T.value)
        order = parse_order_by(tuple(order_by), _ORDER)
        offset = decode_token(page_token)
        with self._read() as conn:
            page = self._load_models(conn, *conds, order=order, offset=offset,
                                     limit=max_results + 1)
        more = len(page) > max_results
        return page[:max_results], encode_token(offset + max_results) if more else None

    def set_registered_model_alias(self, name: str, alias: str, version: str | int, *,
                                   actor: str | None = None) -> None:
        """Point `alias` at `version` (moving it if it pointed elsewhere)."""
        check_alias(alias)
        v = check_version(version)
        with self._write() as conn:
            self._set_alias_in(conn, name, alias, v, actor)

    def _set_alias_in(self, conn: sa.Connection, name: str, alias: str, v: int,
                      actor: str | None, comment: str = "") -> None:
        """Point `alias` at version `v` inside the caller's write transaction."""
        row = self._model(conn, name, lock=True)
        self._version(conn, row, v)
        A = model_aliases.c
        old = conn.execute(sa.select(A.version).where(A.model_id == row.model_id,
                                                      A.alias == alias)).scalar()
        upsert(conn, model_aliases, {"model_id": row.model_id, "alias": alias},
               {"version": v})
        if old != v:
            self._alias_changed(conn, row.model_id, alias,
                                f"alias {alias!r} was moved to version {v} since the request",
                                actor)
        self._audit(conn, actor=actor, action="set_registered_model_alias",
                    entity_type="registered_model", entity_id=name,
                    before={"alias": alias, "version": old},
                    after={"alias": alias, "version": v}, comment=comment,
                    model_id=row.model_id, model_name=name, version=v)
        self._event(conn, _events.MODEL_VERSION_ALIAS_CREATED, f"model:{name}",
                    {"name": name, "alias": alias, "version": str(v),
                     "previous_version": None if old is None else str(old)}, actor)

    def delete_registered_model_alias(self, name: str, alias: str, *,
                                      actor: str | None = None) -> None:
        """Remove an alias; NotFound if the model has no such alias. (With approvals, a
        protected alias is removed through a request: ApprovalsMixin overrides this.)"""
        with self._write() as conn:
            row = self._model(conn, name, lock=True)
            old = self._alias_version(conn, row.model_id, name, alias)
            self._delete_alias_in(conn, row.model_id, name, alias, old, actor)

    def _alias_version(self, conn: sa.Connection, model_id: int, name: str,
                       alias: str) -> int:
        """The version `alias` points to; NotFound if the model has no such alias."""
        A = model_aliases.c
        old = conn.execute(sa.select(A.version).where(A.model_id == model_id,
                                                      A.alias == alias)).scalar()
        if old is None:
            raise NotFound(f"registered model {name!r} has no alias {alias!r}",
                           field="alias", received=alias)
        return int(old)

    def _delete_alias_in(self, conn: sa.Connection, model_id: int, name: str, alias: str,
                         old: int, actor: str | None, comment: str = "",
                         applying: int | None = None) -> None:
        A = model_aliases.c
        conn.execute(model_aliases.delete().where(A.model_id == model_id, A.alias == alias))
        self._alias_changed(conn, model_id, alias,
                            f"alias {alias!r} was removed since the request", actor, applying)
        self._audit(conn, actor=actor, action="delete_registered_model_alias",
                    entity_type="registered_model", entity_id=name,
                    before={"alias": alias, "version": old}, after=None, comment=comment,
                    model_id=model_id, model_name=name, version=old)
        self._event(conn, _events.MODEL_VERSION_ALIAS_DELETED, f"model:{name}",
                    {"name": name, "alias": alias, "version": str(old)}, actor)
