"""Deployments on SQL, write side: create, update, delete, variant status reports.

Every change runs in one transaction with its audit record (entity_type "deployment",
model_id/model_name of its model, so the model's audit history shows it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from metricflow._events import (
    DEPLOYMENT_CHANGED,
    MODEL_VERSION_ALIAS_CREATED,
    MODEL_VERSION_ALIAS_DELETED,
)
from metricflow.entities import (
    STATE_OUT_OF_ROTATION,
    STATE_SERVING,
    Deployment,
    Guardrails,
    StickyKey,
    Variant,
)
from metricflow.errors import AlreadyExists, InvalidArgument, NotFound
from metricflow.store.metadata._approvals import protected_patterns, protection
from metricflow.store.metadata._base import inserted_id, now_ms, upsert
from metricflow.store.metadata._deploy_validate import (
    MAX_REASON,
    check_deployment_name,
    check_description,
    check_guardrails,
    check_reason,
    check_state,
    check_sticky_key,
    check_variants,
)
from metricflow.store.metadata._deployments_read import (
    DeploymentReadsMixin,
    deployment_not_found,
    dump_spec,
    parse_spec,
)
from metricflow.store.metadata._gov_types import ALIAS, STAGE
from metricflow.store.metadata._registry_base import check_expected
from metricflow.store.metadata._tables import (
    deployment_variant_status,
    deployments,
    model_aliases,
    model_versions,
    registered_models,
)
from metricflow.store.metadata._validate import check_version

_D = deployments.c
_S = deployment_variant_status.c
_M = registered_models.c
_UNSET: Any = object()


class DeploymentsMixin(DeploymentReadsMixin):
    """The deployment part of `MetadataStore` (issue 19's control plane)."""

    def _changed(self, conn: sa.Connection, action: str, name: str, model_name: str | None,
                 after: dict[str, Any] | None, actor: str | None) -> None:
        """Emit `deployment.changed` (metricflow._events) once the transaction commits."""
        self._event(conn, DEPLOYMENT_CHANGED, f"deployment:{name}",
                    {"name": name, "model_name": model_name or "", "action": action,
                     "deployment": after}, actor)

    def _event(self, conn: sa.Connection, name: str, subject: str, data: dict[str, Any],
               actor: str | None = None) -> None:
        """Every event, plus `deployment.changed` for each deployment that follows an alias
        that was just set, moved or deleted (same transaction, emitted after its commit)."""
        super()._event(conn, name, subject, data, actor)
        if name in (MODEL_VERSION_ALIAS_CREATED, MODEL_VERSION_ALIAS_DELETED):
            alias = data.get("alias")
            for d in self._load_deployments(conn, _M.name == data.get("name")):
                if any(v.alias == alias for v in d.variants):
                    super()._event(conn, DEPLOYMENT_CHANGED, f"deployment:{d.name}", {
                        "name": d.name, "model_name": d.model_name, "action": "alias_moved",
                        "alias": alias, "version": data.get("version") if name ==
                        MODEL_VERSION_ALIAS_CREATED else None,
                        "previous_version": data.get("previous_version", data.get("version")),
                        "deployment": d.to_dict()}, actor)

    # ------------------------------------------------------------ reads
    # ------------------------------------------------------------ writes
    def _check_targets(self, conn: sa.Connection, model: sa.Row[Any],
                       variants: Sequence[Variant]) -> None:
        """Every alias is set on the model and every pinned version exists (NotFound else)."""
        A, V = model_aliases.c, model_versions.c
        aliases = set(conn.execute(sa.select(A.alias).where(A.model_id == model.model_id))
                      .scalars())
        versions = set(conn.execute(sa.select(V.version).where(V.model_id == model.model_id))
                       .scalars())
        for i, v in enumerate(variants):
            if v.alias and v.alias not in aliases:
                raise NotFound(f"variant {v.name!r}: registered model {model.name!r} has no "
                               f"alias {v.alias!r} (its aliases: "
                               f"{', '.join(sorted(aliases)) or 'none'})",
                               field=f"variants[{i}].alias", received=v.alias)
            if v.version and int(v.version) not in versions:
                raise NotFound(f"variant {v.name!r}: registered model {model.name!r} has no "
                               f"version {v.version}", field=f"variants[{i}].version",
                               received=v.version)
        self._check_governed(conn, model, variants)

    def _check_governed(self, conn: sa.Connection, model: sa.Row[Any],
                        variants: Sequence[Variant]) -> None:
        """A model with protected targets (its own or global): every routed registry
        variant must follow a protected alias, so no one routes traffic to a version
        without the approvals a move of that alias needs. Shadows (answers discarded)
        and endpoints (outside the registry) are not checked. Same rule as approvals."""
        rules = protected_patterns(conn, model.model_id)
        if not rules:
            return
        aliases = list(dict.fromkeys(p for k, p in rules if k == ALIAS))
        stages = list(dict.fromkeys(p for k, p in rules if k == STAGE))
        listed = "; ".join(part for part in (
            f"alias{'es' if len(aliases) > 1 else ''} {', '.join(aliases)}" if aliases else "",
            f"stage{'s' if len(stages) > 1 else ''} {', '.join(stages)}" if stages else "")
            if part)
        for i, v in enumerate(variants):
            if v.shadow or v.endpoint:
                continue
            if v.alias and protection(conn, model.model_id, ALIAS, v.alias) is not None:
                continue
            what = (f"follows alias {v.alias!r} (not protected)" if v.alias
                    else f"pins version {v.version}")
            raise InvalidArgument(
                f"variant {v.name!r} {what} of {model.name!r}, which has protected targets "
                f"({listed}): a routed variant must follow a protected alias"
                + ("" if aliases else " (none is protected yet)")
                + "; make it a shadow, or move a protected alias through approvals",
                field=f"variants[{i}]", received=v.target)

    def create_deployment(self, name: str, model_name: str, variants: Sequence[Variant], *,
                          sticky_key: StickyKey | None = None,
                          guardrails: Guardrails | None = None, description: str = "",
                          actor: str | None = None) -> Deployment:
        """Create a deployment; AlreadyExists if the name is taken, NotFound for an
        unknown model, alias or version, InvalidArgument for bad weights or names."""
        check_deployment_name(name)
        clean = check_variants(variants)
        sticky = check_sticky_key(sticky_key)
        guard = check_guardrails(guardrails or Guardrails(), clean)
        desc = check_description(description)
        ts = now_ms()
        try:
            with self._write() as conn:
                model = self._model(conn, model_name, lock=True)
                if conn.execute(sa.select(_D.deployment_id).where(_D.name == name)).first():
                    raise AlreadyExists(f"a deployment named {name!r} already exists",
                                        field="name", received=name)
                self._check_targets(conn, model, clean)
                inserted_id(conn.execute(deployments.insert().values(
                    name=name, model_id=model.model_id, spec_json=dump_spec(clean, sticky, guard),
                    description=desc, creation_time=ts, last_update_time=ts, row_version=1)))
                d = self._get_deployment(conn, name)
                after = d.to_dict()
                self._audit(conn, actor=actor, action="create_deployment",
                            entity_type="deployment", entity_id=name, after=_audited(after),
                            model_id=model.model_id, model_name=model.name, ts=ts)
                self._changed(conn, "create_deployment", name, model.name, after, actor)
        except sa.exc.IntegrityError as e:
            raise AlreadyExists(f"a deployment named {name!r} already exists", field="name",
                                received=name) from e
        return d

    def update_deployment(self, name: str, *, variants: Sequence[Variant] | None = None,
                          sticky_key: StickyKey | None = _UNSET,
                          guardrails: Guardrails | None = None, description: str | None = None,
                          expected_version: int | None = None, comment: str = "",
                          actor: str | None = None) -> Deployment:
        """Replace the given parts of a deployment's spec (None/unset keeps a part).

        Reported statuses of variants whose target changed (or that were removed) are
        cleared: a new target gets a fresh chance to load and to pass its guardrails.
        `expected_version`: the `row_version` read before (Conflict if it moved).
        """
        check_deployment_name(name)
        if len(check_reason(comment, "comment")) < len(comment):
            raise InvalidArgument(f"comment is {len(comment)} characters long; the limit is "
                                  f"{MAX_REASON}", field="comment", limit=MAX_REASON,
                                  received=len(comment))
        with self._write() as conn:
            row = conn.execute(self._lock(sa.select(deployments).where(_D.name == name))).first()
            if row is None:
                raise deployment_not_found(name)
            check_expected(f"deployment {name!r}", row.row_version, expected_version)
            model = conn.execute(sa.select(registered_models)
                                 .where(_M.model_id == row.model_id)).one()
            old_variants, old_sticky, old_guard = parse_spec(row.spec_json)
            new_variants = check_variants(variants) if variants is not None else old_variants
            sticky = old_sticky if sticky_key is _UNSET else check_sticky_key(sticky_key)
            guard = check_guardrails(guardrails if guardrails is not None else
                                     _refit(old_guard, new_variants), new_variants)
            desc = row.description if description is None else check_description(description)
            if variants is not None:
                self._check_targets(conn, model, new_variants)
            spec = dump_spec(new_variants, sticky, guard)
            if spec == row.spec_json and desc == row.description:
                return self._get_deployment(conn, name)  # nothing changed: no audit entry
            before = self._get_deployment(conn, name).to_dict()
            ts = now_ms()
            conn.execute(deployments.update().where(_D.deployment_id == row.deployment_id)
                         .values(spec_json=spec, description=desc, last_update_time=ts,
                                 row_version=row.row_version + 1))
            old_by_name = {v.name: v for v in old_variants}
            stale = [v.name for v in old_variants if v.name not in
                     {n.name for n in new_variants if old_by_name.get(n.name) == n}]
            if stale:
                conn.execute(deployment_variant_status.delete().where(
                    _S.deployment_id == row.deployment_id, _S.variant.in_(stale)))
            d = self._get_deployment(conn, name)
            after = d.to_dict()
            self._audit(conn, actor=actor, action="update_deployment", entity_type="deployment",
                        entity_id=name, before=_audited(before), after=_audited(after),
                        comment=comment, model_id=model.model_id, model_name=model.name, ts=ts)
            self._changed(conn, "update_deployment", name, model.name, after, actor)
        return d

    def delete_deployment(self, name: str, *, expected_version: int | None = None,
                          actor: str | None = None) -> None:
        """Delete a deployment and its reported statuses (the audit log keeps its history)."""
        check_deployment_name(name)
        with self._write() as conn:
            row = conn.execute(self._lock(sa.select(deployments).where(_D.name == name))).first()
            if row is None:
                raise deployment_not_found(name)
            check_expected(f"deployment {name!r}", row.row_version, expected_version)
            before = self._get_deployment(conn, name).to_dict()
            model = conn.execute(sa.select(_M.name).where(_M.model_id == row.model_id)).scalar()
            conn.execute(deployment_variant_status.delete()
                         .where(_S.deployment_id == row.deployment_id))
            conn.execute(deployments.delete().where(_D.deployment_id == row.deployment_id))
            self._audit(conn, actor=actor, action="delete_deployment", entity_type="deployment",
                        entity_id=name, before=_audited(before), model_id=row.model_id,
                        model_name=model)
            self._changed(conn, "delete_deployment", name, model, None, actor)

    def report_variant_status(self, name: str, variant: str, state: str, *, version: str = "",
                              reason: str = "", reporter: str = "", restore: bool = False,
                              actor: str | None = None) -> Deployment:
        """Record what a serve process saw about a variant (load failure, guardrail trip,
        recovery). A change of state or version is an audit entry; a repeat of the current
        state (another serve process saying the same) only refreshes the report's time.

        A variant out of rotation stays out for its version: a later "serving" report of
        the same version (a process that restarted and loaded it) does not put it back,
        unless `restore` (an operator's `deploy restore`). A new version, or a change of
        the variant by `update_deployment`, gives it a fresh start. `version` is the model
        version the process loaded, as a number ("3"), or "" (an endpoint variant).
        """
        check_deployment_name(name)
        st = check_state(state)
        why = check_reason(reason)
        who = check_reason(reporter, "reporter")[:256]
        if not isinstance(version, str):
            raise InvalidArgument("version must be a string: a model version number, or "
                                  "empty", field="version", received=repr(version)[:100])
        if version:  # the model version the process loaded ("" for an endpoint variant)
            version = str(check_version(version))
        with self._write() as conn:
            row = conn.execute(self._lock(sa.select(deployments).where(_D.name == name))).first()
            if row is None:
                raise deployment_not_found(name)
            variants, _, _ = parse_spec(row.spec_json)
            if variant not in {v.name for v in variants}:
                raise NotFound(f"deployment {name!r} has no variant {variant!r} (its variants: "
                               f"{', '.join(v.name for v in variants)})", field="variant",
                               received=variant[:100])
            cur = conn.execute(sa.select(deployment_variant_status).where(
                _S.deployment_id == row.deployment_id, _S.variant == variant)).first()
            if (cur is not None and cur.state == STATE_OUT_OF_ROTATION and st == STATE_SERVING
                    and cur.version == version and not restore):
                return self._get_deployment(conn, name)  # tripped stays tripped
            ts = now_ms()
            changed = cur is None and st != STATE_SERVING or cur is not None and (
                cur.state != st or cur.version != version)
            upsert(conn, deployment_variant_status,
                   {"deployment_id": row.deployment_id, "variant": variant},
                   {"state": st, "version": version, "reason": why, "reporter": who, "ts": ts})
            model = conn.execute(sa.select(_M.name).where(_M.model_id == row.model_id)).scalar()
            report = {"variant": variant, "state": st, "version": version, "reason": why,
                      "reporter": who}
            if changed:
                self._audit(conn, actor=actor, action=f"deployment_variant_{st}",
                            entity_type="deployment", entity_id=name,
                            before=None if cur is None else {
                                "variant": variant, "state": cur.state, "version": cur.version},
                            after=report, comment=why, model_id=row.model_id,
                            model_name=model, ts=ts)
            d = self._get_deployment(conn, name)
            if changed:
                self._changed(conn, f"deployment_variant_{st}", name, model, d.to_dict(), actor)
        return d


def _refit(g: Guardrails, variants: Sequence[Variant]) -> Guardrails:
    """Old guardrails for new variants: a fallback that is no longer routed is dropped."""
    routed = {v.name for v in variants if not v.shadow}
    if g.fallback and g.fallback not in routed:
        return Guardrails(g.max_error_rate, g.max_latency_p99_ms, g.window_s, g.min_requests, "")
    return g


def _audited(d: dict[str, Any]) -> dict[str, Any]:
    """What the audit record keeps: the spec and the resolved versions, not timestamps."""
    return {k: v for k, v in d.items()
            if k not in ("creation_timestamp", "last_updated_timestamp", "statuses")}
