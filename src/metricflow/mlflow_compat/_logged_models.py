"""MLflow 3 logged models: what `mlflow.<flavor>.log_model` creates before uploading files.

Models are JSON documents (see `_documents.py`); their files are artifacts
owned by the model id in the content-addressed store, reached through
`mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts`.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from metricflow.errors import InvalidArgument, NotFound
from metricflow.ingest import random_run_name
from metricflow.mlflow_compat._context import Compat
from metricflow.mlflow_compat._convert import logged_model_json
from metricflow.mlflow_compat._routing import Args, MlflowRoutes
from metricflow.store.metadata import canonical_experiment_id, check_experiment_id

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
_CLAUSE = re.compile(
    r"^\s*(?:(?P<kind>attributes|attribute|tags|tag|params|param)\.)?"
    r"(?P<key>`[^`]+`|\"[^\"]+\"|[\w.]+)\s*(?P<op>=|!=)\s*'(?P<value>(?:[^']|'')*)'\s*$", re.I)
_ATTRS = ("name", "model_id", "source_run_id", "status", "model_type", "experiment_id")


def _now() -> int:
    return int(time.time() * 1000)


def parse_filter(text: str) -> list[tuple[str, str, str, str]]:
    """`a = 'x' AND tags.t != 'y'` -> [(kind, key, op, value)]; only = and != are supported."""
    out = []
    for clause in re.split(r"\s+AND\s+", text.strip(), flags=re.I) if text.strip() else []:
        m = _CLAUSE.match(clause)
        if m is None:
            raise InvalidArgument(f"Unsupported logged-model filter clause {clause!r}: this "
                                  "server supports <field> = '<value>' and != joined by AND",
                                  field="filter", received=clause)
        kind = (m.group("kind") or "attributes").lower().rstrip("s")
        out.append((kind if kind != "attribute" else "attributes", m.group("key").strip("`\""),
                    m.group("op"), m.group("value").replace("''", "'")))
    return out


def _matches(doc: dict[str, Any], clauses: list[tuple[str, str, str, str]]) -> bool:
    for kind, key, op, value in clauses:
        if kind == "tag":
            have = doc.get("tags", {}).get(key)
        elif kind == "param":
            have = doc.get("params", {}).get(key)
        else:
            if key not in _ATTRS:
                raise InvalidArgument(f"Invalid logged-model attribute {key!r}",
                                      field="filter", received=key)
            have = str(doc.get(key, ""))
        if (have == value) != (op == "="):
            return False
    return True


_ORDER_ATTRS = {"creation_timestamp": "creation_timestamp_ms",
                "creation_time": "creation_timestamp_ms",
                "last_updated_timestamp": "last_updated_timestamp_ms",
                "name": "name", "model_id": "model_id", "status": "status",
                "experiment_id": "experiment_id", "source_run_id": "source_run_id",
                "model_type": "model_type"}


def _datasets(items: list[Any]) -> list[tuple[str, str]]:
    """`datasets=[{dataset_name, dataset_digest?}]` as (name, digest or "")."""
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, dict) or not isinstance(d.get("dataset_name"), str) \
                or not d["dataset_name"]:
            raise InvalidArgument(f"Invalid value for parameter 'datasets[{i}]': each entry "
                                  "needs a string dataset_name", field=f"datasets[{i}]")
        digest = d.get("dataset_digest") or ""
        out.append((d["dataset_name"], str(digest)))
    return out


def _metric_matches(m: dict[str, Any], wanted: list[tuple[str, str]]) -> bool:
    return any(m.get("dataset_name") == n and (not dg or m.get("dataset_digest") == dg)
               for n, dg in wanted)


def _has_dataset(doc: dict[str, Any], wanted: list[tuple[str, str]]) -> bool:
    """A model matches `datasets=` when it has a metric logged against one of them."""
    return any(_metric_matches(m, wanted) for m in doc.get("metrics", []))


def _order(items: list[Any]) -> list[tuple[str, bool, list[tuple[str, str]]]]:
    """`order_by=[{field_name, ascending?, dataset_name?, dataset_digest?}]`."""
    out = []
    for i, o in enumerate(items):
        if not isinstance(o, dict) or not isinstance(o.get("field_name"), str):
            raise InvalidArgument(f"Invalid value for parameter 'order_by[{i}]': each entry "
                                  "needs a string field_name", field=f"order_by[{i}]")
        field = o["field_name"]
        if field not in _ORDER_ATTRS and not field.startswith("metrics."):
            raise InvalidArgument(f"Invalid order_by field {field!r}: use one of "
                                  f"{sorted(_ORDER_ATTRS)} or metrics.<key>",
                                  field=f"order_by[{i}].field_name", received=field)
        ds = _datasets([o]) if o.get("dataset_name") else []
        out.append((field, o.get("ascending", True) is not False, ds))
    return out


def _sort_value(doc: dict[str, Any], field: str, ds: list[tuple[str, str]]) -> Any:
    if field in _ORDER_ATTRS:
        v = doc.get(_ORDER_ATTRS[field])
        return v if v not in (None, "") else None
    key = field[len("metrics."):]
    vals = [m for m in doc.get("metrics", []) if m.get("key") == key
            and (not ds or _metric_matches(m, ds))]
    if not vals:
        return None
    latest = max(vals, key=lambda m: (int(m.get("step") or 0), int(m.get("timestamp") or 0)))
    try:
        return float(latest.get("value"))
    except (TypeError, ValueError):
        return None


class LoggedModelRoutes:
    """Handlers of /mlflow/logged-models/*."""

    def __init__(self, c: Compat) -> None:
        self.c = c

    def _json(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {"model": logged_model_json(doc, self.c.model_artifact_uri(doc))}

    def _get(self, model_id: str) -> dict[str, Any]:
        doc = self.c.docs.get_model(model_id)
        if doc.get("deleted"):
            raise NotFound(f"Logged model with ID '{model_id}' not found.", field="model_id")
        return doc

    def _update(self, model_id: str, fn: Any) -> dict[str, Any]:
        self._get(model_id)

        def apply(doc: dict[str, Any] | None) -> dict[str, Any]:
            assert doc is not None
            fn(doc)
            doc["last_updated_timestamp_ms"] = _now()
            return doc

        return self.c.docs.update(self.c.docs.model_key(model_id), apply)

    async def create(self, a: Args) -> dict[str, Any]:
        # Canonical, as runs are: '02' is experiment 2 (found by searches of '2').
        exp_id = check_experiment_id(a.required("experiment_id"))
        await self.c.call(self.c.metadata.require_active_experiment, exp_id)
        # Stored as given, as MLflow does: a run of another server, or one not applied yet.
        source_run = a.text("source_run_id")
        now, model_id = _now(), f"m-{uuid.uuid4().hex}"
        doc: dict[str, Any] = {"model_id": model_id, "experiment_id": exp_id,
               "name": a.text("name") or random_run_name(), "creation_timestamp_ms": now,
               "last_updated_timestamp_ms": now, "status": "LOGGED_MODEL_PENDING",
               "model_type": a.text("model_type"), "source_run_id": source_run,
               "tags": dict(a.kv_list("tags")), "params": dict(a.kv_list("params")),
               "metrics": []}
        await self.c.call(self.c.docs.put, self.c.docs.model_key(model_id), doc)
        return self._json(doc)

    async def get(self, a: Args) -> dict[str, Any]:
        return self._json(await self.c.call(self._get, a.required("model_id")))

    async def finalize(self, a: Args) -> dict[str, Any]:
        status = a.required("status")
        if status not in STATUSES:
            raise InvalidArgument(f"Invalid logged model status {status!r}", field="status",
                                  received=status)
        doc = await self.c.call(self._update, a.required("model_id"),
                                lambda d: d.__setitem__("status", status))
        return self._json(doc)

    async def delete(self, a: Args) -> dict[str, Any]:
        await self.c.call(self._update, a.required("model_id"),
                          lambda d: d.__setitem__("deleted", True))
        return {}

    async def set_tags(self, a: Args) -> dict[str, Any]:
        tags: dict[str, str] = dict(a.kv_list("tags"))
        await self.c.call(self._update, a.required("model_id"),
                          lambda d: d.setdefault("tags", {}).update(tags))
        return {}

    async def delete_tag(self, a: Args) -> dict[str, Any]:
        key = a.required("tag_key")

        def drop(d: dict[str, Any]) -> None:
            if key not in d.get("tags", {}):
                raise NotFound(f"No tag with key {key!r} on logged model", field="tag_key")
            del d["tags"][key]

        await self.c.call(self._update, a.required("model_id"), drop)
        return {}

    async def log_params(self, a: Args) -> dict[str, Any]:
        params: dict[str, str] = dict(a.kv_list("params"))
        await self.c.call(self._update, a.required("model_id"),
                          lambda d: d.setdefault("params", {}).update(params))
        return {}

    def _search(self, exp_ids: list[str], text: str, max_results: int,
                token: str, datasets: list[Any] | None = None,
                order_by: list[Any] | None = None) -> dict[str, Any]:
        clauses = parse_filter(text)
        wanted = _datasets(datasets or [])
        docs = [d for d in self.c.docs.iter_models()
                if not d.get("deleted") and (not exp_ids or d["experiment_id"] in exp_ids)
                and _matches(d, clauses) and (not wanted or _has_dataset(d, wanted))]
        docs.sort(key=lambda d: (-d["creation_timestamp_ms"], d["model_id"]))
        for field, ascending, ds in reversed(_order(order_by or [])):
            present = [d for d in docs if _sort_value(d, field, ds) is not None]
            absent = [d for d in docs if _sort_value(d, field, ds) is None]
            present.sort(key=lambda d: _sort_value(d, field, ds), reverse=not ascending)
            docs = present + absent  # stable: earlier keys break ties; missing values last
        start = int(token) if token.isdigit() else 0
        page = docs[start:start + max_results]
        out: dict[str, Any] = {}
        if page:
            out["models"] = [self._json(d)["model"] for d in page]
        if start + max_results < len(docs):
            out["next_page_token"] = str(start + max_results)
        return out

    async def search(self, a: Args) -> dict[str, Any]:
        return await self.c.call(self._search, [canonical_experiment_id(str(e))
                                                for e in a.items("experiment_ids")],
                                 a.text("filter"), a.integer("max_results", 100) or 100,
                                 a.text("page_token"), a.items("datasets"),
                                 a.items("order_by"))

    async def list_artifacts(self, a: Args) -> dict[str, Any]:
        doc = await self.c.call(self._get, a.required("model_id"))
        path = a.text("artifact_directory_path")
        entries = await self.c.call(self.c.artifacts.list_artifacts, doc["model_id"],
                                    path or None)
        out: dict[str, Any] = {"root_uri": self.c.model_artifact_uri(doc)}
        files = [{"path": e.path, "is_dir": e.is_dir, **({} if e.is_dir else
                                                          {"file_size": e.size})}
                 for e in entries if e.path != path]
        if files:
            out["files"] = files
        return out


def add_routes(routes: MlflowRoutes, c: Compat) -> None:
    h = LoggedModelRoutes(c)
    lm = "/logged-models"
    for method, path, fn in (
        ("POST", lm, h.create), ("POST", f"{lm}/search", h.search),
        ("GET", f"{lm}/{{model_id}}", h.get), ("PATCH", f"{lm}/{{model_id}}", h.finalize),
        ("DELETE", f"{lm}/{{model_id}}", h.delete),
        ("PATCH", f"{lm}/{{model_id}}/tags", h.set_tags),
        ("DELETE", f"{lm}/{{model_id}}/tags/{{tag_key:path}}", h.delete_tag),
        ("POST", f"{lm}/{{model_id}}/params", h.log_params),
        ("GET", f"{lm}/{{model_id}}/artifacts/directories", h.list_artifacts),
    ):
        routes.add(method, path, fn)
