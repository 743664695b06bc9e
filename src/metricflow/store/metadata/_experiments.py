"""Experiments on SQL: unique names, soft delete/restore, tags, search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from metricflow.entities import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    LIFECYCLE_ACTIVE,
    LIFECYCLE_DELETED,
    Experiment,
)
from metricflow.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from metricflow.store.metadata._base import StoreBase, inserted_id, now_ms, upsert
from metricflow.store.metadata._filter import compile_filter, parse_order_by
from metricflow.store.metadata._paging import decode_token, encode_token
from metricflow.store.metadata._tables import experiment_tags, experiments
from metricflow.store.metadata._uris import check_artifact_host
from metricflow.store.metadata._validate import (
    check_experiment_id,
    check_max_results,
    check_name,
    check_tag,
    check_tags,
)

_E = experiments.c
_VIEW_TYPES = {"active": (LIFECYCLE_ACTIVE,), "active_only": (LIFECYCLE_ACTIVE,),
               "deleted": (LIFECYCLE_DELETED,), "deleted_only": (LIFECYCLE_DELETED,),
               "all": (LIFECYCLE_ACTIVE, LIFECYCLE_DELETED)}
_ATTRS: dict[str, tuple[sa.ColumnElement, type]] = {
    "name": (_E.name, str), "experiment_id": (_E.experiment_id, int),
    "creation_time": (_E.creation_time, int), "last_update_time": (_E.last_update_time, int),
    "artifact_location": (_E.artifact_location, str),
}
_ORDER = {"name": _E.name, "experiment_id": _E.experiment_id,
          "creation_time": _E.creation_time, "last_update_time": _E.last_update_time}
MAX_SEARCH = 50_000


def _eid(experiment_id: str | int) -> int:
    # A malformed or out-of-range id is INVALID_PARAMETER_VALUE (it never reaches SQL).
    return int(check_experiment_id(experiment_id))


def _snapshot(e: Experiment) -> dict[str, Any]:
    return {"name": e.name, "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage, "tags": dict(e.tags)}


class ExperimentsMixin(StoreBase):
    """The experiment half of `MetadataStore`."""

    def _ensure_default_experiment(self) -> None:
        with self._read() as conn:
            if conn.execute(sa.select(_E.experiment_id).where(_E.experiment_id == 0)).first():
                return
        ts = now_ms()
        try:
            with self._write() as conn:
                if conn.execute(sa.select(_E.experiment_id).where(_E.experiment_id == 0)).first():
                    return
                conn.execute(experiments.insert().values(
                    experiment_id=0, name=DEFAULT_EXPERIMENT_NAME,
                    artifact_location=self._default_location(DEFAULT_EXPERIMENT_ID),
                    lifecycle_stage=LIFECYCLE_ACTIVE, creation_time=ts, last_update_time=ts))
                self._audit(conn, actor="system", action="create_experiment",
                            entity_type="experiment", entity_id=DEFAULT_EXPERIMENT_ID,
                            after={"name": DEFAULT_EXPERIMENT_NAME}, ts=ts)
        except sa.exc.IntegrityError:
            pass  # another process created it first

    def _default_location(self, experiment_id: str) -> str:
        root = self._config.default_artifact_root.rstrip("/")
        return f"{root}/{experiment_id}" if root else experiment_id

    def _load(self, conn: sa.Connection, *where: sa.ColumnElement[bool],
              order: Sequence[sa.ColumnElement] = (), offset: int = 0,
              limit: int | None = None) -> list[Experiment]:
        stmt = sa.select(experiments).where(*where).order_by(*order, _E.experiment_id)
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        rows = conn.execute(stmt).all()
        tags: dict[int, dict[str, str]] = {r.experiment_id: {} for r in rows}
        if rows:
            for t in conn.execute(sa.select(experiment_tags).where(
                    experiment_tags.c.experiment_id.in_(list(tags)))):
                tags[t.experiment_id][t.key] = t.value
        return [Experiment(str(r.experiment_id), r.name, r.artifact_location,
                           r.lifecycle_stage, tags[r.experiment_id], r.creation_time,
                           r.last_update_time) for r in rows]

    def _get(self, conn: sa.Connection, experiment_id: str | int) -> Experiment:
        found = self._load(conn, _E.experiment_id == _eid(experiment_id))
        if not found:
            raise NotFound(f"experiment id {experiment_id!r} does not exist",
                           field="experiment_id", received=str(experiment_id))
        return found[0]

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Mapping[str, str] | None = None, *,
                          actor: str | None = None) -> str:
        """Create an experiment and return its id; AlreadyExists if the name is taken."""
        check_name("experiment name", name)
        clean_tags = check_tags("experiment tag", tags)
        if artifact_location is not None and len(artifact_location) > 1000:
            raise InvalidArgument("artifact_location is longer than 1000 characters",
                                  field="artifact_location", limit=1000)
        check_artifact_host(artifact_location, "artifact_location")
        ts = now_ms()
        try:
            with self._write() as conn:
                self._raise_if_name_taken(conn, name)
                eid = str(inserted_id(conn.execute(experiments.insert().values(
                    name=name, artifact_location=artifact_location or "",
                    lifecycle_stage=LIFECYCLE_ACTIVE, creation_time=ts, last_update_time=ts))))
                location = artifact_location or self._default_location(eid)
                if not artifact_location:
                    conn.execute(experiments.update().where(_E.experiment_id == int(eid))
                                 .values(artifact_location=location))
                if clean_tags:
                    conn.execute(experiment_tags.insert(), [
                        {"experiment_id": int(eid), "key": k, "value": v}
                        for k, v in clean_tags.items()])
                self._audit(conn, actor=actor, action="create_experiment",
                            entity_type="experiment", entity_id=eid, ts=ts,
                            after={"name": name, "artifact_location": location,
                                   "lifecycle_stage": LIFECYCLE_ACTIVE, "tags": clean_tags})
        except sa.exc.IntegrityError as e:
            raise _duplicate(name) from e
        return eid

    def _raise_if_name_taken(self, conn: sa.Connection, name: str) -> None:
        row = conn.execute(sa.select(_E.experiment_id, _E.lifecycle_stage)
                           .where(_E.name == name)).first()
        if row is not None:
            raise _duplicate(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id (active or deleted); NotFound otherwise."""
        with self._read() as conn:
            return self._get(conn, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this name (active or deleted), or None."""
        with self._read() as conn:
            found = self._load(conn, _E.name == name)
        return found[0] if found else None

    def get_or_create_experiment(self, name: str, *, actor: str | None = None) -> Experiment:
        """Get the active experiment named `name`, creating it if needed (race-safe)."""
        for _ in range(3):
            exp = self.get_experiment_by_name(name)
            if exp is None:
                try:
                    return self.get_experiment(self.create_experiment(name, actor=actor))
                except AlreadyExists:
                    continue  # another process won the race; read its row
            if exp.lifecycle_stage == LIFECYCLE_DELETED:
                raise InvalidState(f"experiment {name!r} (id {exp.experiment_id}) is deleted; "
                                   "restore it or pick another name",
                                   experiment_id=exp.experiment_id)
            return exp
        raise AssertionError(f"experiment {name!r} kept vanishing while being created")

    def require_active_experiment(self, experiment_id: str) -> Experiment:
        """The experiment if it exists and is active (for creating runs in it)."""
        exp = self.get_experiment(experiment_id)
        if exp.lifecycle_stage != LIFECYCLE_ACTIVE:
            raise InvalidState(f"experiment {experiment_id} ({exp.name!r}) is deleted",
                               experiment_id=experiment_id)
        return exp

    def search_experiments(self, filter_string: str = "", view_type: str = "active",
                           max_results: int = 1000, order_by: Sequence[str] = (),
                           page_token: str | None = None
                           ) -> tuple[list[Experiment], str | None]:
        """Search by name and tags; returns a page and the next page's token."""
        stages = _VIEW_TYPES.get((view_type or "active").lower())
        if stages is None:
            raise InvalidArgument(f"view_type {view_type!r} is not active, deleted or all",
                                  field="view_type", received=view_type)
        check_max_results(max_results, MAX_SEARCH)
        T = experiment_tags.c
        conds = compile_filter(
            filter_string, _ATTRS,
            lambda key, cond: sa.exists().where(T.experiment_id == _E.experiment_id,
                                                T.key == key, cond),
            T.value)
        order = parse_order_by(tuple(order_by), _ORDER)
        offset = decode_token(page_token)
        with self._read() as conn:
            page = self._load(conn, _E.lifecycle_stage.in_(stages), *conds, order=order,
                              offset=offset, limit=max_results + 1)
        more = len(page) > max_results
        return page[:max_results], encode_token(offset + max_results) if more else None

    def _change(self, experiment_id: str, action: str, actor: str | None,
                values: dict[str, Any], *, need_stage: str | None = LIFECYCLE_ACTIVE,
                ) -> None:
        """Update one experiment row and audit the before/after snapshots."""
        try:
            with self._write() as conn:
                before = self._get(conn, experiment_id)
                if need_stage is not None and before.lifecycle_stage != need_stage:
                    raise InvalidState(
                        f"experiment {experiment_id} ({before.name!r}) is "
                        f"{before.lifecycle_stage}; {action} needs it {need_stage}",
                        experiment_id=experiment_id)
                conn.execute(experiments.update()
                             .where(_E.experiment_id == int(experiment_id))
                             .values(**values, last_update_time=now_ms()))
                after = self._get(conn, experiment_id)
                self._audit(conn, actor=actor, action=action, entity_type="experiment",
                            entity_id=str(experiment_id), before=_snapshot(before),
                            after=_snapshot(after))
        except sa.exc.IntegrityError as e:
            raise _duplicate(str(values.get("name"))) from e

    def rename_experiment(self, experiment_id: str, new_name: str, *,
                          actor: str | None = None) -> None:
        """Rename an active experiment; AlreadyExists if the new name is taken."""
        check_name("experiment name", new_name)
        existing = self.get_experiment_by_name(new_name)
        if existing is not None and existing.experiment_id != str(experiment_id):
            raise _duplicate(new_name)
        self._change(experiment_id, "rename_experiment", actor, {"name": new_name})

    def delete_experiment(self, experiment_id: str, *, actor: str | None = None) -> None:
        """Soft-delete an experiment; its runs are hidden with it."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise InvalidState("the Default experiment (id 0) cannot be deleted",
                               experiment_id=DEFAULT_EXPERIMENT_ID)
        self._change(experiment_id, "delete_experiment", actor,
                     {"lifecycle_stage": LIFECYCLE_DELETED})

    def restore_experiment(self, experiment_id: str, *, actor: str | None = None) -> None:
        """Restore a deleted experiment (and with it, its runs)."""
        self._change(experiment_id, "restore_experiment", actor,
                     {"lifecycle_stage": LIFECYCLE_ACTIVE}, need_stage=LIFECYCLE_DELETED)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str, *,
                           actor: str | None = None) -> None:
        """Set (insert or overwrite) a tag on an active experiment."""
        check_tag("experiment tag", key, value)
        self._tag_change(experiment_id, key, value, actor)

    def delete_experiment_tag(self, experiment_id: str, key: str, *,
                              actor: str | None = None) -> None:
        """Delete a tag from an active experiment; NotFound if it has no such tag."""
        self._tag_change(experiment_id, key, None, actor)

    def _tag_change(self, experiment_id: str, key: str, value: str | None,
                    actor: str | None) -> None:
        with self._write() as conn:
            before = self._get(conn, experiment_id)
            if before.lifecycle_stage != LIFECYCLE_ACTIVE:
                raise InvalidState(f"experiment {experiment_id} is deleted; restore it to "
                                   "change its tags", experiment_id=experiment_id)
            eid = int(before.experiment_id)
            if value is None:
                if key not in before.tags:
                    raise NotFound(f"experiment {experiment_id} has no tag {key!r}",
                                   field="key", received=key)
                conn.execute(experiment_tags.delete().where(
                    experiment_tags.c.experiment_id == eid, experiment_tags.c.key == key))
            else:
                upsert(conn, experiment_tags, {"experiment_id": eid, "key": key},
                       {"value": value})
            conn.execute(experiments.update().where(_E.experiment_id == eid)
                         .values(last_update_time=now_ms()))
            self._audit(conn, actor=actor,
                        action="set_experiment_tag" if value is not None
                        else "delete_experiment_tag",
                        entity_type="experiment", entity_id=str(eid),
                        before={"key": key, "value": before.tags.get(key)},
                        after={"key": key, "value": value})

    def deleted_experiment_ids(self) -> set[str]:
        """Ids of every deleted experiment (the data plane hides their runs)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(_E.experiment_id)
                                .where(_E.lifecycle_stage == LIFECYCLE_DELETED))
            return {str(r.experiment_id) for r in rows}


def _duplicate(name: str) -> AlreadyExists:
    # Neither the id nor the state of the holder: the caller may not be allowed to see
    # that experiment, and names are one namespace (docs/security.md, existence oracles).
    return AlreadyExists(
        f"an experiment named {name!r} already exists (names stay taken while an "
        "experiment is deleted: restore it or choose another name)",
        field="name", received=name)
