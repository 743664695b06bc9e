"""MLflow compatibility: the MLflow REST API and `mlflow-artifacts` proxy on metricflow.

Set `MLFLOW_TRACKING_URI=http://<host>:<http_port>` and the official `mlflow`
client, autologging and model flavors work against a metricflow server. Writes
go through the server's TrackingCore (same rules and sink as metricflow's own
gRPC API), reads through QueryCore and the stores, registry calls through the
control plane, and artifacts through the content-addressed ArtifactStore.

`routers(MlflowParts(...))` is mounted by the composition root (metricflow.app)
on every HTTP app that serves the query API. See docs/mlflow.md for the
endpoint table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from metricflow.mlflow_compat._parts import MlflowParts

__all__ = ["MlflowParts", "live_logged_model_ids", "routers"]


def live_logged_model_ids(blobs: Any) -> set[str]:
    """Logged-model ids whose artifacts artifact GC must keep (see `_documents.py`)."""
    from metricflow.mlflow_compat._documents import (
        live_logged_model_ids as _live,
    )

    return _live(blobs)


def routers(parts: MlflowParts) -> Iterable[Any]:
    """FastAPI routers serving MLflow's REST API over `parts`."""
    from metricflow.mlflow_compat import (  # server extras load lazily
        _artifacts,
        _experiments,
        _graphql,
        _logged_models,
        _metrics,
        _registry,
        _runs,
    )
    from metricflow.mlflow_compat._context import Compat
    from metricflow.mlflow_compat._routing import API_PREFIXES, GENAI_PATHS, MlflowRoutes
    from metricflow.mlflow_compat._rules import anyone_read

    c = Compat(parts)
    routes = MlflowRoutes()
    for module in (_experiments, _runs, _metrics, _registry, _logged_models, _artifacts):
        module.add_routes(routes, c)

    async def server_info(_: Any) -> dict[str, Any]:
        return {"store_type": "metricflow", "workspaces_enabled": False,
                "trace_archival_enabled": False, "multipart_uploads_enabled": True,
                "multipart_downloads_enabled": False,
                "presigned_upload_run_id_supported": False,
                "presigned_upload_model_id_supported": False, "features_enabled": {}}

    routes.add("GET", "/server-info", server_info,
               prefixes=["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"])
    _graphql.add_routes(routes, c)
    routes.not_found_fallback([*API_PREFIXES, "/api/3.0/mlflow", "/ajax-api/3.0/mlflow"])
    routes.genai_fallback(GENAI_PATHS, anyone_read())
    return [routes.router]
