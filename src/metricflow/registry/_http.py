"""HTTP/JSON routes for experiments, the model registry and the audit log.

`registry_router(store)` returns a FastAPI `APIRouter` with every route under
`/api/v1/`; the server mounts it. Errors are `{"error_code", "message"}` with
the HTTP status from `metricflow.errors.STATUS_TABLE`. The acting user comes
from the `X-Metricflow-Actor` header until auth supplies identities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from metricflow.registry._http_common import (
    ActorOf,
    CreateExperiment,
    ExperimentRef,
    ExperimentTag,
    RenameExperiment,
    SearchExperiments,
    _json,
    _run,
    actor_from_header,
)
from metricflow.registry._http_registry import add_registry_routes

if TYPE_CHECKING:
    from metricflow.store.metadata import MetadataStore


def registry_router(store: MetadataStore, *, actor_of: ActorOf = actor_from_header
                    ) -> APIRouter:
    """Build the `/api/v1/` routes for `store` (experiments, registry, audit log)."""
    r = APIRouter(prefix="/api/v1", tags=["experiments"])

    @r.post("/experiments/create")
    def create_experiment(body: CreateExperiment, request: Request) -> JSONResponse:
        return _run(lambda: {"experiment_id": store.create_experiment(
            body.name, body.artifact_location, body.tags, actor=actor_of(request))})

    @r.get("/experiments/get")
    def get_experiment(experiment_id: str) -> JSONResponse:
        return _run(lambda: {"experiment": _json(store.get_experiment(experiment_id))})

    @r.get("/experiments/get-by-name")
    def get_experiment_by_name(experiment_name: str) -> JSONResponse:
        return _run(lambda: {"experiment": _json(store.get_experiment_by_name(experiment_name))})

    @r.post("/experiments/search")
    def search_experiments(body: SearchExperiments) -> JSONResponse:
        def go() -> dict[str, Any]:
            page, token = store.search_experiments(body.filter, body.view_type,
                                                   body.max_results or 1000, body.order_by,
                                                   body.page_token)
            return {"experiments": _json(page), "next_page_token": token}
        return _run(go)

    @r.post("/experiments/update")
    def rename_experiment(body: RenameExperiment, request: Request) -> JSONResponse:
        return _run(lambda: store.rename_experiment(body.experiment_id, body.new_name,
                                                    actor=actor_of(request)))

    @r.post("/experiments/delete")
    def delete_experiment(body: ExperimentRef, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_experiment(body.experiment_id,
                                                    actor=actor_of(request)))

    @r.post("/experiments/restore")
    def restore_experiment(body: ExperimentRef, request: Request) -> JSONResponse:
        return _run(lambda: store.restore_experiment(body.experiment_id,
                                                     actor=actor_of(request)))

    @r.post("/experiments/set-experiment-tag")
    def set_experiment_tag(body: ExperimentTag, request: Request) -> JSONResponse:
        return _run(lambda: store.set_experiment_tag(body.experiment_id, body.key, body.value,
                                                     actor=actor_of(request)))

    @r.post("/experiments/delete-experiment-tag")
    def delete_experiment_tag(body: ExperimentTag, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_experiment_tag(body.experiment_id, body.key,
                                                        actor=actor_of(request)))

    add_registry_routes(r, store, actor_of)
    return r
