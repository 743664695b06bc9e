"""The MLflow REST API's rows of the permission table (`HTTP_RULES`).

MLflow's basic-auth semantics: runs inherit their experiment's permission,
logging needs EDIT, deleting/restoring needs MANAGE, searches are filtered to
what the caller may read (the run search in SQL through ScopedQueryCore,
experiment/model searches by ScopedMetadataStore). Artifact proxy paths name
their run (`<exp>/<run_id>/artifacts/...`) or logged model
(`<exp>/models/<m-id>/artifacts/...`); the experiment id in the path is the
client's claim and is ignored: the owner is looked up.
"""

from __future__ import annotations

import re
from typing import Any

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._types import Permission
from metricflow.auth.policy._common import (
    E,
    M,
    R,
    Rule,
    _create_version,
    _exp_by_name,
    _list,
    _str,
    anyone,
    exp,
    model,
    search,
)
from metricflow.errors import InvalidArgument

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_V3 = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")

_RUN_PATH = re.compile(r"^[^/]+/(?P<id>[0-9a-f]{32})/artifacts(?:/.*)?$")
_MODEL_PATH = re.compile(r"^[^/]+/models/(?P<id>m-[0-9a-f]{32})/artifacts(?:/.*)?$")


def _run_of(r: Any) -> str:
    return _str(r, "run_id") or _str(r, "run_uuid")


def run_any(level: Permission) -> Rule:
    """One run, named `run_id` or (older MLflow clients) `run_uuid`."""
    return Rule(lambda a, r: [Need("run", _run_of(r), level)])


def _logged_model(level: Permission) -> Rule:
    return Rule(lambda a, r: [Need("logged_model", _str(r, "model_id"), level)])


def _proxy_path(level: Permission, field: str) -> Rule:
    def resolve(a: Authorizer, r: Any) -> list[Need]:
        p = _str(r, field).strip("/")
        m = _RUN_PATH.match(p)
        if m:
            return [Need("run", m.group("id"), level)]
        m = _MODEL_PATH.match(p)
        if m:
            return [Need("logged_model", m.group("id"), level)]
        raise InvalidArgument(f"artifact path {p[:200]!r} is not inside a run or logged model "
                              "of this server", field=field, received=p[:200])
    return Rule(resolve)


def _runs_bulk(a: Authorizer, r: Any) -> list[Need]:
    ids = _list(r, "run_ids")
    return [Need("run", i, R) for i in ids] if ids else [Need("admin", "", M)]


def _experiments_listed(a: Authorizer, r: Any) -> list[Need]:
    ids = _list(r, "experiment_ids")
    return [Need("experiment", i, R) for i in ids] if ids else [Need("admin", "", M)]


def _create_logged_model(a: Authorizer, r: Any) -> list[Need]:
    needs = [Need("experiment", _str(r, "experiment_id"), E)]
    if _str(r, "source_run_id"):
        needs.append(Need("run", _str(r, "source_run_id"), R))
    return needs


