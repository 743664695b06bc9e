"""Deployments on SQL, read side: specs, alias resolution, loads, history.

The write side (`_deployments.py`) builds on `DeploymentReadsMixin`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

import sqlalchemy as sa

from metricflow.entities import (
    AuditEntry,
    Deployment,
    Guardrails,
    StickyKey,
    Variant,
    VariantStatus,
)
from metricflow.errors import NotFound
from metricflow.store.metadata._audit import since_created
from metricflow.store.metadata._deploy_validate import check_deployment_name
from metricflow.store.metadata._registry_base import RegistryBase
from metricflow.store.metadata._tables import (
    audit_log,
    deployment_variant_status,
    deployments,
    model_aliases,
    model_versions,
    registered_models,
)
from metricflow.store.metadata._uris import parse_runs_uri

_D = deployments.c
_S = deployment_variant_status.c
_M = registered_models.c


def dump_spec(variants: Sequence[Variant], sticky: StickyKey | None, g: Guardrails) -> str:
    return json.dumps({
        "variants": [{"name": v.name, "alias": v.alias, "version": v.version,
                      "endpoint": v.endpoint, "weight": v.weight, "shadow": v.shadow}
                     for v in variants],
        "sticky_key": None if sticky is None else {"source": sticky.source, "name": sticky.name},
        "guardrails": {"max_error_rate": g.max_error_rate,
                       "max_latency_p99_ms": g.max_latency_p99_ms, "window_s": g.window_s,
                       "min_requests": g.min_requests, "fallback": g.fallback},
    }, sort_keys=True)


def parse_spec(text: str) -> tuple[tuple[Variant, ...], StickyKey | None, Guardrails]:
    d = json.loads(text)
    variants = tuple(Variant(**v) for v in d["variants"])
    sk = d.get("sticky_key")
    return (variants, None if not sk else StickyKey(sk["source"], sk["name"]),
            Guardrails(**d["guardrails"]))


def deployment_not_found(name: str) -> NotFound:
    return NotFound(f"deployment {name!r} does not exist", field="name", received=name)

class DeploymentReadsMixin(RegistryBase):
    """The read part of the deployment store."""

    def _resolve(self, conn: sa.Connection, model_id: int, variants: Sequence[Variant]
                 ) -> tuple[Variant, ...]:
        """Each variant with the version its alias or pin names now, and that version's source."""
        A, V = model_aliases.c, model_versions.c
        aliases = dict(conn.execute(sa.select(A.alias, A.version)
                                    .where(A.model_id == model_id)).all())
        sources = dict(conn.execute(sa.select(V.version, V.source)
                                    .where(V.model_id == model_id)).all())
        resolver = self._config.run_artifact_uri
        out = []
        for v in variants:
            num: int | None = None
            if v.alias:
                num = aliases.get(v.alias)
            elif v.version:
                num = int(v.version) if int(v.version) in sources else None
            src = sources.get(num, "") if num is not None else ""
            if resolver is not None and src.startswith("runs:/"):
                src = resolver(*parse_runs_uri(src))
            out.append(Variant(name=v.name, alias=v.alias, version=v.version,
                               endpoint=v.endpoint, weight=v.weight, shadow=v.shadow,
                               resolved_version="" if num is None else str(num), source=src))
        return tuple(out)

    def _load_deployments(self, conn: sa.Connection, *where: sa.ColumnElement[bool]
                          ) -> list[Deployment]:
        rows = conn.execute(sa.select(deployments, _M.name.label("model_name"))
                            .join(registered_models, _M.model_id == _D.model_id)
                            .where(*where).order_by(_D.name)).all()
        if not rows:
            return []
        statuses: dict[int, list[VariantStatus]] = {r.deployment_id: [] for r in rows}
        for s in conn.execute(sa.select(deployment_variant_status)
                              .where(_S.deployment_id.in_(list(statuses)))
                              .order_by(_S.variant)):
            statuses[s.deployment_id].append(VariantStatus(
                variant=s.variant, state=s.state, version=s.version, reason=s.reason,
                reporter=s.reporter, timestamp=s.ts))
        out = []
        for r in rows:
            variants, sticky, guard = parse_spec(r.spec_json)
            out.append(Deployment(
                name=r.name, model_name=r.model_name,
                variants=self._resolve(conn, r.model_id, variants), sticky_key=sticky,
                guardrails=guard, description=r.description,
                creation_timestamp=r.creation_time, last_updated_timestamp=r.last_update_time,
                row_version=r.row_version, statuses=tuple(statuses[r.deployment_id])))
        return out

    def _get_deployment(self, conn: sa.Connection, name: str) -> Deployment:
        found = self._load_deployments(conn, _D.name == name)
        if not found:
            raise deployment_not_found(name)
        return found[0]

    def get_deployment(self, name: str) -> Deployment:
        """The deployment, each variant resolved to the version it names right now."""
        check_deployment_name(name)
        with self._read() as conn:
            return self._get_deployment(conn, name)

    def list_deployments(self, model_name: str | None = None) -> list[Deployment]:
        """Every deployment (of one model if `model_name`), by name."""
        with self._read() as conn:
            return self._load_deployments(
                conn, *([_M.name == model_name] if model_name is not None else []))

    def deployment_history(self, name: str, max_results: int = 1000,
                           model_ids: Collection[int] | None = None) -> list[AuditEntry]:
        """The audit entries of a deployment (every deployment ever named `name`), oldest first.

        `model_ids`: only entries about those models (by surrogate id): a caller sees the
        history of the deployments of models they may manage, not that of an earlier
        deployment of the same name that served another model."""
        A = audit_log.c
        conds = [A.entity_type == "deployment", A.entity_id == name]
        if model_ids is not None:
            # each model's entries since it was created (SQLite gives a deleted model's
            # id to the next model created)
            conds.append(A.model_id.in_(sorted(model_ids)))
            conds.append(since_created(A.model_id))
        with self._read() as conn:
            rows = conn.execute(sa.select(audit_log).where(*conds)
                                .order_by(A.id).limit(max_results)).all()
        return [AuditEntry(
            id=r.id, timestamp=r.ts, actor=r.actor, action=r.action,
            entity_type=r.entity_type, entity_id=r.entity_id,
            before=json.loads(r.before_json) if r.before_json else None,
            after=json.loads(r.after_json) if r.after_json else None,
            comment=r.comment or "", model_name=r.model_name or "",
            version=str(r.version) if r.version is not None else "") for r in rows]


def model_of_deployment(engine: sa.Engine, name: str, *, deleted: bool = False) -> str | None:
    """The registered model a deployment serves, read on `engine` (for permission checks
    made outside a store: the auth layer's rules); None if there is no such deployment.

    `deleted`: for a deployment that no longer exists, the model named by its last audit
    entry (its history stays readable to whoever may manage that model).
    """
    A = audit_log.c
    with engine.connect() as conn:
        found = conn.execute(sa.select(_M.name).join(deployments, _M.model_id == _D.model_id)
                             .where(_D.name == name)).scalar()
        if found is None and deleted:
            found = conn.execute(sa.select(A.model_name).where(
                A.entity_type == "deployment", A.entity_id == name)
                .order_by(A.id.desc()).limit(1)).scalar()
        return found
