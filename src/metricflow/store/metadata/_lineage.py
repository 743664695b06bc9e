"""Lineage: datasets -> run -> model version -> aliases, stage, deployments.

Run inputs are recorded as MLflow 3 records them (`log_inputs`: a dataset's name,
digest, source type, source, schema and profile, plus the input's tags such as
`mlflow.data.context`), through the MLflow REST API or natively. A dataset is one
row per (name, digest); `run_inputs` links runs to datasets. Versions link to
runs by `model_versions.run_id` (indexed), deployments to versions through their
variants' aliases and pins. "Which versions were trained on digest X" is one
join over indexed columns (`versions_trained_on`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from metricflow.errors import InvalidArgument
from metricflow.store.metadata._base import now_ms, upsert
from metricflow.store.metadata._gov_types import (
    DatasetInput,
    LineageEdge,
    LineageGraph,
    LineageNode,
)
from metricflow.store.metadata._registry_base import RegistryBase
from metricflow.store.metadata._tables import (
    datasets,
    model_versions,
    registered_models,
    run_inputs,
)
from metricflow.store.metadata._validate import check_version

_D, _RI = datasets.c, run_inputs.c
_M, _V = registered_models.c, model_versions.c
MAX_INPUTS = 1000
_LIMITS = {"name": 500, "digest": 256, "source_type": 64, "context": 64}
CONTEXT_TAG = "mlflow.data.context"


def _check_input(i: int, d: DatasetInput) -> None:
    if not d.name or not d.digest:
        raise InvalidArgument(f"datasets[{i}] needs a name and a digest",
                              field=f"datasets[{i}]")
    for f, limit in _LIMITS.items():
        value = getattr(d, f)
        if len(value) > limit:
            raise InvalidArgument(f"datasets[{i}].{f} is {len(value)} characters long; the "
                                  f"limit is {limit}", field=f"datasets[{i}].{f}",
                                  limit=limit, received=len(value))


def dataset_inputs_from_mlflow(items: Sequence[Any]) -> list[DatasetInput]:
    """MLflow's `datasets=[{tags: [{key, value}], dataset: {name, digest, ...}}]`."""
    out = []
    for i, d in enumerate(items):
        ds = d.get("dataset") if isinstance(d, dict) else None
        if not isinstance(ds, dict):
            raise InvalidArgument(f"datasets[{i}] must be an object with a 'dataset'",
                                  field=f"datasets[{i}]")
        tags = {str(t.get("key")): str(t.get("value", "")) for t in d.get("tags") or ()
                if isinstance(t, dict) and t.get("key")}
        out.append(DatasetInput(
            name=str(ds.get("name") or ""), digest=str(ds.get("digest") or ""),
            source_type=str(ds.get("source_type") or ""), source=str(ds.get("source") or ""),
            schema=str(ds.get("schema") or ""), profile=str(ds.get("profile") or ""),
            context=tags.get(CONTEXT_TAG, ""), tags=tags))
    return out


