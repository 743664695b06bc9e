"""The server parts the MLflow front end works on, and artifact URI translation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, TypeVar

from metricflow.errors import InvalidArgument, NotFound
from metricflow.mlflow_compat._convert import run_json
from metricflow.mlflow_compat._documents import DocumentStore
from metricflow.mlflow_compat._parts import MlflowParts

T = TypeVar("T")

_RUN_PATH = re.compile(r"^[^/]+/(?P<id>[0-9a-f]{32})/artifacts(?:/(?P<rest>.*))?$")
_MODEL_PATH = re.compile(r"^[^/]+/models/(?P<id>m-[0-9a-f]{32})/artifacts(?:/(?P<rest>.*))?$")


class Compat:
    """What every MLflow route needs: stores, the write core, the query core, documents.

    Writes go through `tracking` (TrackingCore) so MLflow-logged data takes the
    same validation and sink path as metricflow's own clients; reads use
    `query` (QueryCore) and `store`; the control plane is `metadata`.
    """

    def __init__(self, parts: MlflowParts) -> None:
        self.store = parts.store
        self.metadata = parts.metadata
        self.artifacts = parts.artifacts
        self.tracking = parts.tracking
        self.query = parts.query  # the process's one QueryCore (caller-scoped with auth on)
        self.docs = DocumentStore(self.artifacts.blobs)
        self.artifact_root = parts.artifact_root.rstrip("/")
        if parts.authz is not None:
            parts.authz.owners["logged_model"] = self._logged_model_experiment

    def _logged_model_experiment(self, model_id: str) -> str | None:
        """Owner experiment of a logged model, for authorization (None = no such model)."""
        if not re.fullmatch(r"m-[0-9a-f]{32}", model_id or ""):
            return None
        try:
            doc = self.docs.get(self.docs.model_key(model_id))
        except Exception:  # a malformed id is just "does not exist"
            return None
        return str(doc["experiment_id"]) if doc and not doc.get("deleted") else None

    @staticmethod
    def created_run(info: Any) -> None:
        """Tell the authorizer who owns a run created by this request (it may not be in the
        data plane yet on the Kafka write path)."""
        from metricflow.auth import current

        cur = current()
        if cur is not None and cur[1] is not None:
            cur[1].remember_run(info.run_id, info.experiment_id)

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # ------------------------------------------------------------------ URIs
    def _server_managed(self, uri: str) -> bool:
        root = self.artifact_root
        return bool(root) and (uri.rstrip("/") == root or uri.startswith(root + "/"))

    def experiment_location(self, e: Any) -> str:
        """Server-managed locations are shown as `mlflow-artifacts:/<experiment_id>`."""
        loc = e.artifact_location or ""
        if not loc or self._server_managed(loc):
            return f"mlflow-artifacts:/{e.experiment_id}"
        return loc

    def run_artifact_uri(self, info: Any) -> str:
        uri = info.artifact_uri or ""
        if not uri or self._server_managed(uri):
            return f"mlflow-artifacts:/{info.experiment_id}/{info.run_id}/artifacts"
        return uri

    @staticmethod
    def model_artifact_uri(doc: dict[str, Any]) -> str:
        return f"mlflow-artifacts:/{doc['experiment_id']}/models/{doc['model_id']}/artifacts"

    @staticmethod
    def resolve_proxy_path(path: str) -> tuple[str, str]:
        """`<exp>/<run_id>/artifacts/<p>` or `<exp>/models/<model_id>/artifacts/<p>` ->
        (artifact-store owner id, relative path)."""
        p = path.strip("/")
        m = _RUN_PATH.match(p) or _MODEL_PATH.match(p)
        if m is None:
            raise InvalidArgument(
                f"artifact path {path!r} is not inside a run or logged model of this server "
                "(expected <experiment_id>/<run_id>/artifacts/... or "
                "<experiment_id>/models/<model_id>/artifacts/...)", field="path",
                received=path[:200])
        return m.group("id"), (m.group("rest") or "").strip("/")

    # ------------------------------------------------------------------ runs
    def runs_json(self, runs: list[Any]) -> list[dict[str, Any]]:
        """MLflow Run objects for metricflow Runs, with inputs/outputs documents."""
        extras = self.docs.run_extras([r.info.run_id for r in runs])
        return [run_json(r.info, self.run_artifact_uri(r.info), r.params, r.tags, r.metrics,
                         extras.get(r.info.run_id)) for r in runs]

    def load_run_json(self, run_id: str) -> dict[str, Any]:
        runs = self.query.load_runs([check_run(run_id)])
        if not runs:
            raise NotFound(f"Run with id={run_id} not found", field="run_id", received=run_id)
        return self.runs_json(runs)[0]

    def run_info(self, run_id: str) -> Any:
        info = self.store.get_run_infos([check_run(run_id)]).get(run_id)
        if info is None:
            raise NotFound(f"Run with id={run_id} not found", field="run_id", received=run_id)
        return info


def check_run(run_id: str) -> str:
    """MLflow answers unknown or malformed run ids alike: RESOURCE_DOES_NOT_EXIST."""
    if not re.fullmatch(r"[0-9a-f]{32}", run_id or ""):
        raise NotFound(f"Run with id={run_id} not found", field="run_id", received=run_id)
    return run_id
