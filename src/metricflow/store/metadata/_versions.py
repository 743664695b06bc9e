"""Model versions on SQL: gap-free numbering, stages, tags, aliases, URI resolution.

Version numbers come from a per-model counter (`registered_models.last_version`)
incremented in the same transaction as the insert, while the model row is
locked (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE holds the
database write lock). Concurrent creators therefore queue on the counter, and a
rolled-back insert also rolls back its increment: no gaps, no duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from metricflow import _events
from metricflow.entities import (
    STAGE_ARCHIVED,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    STAGES,
    STATUS_READY,
    ModelVersion,
)
from metricflow.errors import InvalidArgument, InvalidState, NotFound
from metricflow.store.metadata._base import now_ms, upsert
from metricflow.store.metadata._filter import compile_filter, parse_order_by
from metricflow.store.metadata._paging import decode_token, encode_token
from metricflow.store.metadata._registry_base import (
    RegistryBase,
    check_expected,
    version_snapshot,
)
from metricflow.store.metadata._tables import (
    model_aliases,
    model_version_tags,
    model_versions,
    registered_models,
)
from metricflow.store.metadata._uris import parse_model_uri, parse_runs_uri
from metricflow.store.metadata._validate import (
    MAX_SOURCE,
    check_max_results,
    check_stage,
    check_tag,
    check_tags,
    check_version,
)

_LOGGED_MODEL_SOURCE = re.compile(r"^models:/m-[0-9a-f]{32}(?:/|$)")
_M = registered_models.c
_V = model_versions.c
_ATTRS: dict[str, tuple[sa.ColumnElement, type]] = {
    "name": (_M.name, str), "version_number": (_V.version, int), "run_id": (_V.run_id, str),
    "source_path": (_V.source, str), "source": (_V.source, str),
    "current_stage": (_V.current_stage, str), "status": (_V.status, str),
    "creation_timestamp": (_V.creation_time, int),
    "last_updated_timestamp": (_V.last_update_time, int),
}
_ORDER = {"name": _M.name, "version_number": _V.version,
          "creation_timestamp": _V.creation_time, "last_updated_timestamp": _V.last_update_time}


class VersionsMixin(RegistryBase):
    """The model-version part of `MetadataStore`."""

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: Mapping[str, str] | None = None, description: str = "",
                             run_link: str = "", *, actor: str | None = None
                             ) -> ModelVersion:
        """Register `source` as the next version of model `name`.

        Every source is READY at once, as in MLflow: the files may be on another
        store, or uploaded after the version is registered ("register first,
        upload later", migrations). They are resolved when someone downloads them
        (`get_model_version_download_uri`), which names the missing files then.
        """
        if not isinstance(source, str) or not source:
            raise InvalidArgument("source must be a non-empty URI", field="source")
        if len(source) > MAX_SOURCE:
            raise InvalidArgument(f"source is {len(source)} characters long; the limit is "
                                  f"{MAX_SOURCE}", field="source", limit=MAX_SOURCE)
        if source.startswith("models:/") and not _LOGGED_MODEL_SOURCE.match(source):
            # Pinned as MLflow pins it: `models:/SRC@alias` (or /Stage, /latest) is stored
            # as `models:/SRC/<version>` it names now, so moving the alias later does not
            # change this version; the run link is inherited unless given.
            target = self.resolve_model_uri(source)
            source = f"models:/{target.name}/{target.version}"
            run_id = run_id or target.run_id or None
        runs = parse_runs_uri(source) if source.startswith("runs:/") else None
        if runs is not None and run_id and run_id != runs[0]:
            raise InvalidArgument(f"run_id {run_id!r} does not match the source's run "
                                  f"{runs[0]!r}", field="run_id", received=run_id)
        run_id = run_id or (runs[0] if runs else "")
        clean = check_tags("model version tag", tags)
        ts = now_ms()
        with self._write() as conn:
            model = self._model(conn, name, lock=True)
            v = model.last_version + 1
            conn.execute(registered_models.update().where(_M.model_id == model.model_id)
                         .values(last_version=v, last_update_time=ts))
            conn.execute(model_versions.insert().values(
                model_id=model.model_id, version=v, source=source, run_id=run_id or "",
                run_link=run_link or "", description=description or "",
                status=STATUS_READY, status_message="",
                current_stage=STAGES[0], user_id=actor or "", creation_time=ts,
                last_update_time=ts, row_version=1))
            if clean:
                conn.execute(model_version_tags.insert(), [
                    {"model_id": model.model_id, "version": v, "key": k, "value": val}
                    for k, val in clean.items()])
            mv = self._version(conn, model, v)
            self._audit(conn, actor=actor, action="create_model_version",
                        entity_type="model_version", entity_id=f"{name}/{v}",
                        after=version_snapshot(mv), model_id=model.model_id,
                        model_name=name, version=v, ts=ts)
            self._event(conn, _events.MODEL_VERSION_CREATED, f"model:{name}", {
                "name": name, "version": str(v), "source": source, "run_id": run_id or None,
                "tags": dict(clean), "description": description or None}, actor)
        return mv

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """One version; NotFound if the model or version does not exist."""
        v = check_version(version)
        with self._read() as conn:
            return self._version(conn, self._model(conn, name), v)

    def _update_version(self, name: str, version: str | int, action: str,
                        actor: str | None, expected_version: int | None,
                        values: dict[str, object], comment: str = "",
                        archive_stage: str | None = None,
                        conn: sa.Connection | None = None) -> ModelVersion:
        if conn is None:  # else: inside the caller's transaction (an approval applying)
            with self._write() as c:
                return self._update_version(name, version, action, actor, expected_version,
                                            values, comment, archive_stage, c)
        v = check_version(version)
        model = self._model(conn, name, lock=True)
        before = self._version(conn, model, v, lock=True)
        check_expected(f"model {name!r} version {v}", before.row_version, expected_version)
        if "current_stage" in values and before.status != STATUS_READY:
            raise InvalidState(f"model {name!r} version {v} is {before.status}; only "
                               "READY versions change stage", status=before.status)
        ts = now_ms()
        conn.execute(model_versions.update()
                     .where(_V.model_id == model.model_id, _V.version == v)
                     .values(**values, row_version=before.row_version + 1,
                             last_update_time=ts))
        archived: list[int] = []
        if archive_stage is not None:
            archived = list(conn.execute(sa.select(_V.version).where(
                _V.model_id == model.model_id, _V.version != v,
                _V.current_stage == archive_stage).order_by(_V.version)).scalars())
            if archived:
                conn.execute(model_versions.update().where(
                    _V.model_id == model.model_id, _V.version.in_(archived))
                    .values(current_stage=STAGE_ARCHIVED, last_update_time=ts,
                            row_version=_V.row_version + 1))
        after = self._version(conn, model, v)
        snap = version_snapshot(after)
        if archive_stage is not None:
            snap["archived_versions"] = [str(a) for a in archived]
        self._audit(conn, actor=actor, action=action, entity_type="model_version",
                    entity_id=f"{name}/{v}", before=version_snapshot(before),
                    after=snap, comment=comment, model_id=model.model_id,
                    model_name=name, version=v, ts=ts)
        if "current_stage" in values and after.current_stage != before.current_stage:
            self._event(conn, _events.MODEL_VERSION_STAGE_CHANGED, f"model:{name}", {
                "name": name, "version": str(v), "from_stage": before.current_stage,
                "to_stage": after.current_stage, "comment": comment or None,
                "archived_versions": [str(a) for a in archived]}, actor)
        return after

    def update_model_version(self, name: str, version: str | int, description: str, *,
                             expected_version: int | None = None,
                             actor: str | None = None) -> ModelVersion:
        """Set a version's description; Conflict if `expected_version` is stale."""
        return self._update_version(name, version, "update_model_version", actor,
                                    expected_version, {"description": description or ""})

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False, *,
                                       comment: str = "", expected_version: int | None = None,
                                       actor: str | None = None) -> ModelVersion:
        """Move a version to a stage; optionally archive the stage's other versions.

        The transition, the archiving and the audit record commit together.
        """
        canonical = check_stage(stage)
        if archive_existing_versions and canonical not in (STAGE_STAGING, STAGE_PRODUCTION):
            raise InvalidArgument("archive_existing_versions is only allowed when moving to "
                                  f"Staging or Production, not {canonical}",
                                  field="archive_existing_versions")
        if self._config.require_transition_comment and not (comment or "").strip():
            raise InvalidArgument("this registry requires a comment on every stage "
                                  "transition", field="comment")
        return self._update_version(
            name, version, "transition_model_version_stage", actor, expected_version,
            {"current_stage": canonical}, comment=comment,
            archive_stage=canonical if archive_existing_versions else None)

    def delete_model_version(self, name: str, version: str | int, *,
                             expected_version: int | None = None,
                             actor: str | None = None) -> None:
        """Delete a version and its tags and aliases; its number is never reused."""
        v = check_version(version)
        with self._write() as conn:
            model = self._model(conn, name, lock=True)
            before = self._version(conn, model, v, lock=True)
            check_expected(f"model {name!r} version {v}", before.row_version, expected_version)
            held = self._aliases_of(conn, model.model_id, v)
            self._check_alias_removal(conn, model.model_id, name, held, f"deleting version {v}")
            for t in (model_aliases, model_version_tags):
                conn.execute(t.delete().where(t.c.model_id == model.model_id,
                                              t.c.version == v))
            conn.execute(model_versions.delete().where(_V.model_id == model.model_id,
                                                       _V.version == v))
            self._audit(conn, actor=actor, action="delete_model_version",
                        entity_type="model_version", entity_id=f"{name}/{v}",
                        before=version_snapshot(before), model_id=model.model_id,
                        model_name=name, version=v)
            for alias in held:  # gone with the version: said as a removal would say it
                self._alias_changed(conn, model.model_id, alias,
                                    f"alias {alias!r} was removed since the request", actor)
                self._event(conn, _events.MODEL_VERSION_ALIAS_DELETED, f"model:{name}",
                            {"name": name, "alias": alias, "version": str(v)}, actor)

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str, *,
                              actor: str | None = None) -> None:
        """Set (insert or overwrite) a version tag."""
        check_tag("model version tag", key, value)
        self._version_tag(name, version, key, value, actor)

    def delete_model_version_tag(self, name: str, version: str | int, key: str, *,
                                 actor: str | None = None) -> None:
        """Delete a version tag; NotFound if there is no such tag."""
        self._version_tag(name, version, key, None, actor)

    def _version_tag(self, name: str, version: str | int, key: str, value: str | None,
                     actor: str | None) -> None:
        v = check_version(version)
        with self._write() as conn:
            model = self._model(conn, name, lock=True)
            before = self._version(conn, model, v)
            T = model_version_tags.c
            if value is None:
                if key not in before.tags:
                    raise NotFound(f"model {name!r} version {v} has no tag {key!r}",
                                   field="key", received=key)
                conn.execute(model_version_tags.delete().where(
                    T.model_id == model.model_id, T.version == v, T.key == key))
            else:
                upsert(conn, model_version_tags,
                       {"model_id": model.model_id, "version": v, "key": key},
                       {"value": value})
            self._audit(conn, actor=actor, action="set_model_version_tag" if value is not None
                        else "delete_model_version_tag", entity_type="model_version",
                        entity_id=f"{name}/{v}", before={"key": key,
                                                         "value": before.tags.get(key)},
                        after={"key": key, "value": value}, model_id=model.model_id,
                        model_name=name, version=v)

    def get_latest_versions(self, name: str, stages: Sequence[str] = ()
                            ) -> list[ModelVersion]:
        """The newest version in each of `stages` (default: every stage)."""
        wanted = [check_stage(s) for s in stages] or list(STAGES)
        with self._read() as conn:
            model = self._model(conn, name)
            out = []
            for stage in wanted:
                found = self._versions(conn, _V.model_id == model.model_id,
                                       _V.current_stage == stage, limit=1)
                out.extend(found)
            return out

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at; NotFound if the alias is not set."""
        with self._read() as conn:
            model = self._model(conn, name)
            A = model_aliases.c
            v = conn.execute(sa.select(A.version).where(A.model_id == model.model_id,
                                                        A.alias == alias)).scalar()
            if v is None:
                raise NotFound(f"registered model {name!r} has no alias {alias!r}",
                               field="alias", received=alias)
            return self._version(conn, model, v)

    def search_model_versions(self, filter_string: str = "", max_results: int = 1000,
                              order_by: Sequence[str] = (), page_token: str | None = None
                              ) -> tuple[list[ModelVersion], str | None]:
        """Search versions by model name, run, source, stage, status and tags."""
        check_max_results(max_results, 10_000)
        T = model_version_tags.c
        conds = compile_filter(
            filter_string, _ATTRS,
            lambda key, cond: sa.exists().where(T.model_id == _V.model_id,
                                                T.version == _V.version, T.key == key, cond),
            T.value)
        order = parse_order_by(tuple(order_by), _ORDER)
        offset = decode_token(page_token)
        with self._read() as conn:
            page = self._versions(conn, *conds, order=order, offset=offset,
                                  limit=max_results + 1)
        more = len(page) > max_results
        return page[:max_results], encode_token(offset + max_results) if more else None

    def resolve_model_uri(self, model_uri: str) -> ModelVersion:
        """Resolve `models:/name/<version|stage|latest>` or `models:/name@alias`."""
        name, kind, ref = parse_model_uri(model_uri)
        if kind == "alias":
            return self.get_model_version_by_alias(name, ref)
        if kind == "version":
            return self.get_model_version(name, ref)
        with self._read() as conn:
            model = self._model(conn, name)
            where = [_V.model_id == model.model_id]
            if kind == "stage":
                where.append(_V.current_stage == ref)
            found = self._versions(conn, *where, limit=1)
        if not found:
            raise NotFound(f"{model_uri!r}: model {name!r} has no version "
                           + (f"in stage {ref}" if kind == "stage" else "yet"),
                           field="model_uri", received=model_uri)
        return found[0]

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where the version's files are: its source, resolved if it is `runs:/`.

        A `runs:/` source is checked here, when it is about to be read (with the
        store's `source_exists`): NotFound names the run and path if nothing was
        uploaded there.
        """
        mv = self.get_model_version(name, version)
        check = self._config.source_exists
        if check is not None and mv.source.startswith("runs:/"):
            run_id, path = parse_runs_uri(mv.source)
            if not check(run_id, path):
                raise NotFound(
                    f"Model version {name!r} version {mv.version}: its source {mv.source!r} "
                    f"has no files: nothing was uploaded to run {run_id} at {path!r} (yet). "
                    "Upload the model's files there, or register a source that holds them",
                    field="source", received=mv.source)
        return self._location(mv)

    def resolve_artifact_location(self, model_uri: str) -> str:
        """The artifact location a `models:/` URI points at."""
        return self._location(self.resolve_model_uri(model_uri))

    def _location(self, mv: ModelVersion) -> str:
        resolver = self._config.run_artifact_uri
        if resolver is not None and mv.source.startswith("runs:/"):
            return resolver(*parse_runs_uri(mv.source))
        return mv.source