def _like_regex(pattern: str, *, case: bool) -> re.Pattern[str]:
    """A SQL LIKE pattern as a regex: % any run, _ one character, backslash escapes."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.S if case else re.S | re.I)


class LineageMixin(RegistryBase):
    """Run inputs and the lineage graph of a model version."""

    def log_run_inputs(self, run_id: str, inputs: Sequence[DatasetInput], *,
                       actor: str | None = None) -> None:
        """Record that `run_id` consumed `inputs` (logging one again updates its tags)."""
        if not isinstance(run_id, str) or not run_id or len(run_id) > 64:
            raise InvalidArgument("run_id must be 1-64 characters", field="run_id",
                                  received=str(run_id)[:80])
        if len(inputs) > MAX_INPUTS:
            raise InvalidArgument(f"{len(inputs)} datasets in one call; the limit is "
                                  f"{MAX_INPUTS}", field="datasets", limit=MAX_INPUTS,
                                  received=len(inputs))
        for i, d in enumerate(inputs):
            _check_input(i, d)
        if not inputs:
            return
        ts = now_ms()
        with self._write() as conn:
            for d in inputs:
                did = conn.execute(sa.select(_D.dataset_id).where(
                    _D.name == d.name, _D.digest == d.digest)).scalar()
                if did is None:
                    did = conn.execute(datasets.insert().values(
                        name=d.name, digest=d.digest, source_type=d.source_type,
                        source=d.source, schema=d.schema, profile=d.profile,
                        created_at=ts)).inserted_primary_key[0]  # type: ignore[index]
                upsert(conn, run_inputs, {"run_id": run_id, "dataset_id": did},
                       {"context": d.context, "tags_json": json.dumps(d.tags, sort_keys=True),
                        "ts": ts})
            self._audit(conn, actor=actor, action="log_run_inputs", entity_type="run",
                        entity_id=run_id, after={"datasets": [
                            {"name": d.name, "digest": d.digest, "context": d.context}
                            for d in inputs]}, ts=ts)

    def run_inputs(self, run_id: str) -> list[DatasetInput]:
        """The datasets a run consumed, in the order first logged."""
        with self._read() as conn:
            return self._datasets_of(conn, run_id)

    def _datasets_of(self, conn: sa.Connection, run_id: str) -> list[DatasetInput]:
        if not run_id:
            return []
        rows = conn.execute(sa.select(datasets, _RI.context, _RI.tags_json)
                            .join(run_inputs, _RI.dataset_id == _D.dataset_id)
                            .where(_RI.run_id == run_id).order_by(_D.dataset_id)).all()
        return [DatasetInput(r.name, r.digest, r.source_type, r.source, r.schema, r.profile,
                             r.context, json.loads(r.tags_json)) for r in rows]

    def runs_with_inputs(self, field: str, op: str, value: str | Sequence[str]) -> set[str]:
        """Ids of the runs with a dataset input whose `field` (name, digest, or context:
        the input's `mlflow.data.context` tag) compares true: MLflow's `datasets.<field>`
        run-search filter, which a run matches when any of its inputs does. `op`: = !=
        IN NOT IN [NOT] LIKE [NOT] ILIKE; LIKE is case-sensitive on every backend."""
        col = {"name": _D.name, "digest": _D.digest, "context": _RI.context}.get(field)
        if col is None:
            raise InvalidArgument(f"unknown dataset field {field!r}; known: name, digest, "
                                  "context", field="filter", received=field)
        stmt = (sa.select(_RI.run_id, col).distinct()
                .select_from(run_inputs.join(datasets, _RI.dataset_id == _D.dataset_id)))
        if field == "context":
            stmt = stmt.where(_RI.context != "")  # an input without the tag has no context
        like = op.removeprefix("NOT ") in ("LIKE", "ILIKE")
        if op in ("IN", "NOT IN"):
            values = [value] if isinstance(value, str) else list(value)
            stmt = stmt.where(col.in_(values) if op == "IN" else col.not_in(values))
        elif op in ("=", "!="):
            stmt = stmt.where(col == value if op == "=" else col != value)
        elif not like or not isinstance(value, str):
            raise InvalidArgument(f"operator {op} is not allowed for datasets.{field}",
                                  field="filter", received=op)
        elif not op.startswith("NOT ") and "\\" not in value:
            # narrows in SQL (case-blind on every backend); the exact match is below
            stmt = stmt.where(sa.func.lower(col).like(value.lower()))
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        if not like:
            return {r[0] for r in rows}
        assert isinstance(value, str)
        pattern = _like_regex(value, case=op.removeprefix("NOT ") == "LIKE")
        want = not op.startswith("NOT ")
        return {r[0] for r in rows if bool(pattern.fullmatch(r[1])) == want}

    def versions_trained_on(self, digest: str, *, name: str | None = None
                            ) -> list[tuple[str, str, str]]:
        """(model name, version, run id) of every version whose source run consumed a
        dataset with `digest` (and `name`, if given): one indexed join."""
        stmt = (sa.select(_M.name, _V.version, _V.run_id)
                .select_from(datasets)
                .join(run_inputs, _RI.dataset_id == _D.dataset_id)
                .join(model_versions, _V.run_id == _RI.run_id)
                .join(registered_models, _M.model_id == _V.model_id)
                .where(_D.digest == digest))
        if name is not None:
            stmt = stmt.where(_D.name == name)
        with self._read() as conn:
            rows = conn.execute(stmt.distinct().order_by(_M.name, _V.version)).all()
        return [(r.name, str(r.version), r.run_id) for r in rows]

    def lineage(self, name: str, version: str | int) -> LineageGraph:
        """Upstream (datasets, run) and downstream (aliases, stage, deployments, versions
        registered from it) of one model version."""
        v = check_version(version)
        with self._read() as conn:
            model = self._model(conn, name)
            mv = self._version(conn, model, v)
            root = f"model_version:{name}/{v}"
            nodes = [LineageNode("model_version", f"{name}/{v}", {
                "stage": mv.current_stage, "aliases": list(mv.aliases), "source": mv.source,
                "created": mv.creation_timestamp})]
            edges: list[LineageEdge] = []
            if mv.run_id:
                run = f"run:{mv.run_id}"
                nodes.append(LineageNode("run", mv.run_id, {}))
                edges.append(LineageEdge(run, root, "produced"))
                for d in self._datasets_of(conn, mv.run_id):
                    key = f"{d.name}@{d.digest}"
                    nodes.append(LineageNode("dataset", key, {
                        "name": d.name, "digest": d.digest, "source_type": d.source_type,
                        "source": d.source, "context": d.context}))
                    edges.append(LineageEdge(f"dataset:{key}", run,
                                             d.context or "input"))
            for dep in self._deployments_serving(conn, model.model_id, v):
                nodes.append(LineageNode("deployment", dep[0], {"variants": dep[1]}))
                edges.append(LineageEdge(root, f"deployment:{dep[0]}", "served_by"))
            derived = self._versions(conn, _V.source.in_(  # models:/name/v re-registrations
                [f"models:/{name}/{v}", f"models:/{name}/{v}/"]))
            for d_mv in derived:
                key = f"{d_mv.name}/{d_mv.version}"
                nodes.append(LineageNode("model_version", key, {"source": d_mv.source}))
                edges.append(LineageEdge(root, f"model_version:{key}", "registered_as"))
        return LineageGraph(root, tuple(nodes), tuple(edges))

    def _deployments_serving(self, conn: sa.Connection, model_id: int,
                             version: int) -> list[tuple[str, list[str]]]:
        """(deployment, variants) whose alias or pin names `version` right now."""
        load = getattr(self, "_load_deployments", None)
        if load is None:
            return []
        from metricflow.store.metadata._tables import deployments

        out = []
        for dep in load(conn, deployments.c.model_id == model_id):
            hit = [va.name for va in dep.variants if va.resolved_version == str(version)]
            if hit:
                out.append((dep.name, hit))
        return out