def mlflow_rules() -> dict[tuple[str, str], Rule]:
    """Every MLflow route (all prefixes) -> its rule; unknown MLflow paths answer 404 to
    any authenticated reader (the `{rest:path}` fallback)."""
    api: list[tuple[str, str, Any]] = [
        # experiments
        ("POST", "/experiments/create", anyone(E)),
        ("GET", "/experiments/get", exp(R)),
        ("GET", "/experiments/get-by-name", Rule(_exp_by_name)),
        ("POST", "/experiments/search", search()), ("GET", "/experiments/search", search()),
        ("POST", "/experiments/update", exp(E)), ("POST", "/experiments/delete", exp(M)),
        ("POST", "/experiments/restore", exp(M)),
        ("POST", "/experiments/set-experiment-tag", exp(E)),
        ("POST", "/experiments/delete-experiment-tag", exp(E)),
        # runs
        ("POST", "/runs/create", exp(E, default="0")),
        ("GET", "/runs/get", run_any(R)), ("POST", "/runs/update", run_any(E)),
        ("POST", "/runs/delete", run_any(M)), ("POST", "/runs/restore", run_any(M)),
        ("POST", "/runs/search", search()),
        *(("POST", f"/runs/{op}", run_any(E)) for op in (
            "log-metric", "log-parameter", "log-batch", "set-tag", "delete-tag", "log-inputs",
            "outputs", "log-model")),
        # metrics and artifact listing
        ("GET", "/metrics/get-history", run_any(R)),
        ("GET", "/metrics/get-history-bulk-interval", Rule(_runs_bulk)),
        ("GET", "/artifacts/list", run_any(R)),
        # registry
        ("POST", "/registered-models/create", anyone(E)),
        ("GET", "/registered-models/get", model(R)),
        ("POST", "/registered-models/rename", model(E)),
        ("PATCH", "/registered-models/update", model(E)),
        ("DELETE", "/registered-models/delete", model(M)),
        ("GET", "/registered-models/search", search()),
        ("POST", "/registered-models/get-latest-versions", model(R)),
        ("GET", "/registered-models/get-latest-versions", model(R)),
        ("POST", "/registered-models/set-tag", model(E)),
        ("DELETE", "/registered-models/delete-tag", model(E)),
        ("POST", "/registered-models/alias", model(E)),
        ("DELETE", "/registered-models/alias", model(E)),
        ("GET", "/registered-models/alias", model(R)),
        ("POST", "/model-versions/create", Rule(_create_version)),
        ("GET", "/model-versions/get", model(R)),
        ("PATCH", "/model-versions/update", model(E)),
        ("DELETE", "/model-versions/delete", model(M)),
        ("POST", "/model-versions/transition-stage", model(E)),
        ("GET", "/model-versions/search", search()),
        ("GET", "/model-versions/get-download-uri", model(R)),
        ("POST", "/model-versions/set-tag", model(E)),
        ("DELETE", "/model-versions/delete-tag", model(E)),
        # logged models (MLflow 3)
        ("POST", "/logged-models", Rule(_create_logged_model)),
        ("POST", "/logged-models/search", Rule(_experiments_listed)),
        ("GET", "/logged-models/{model_id}", _logged_model(R)),
        ("PATCH", "/logged-models/{model_id}", _logged_model(E)),
        ("DELETE", "/logged-models/{model_id}", _logged_model(M)),
        ("PATCH", "/logged-models/{model_id}/tags", _logged_model(E)),
        ("DELETE", "/logged-models/{model_id}/tags/{tag_key:path}", _logged_model(E)),
        ("POST", "/logged-models/{model_id}/params", _logged_model(E)),
        ("GET", "/logged-models/{model_id}/artifacts/directories", _logged_model(R)),
    ]
    out: dict[tuple[str, str], Any] = {}
    for prefix in MLFLOW_PREFIXES:
        for method, path, rule in api:
            out[(method, prefix + path)] = rule
    for prefix in (*MLFLOW_PREFIXES, *_V3):
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            out[(method, prefix + "/{rest:path}")] = anyone(R)  # ENDPOINT_NOT_FOUND answers
    for prefix in _V3:
        out[("GET", prefix + "/server-info")] = anyone(R)
    art = "/artifacts/{artifact_path:path}"
    for prefix in ARTIFACT_PREFIXES:
        out[("GET", prefix + "/artifacts")] = _proxy_path(R, "path")
        out[("GET", prefix + art)] = _proxy_path(R, "artifact_path")
        out[("PUT", prefix + art)] = _proxy_path(E, "artifact_path")
        out[("DELETE", prefix + art)] = _proxy_path(E, "artifact_path")
        for op in ("create", "complete", "abort"):
            out[("POST", prefix + f"/mpu/{op}/{{artifact_path:path}}")] = \
                _proxy_path(E, "artifact_path")
        # A part belongs to an upload id handed out by mpu/create (which needed EDIT on
        # the run); mpu/complete checks the run again before anything becomes visible.
        out[("PUT", prefix + "/mpu/part/{upload_id}/{part_number}")] = anyone(E)
        out[("GET", prefix + "/presigned/{artifact_path:path}")] = _proxy_path(R, "artifact_path")
    return out
