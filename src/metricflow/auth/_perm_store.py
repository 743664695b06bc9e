"""Per-experiment and per-registered-model grants, with audited changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from metricflow.auth._tables import experiment_permissions, model_permissions, users
from metricflow.auth._types import Permission
from metricflow.errors import InvalidArgument, NotFound
from metricflow.store.metadata import READONLY_OPTION, experiments, registered_models

_EP, _MP = experiment_permissions.c, model_permissions.c
_E, _M = experiments.c, registered_models.c


def _exp_key(experiment_id: str) -> int:
    try:
        n = int(experiment_id)
    except (TypeError, ValueError):
        raise NotFound(f"experiment {experiment_id!r} does not exist",
                       field="experiment_id") from None
    if n < 0 or n > 2**31 - 1:
        raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_id")
    return n


class PermissionMixin:
    """Grant reads and writes; `engine` and `audit` come from AuthStore."""

    engine: sa.Engine

    def audit(self, conn: sa.Connection | None, *, actor: str, action: str, entity_type: str,
              entity_id: str, after: Any = None, before: Any = None,
              comment: str = "") -> None:  # pragma: no cover - AuthStore implements it
        raise NotImplementedError

    # ------------------------------------------------------------ lookups
    def _reader(self) -> sa.Connection:
        """A read-only connection (SQLite: a deferred BEGIN): lookups never wait for the
        write lock, so a permission check made inside a write transaction of the same
        thread (the policy gate, deciding which run values a message may show) cannot
        wait on itself."""
        return self.engine.connect().execution_options(**{READONLY_OPTION: True})

    def model_id(self, conn: sa.Connection, name: str) -> int | None:
        return conn.execute(sa.select(_M.model_id).where(_M.name == name)).scalar()

    def experiment_exists(self, experiment_id: str) -> bool:
        try:
            key = _exp_key(experiment_id)
        except NotFound:
            return False
        with self._reader() as conn:
            return conn.execute(sa.select(_E.experiment_id)
                                .where(_E.experiment_id == key)).first() is not None

    def experiment_id_by_name(self, name: str) -> str | None:
        with self._reader() as conn:
            v = conn.execute(sa.select(_E.experiment_id).where(_E.name == name)).scalar()
        return None if v is None else str(v)

    def experiment_permission(self, username: str, experiment_id: str) -> Permission | None:
        """The explicit grant of `username` on an experiment, or None."""
        key = _exp_key(experiment_id)
        with self._reader() as conn:
            p = conn.execute(sa.select(_EP.permission).where(
                _EP.experiment_id == key, _EP.username == username)).scalar()
        return None if p is None else Permission[p]

    def model_permission(self, username: str, name: str) -> tuple[bool, Permission | None]:
        """(model exists, explicit grant of `username` on it or None)."""
        with self._reader() as conn:
            mid = self.model_id(conn, name)
            if mid is None:
                return False, None
            p = conn.execute(sa.select(_MP.permission).where(
                _MP.model_id == mid, _MP.username == username)).scalar()
        return True, None if p is None else Permission[p]

    def readable_experiment_ids(self, username: str, default: Permission) -> frozenset[str]:
        """Every experiment `username` may read, computed in SQL over the grant table."""
        grant = sa.select(_EP.permission).where(_EP.experiment_id == _E.experiment_id,
                                                _EP.username == username).scalar_subquery()
        readable = [p.name for p in Permission if p >= Permission.READ]
        cond: sa.ColumnElement[bool] = grant.in_(readable)
        if default >= Permission.READ:
            cond = sa.or_(cond, grant.is_(None))
        with self._reader() as conn:
            rows = conn.execute(sa.select(_E.experiment_id).where(cond)).scalars().all()
        return frozenset(str(r) for r in rows)

    def readable_model_ids(self, username: str, default: Permission) -> frozenset[int]:
        """Surrogate ids of every registered model `username` may read."""
        return self.model_ids_at_least(username, default, Permission.READ)

    def model_ids_at_least(self, username: str, default: Permission,
                           level: Permission) -> frozenset[int]:
        """Surrogate ids of every registered model on which `username` holds `level`."""
        grant = sa.select(_MP.permission).where(_MP.model_id == _M.model_id,
                                                _MP.username == username).scalar_subquery()
        cond: sa.ColumnElement[bool] = grant.in_(
            [p.name for p in Permission if p >= level])
        if default >= level:
            cond = sa.or_(cond, grant.is_(None))
        with self._reader() as conn:
            return frozenset(conn.execute(sa.select(_M.model_id).where(cond)).scalars().all())

    def model_names_to_ids(self, names: list[str]) -> dict[str, int]:
        with self._reader() as conn:
            rows = conn.execute(sa.select(_M.name, _M.model_id)
                                .where(_M.name.in_(names))).all()
        return {r.name: r.model_id for r in rows}

    # ------------------------------------------------------------ changes
    def _check_user(self, conn: sa.Connection, username: str) -> None:
        if conn.execute(sa.select(users.c.username)
                        .where(users.c.username == username)).first() is None:
            raise NotFound(f"user {username!r} does not exist", field="username")

    def set_experiment_permission(self, experiment_id: str, username: str,
                                  permission: Permission | str, *, actor: str = "") -> None:
        """Grant (or replace the grant of) `username` on an experiment; audited."""
        perm = permission if isinstance(permission, Permission) else Permission.parse(permission)
        key = _exp_key(experiment_id)
        with self.engine.begin() as conn:
            self._check_user(conn, username)
            if conn.execute(sa.select(_E.experiment_id)
                            .where(_E.experiment_id == key)).first() is None:
                raise NotFound(f"experiment {experiment_id!r} does not exist",
                               field="experiment_id")
            before = conn.execute(sa.select(_EP.permission).where(
                _EP.experiment_id == key, _EP.username == username)).scalar()
            conn.execute(experiment_permissions.delete().where(
                _EP.experiment_id == key, _EP.username == username))
            conn.execute(experiment_permissions.insert().values(
                experiment_id=key, username=username, permission=perm.name))
            self.audit(conn, actor=actor, action="set_experiment_permission",
                       entity_type="experiment", entity_id=str(key),
                       before={"username": username, "permission": before},
                       after={"username": username, "permission": perm.name})

    def delete_experiment_permission(self, experiment_id: str, username: str, *,
                                     actor: str = "") -> None:
        key = _exp_key(experiment_id)
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(_EP.permission).where(
                _EP.experiment_id == key, _EP.username == username)).scalar()
            if before is None:
                raise NotFound(f"user {username!r} has no grant on experiment {experiment_id}",
                               field="username")
            conn.execute(experiment_permissions.delete().where(
                _EP.experiment_id == key, _EP.username == username))
            self.audit(conn, actor=actor, action="delete_experiment_permission",
                       entity_type="experiment", entity_id=str(key),
                       before={"username": username, "permission": before})

    def set_model_permission(self, name: str, username: str, permission: Permission | str,
                             *, actor: str = "") -> None:
        """Grant (or replace the grant of) `username` on a registered model; audited."""
        perm = permission if isinstance(permission, Permission) else Permission.parse(permission)
        with self.engine.begin() as conn:
            self._check_user(conn, username)
            mid = self.model_id(conn, name)
            if mid is None:
                raise NotFound(f"registered model {name!r} does not exist", field="name")
            before = conn.execute(sa.select(_MP.permission).where(
                _MP.model_id == mid, _MP.username == username)).scalar()
            conn.execute(model_permissions.delete().where(
                _MP.model_id == mid, _MP.username == username))
            conn.execute(model_permissions.insert().values(
                model_id=mid, username=username, permission=perm.name))
            self.audit(conn, actor=actor, action="set_model_permission",
                       entity_type="registered_model", entity_id=name,
                       before={"username": username, "permission": before},
                       after={"username": username, "permission": perm.name})

    def delete_model_permission(self, name: str, username: str, *, actor: str = "") -> None:
        with self.engine.begin() as conn:
            mid = self.model_id(conn, name)
            before = None if mid is None else conn.execute(sa.select(_MP.permission).where(
                _MP.model_id == mid, _MP.username == username)).scalar()
            if before is None:
                raise NotFound(f"user {username!r} has no grant on model {name!r}",
                               field="username")
            conn.execute(model_permissions.delete().where(
                _MP.model_id == mid, _MP.username == username))
            self.audit(conn, actor=actor, action="delete_model_permission",
                       entity_type="registered_model", entity_id=name,
                       before={"username": username, "permission": before})

    def list_permissions(self, username: str) -> dict[str, dict[str, str]]:
        """Every explicit grant of a user: {"experiments": {id: perm}, "models": {name: perm}}."""
        with self._reader() as conn:
            exps = conn.execute(sa.select(_EP.experiment_id, _EP.permission)
                                .where(_EP.username == username)).all()
            models = conn.execute(sa.select(_M.name, _MP.permission)
                                  .join(registered_models, _M.model_id == _MP.model_id)
                                  .where(_MP.username == username)).all()
        if not isinstance(username, str):
            raise InvalidArgument("username must be a string", field="username")
        return {"experiments": {str(e): p for e, p in exps},
                "models": {n: p for n, p in models}}
