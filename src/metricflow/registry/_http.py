"""HTTP/JSON routes for experiments, the model registry and the audit log.

`registry_router(store)` returns a FastAPI `APIRouter` with every route under
`/api/v1/`; the server mounts it. Errors are `{"error_code", "message"}` with
the HTTP status from `metricflow.errors.STATUS_TABLE`. The acting user comes
from the `X-Metricflow-Actor` header until auth supplies identities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from metricflow.auth._context import caller
from metricflow.errors import MetricflowError

if TYPE_CHECKING:
    from metricflow.store.metadata import MetadataStore

ActorOf = Callable[[Request], "str | None"]
ACTOR_HEADER = "X-Metricflow-Actor"


def actor_from_header(request: Request) -> str | None:
    """The caller with auth off: the X-Metricflow-Actor header, else the server's OS user
    (`metricflow.auth._context.caller`, the rule runs use too)."""
    return caller(request.headers.get(ACTOR_HEADER))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperiment(_Body):
    name: str
    artifact_location: str | None = None
    tags: dict[str, str] = {}


class ExperimentRef(_Body):
    experiment_id: str


class RenameExperiment(ExperimentRef):
    new_name: str


class ExperimentTag(ExperimentRef):
    key: str
    value: str = ""


class Search(_Body):
    filter: str = ""
    max_results: int | None = None
    order_by: list[str] = []
    page_token: str | None = None


class SearchExperiments(Search):
    view_type: str = "active"


class CreateModel(_Body):
    name: str
    tags: dict[str, str] = {}
    description: str = ""


class ModelRef(_Body):
    name: str
    expected_version: int | None = None


class RenameModel(ModelRef):
    new_name: str


class UpdateModel(ModelRef):
    description: str


class ModelTag(_Body):
    name: str
    key: str
    value: str = ""


class Alias(_Body):
    name: str
    alias: str
    version: str = ""


class CreateVersion(_Body):
    name: str
    source: str
    run_id: str | None = None
    tags: dict[str, str] = {}
    description: str = ""
    run_link: str = ""


class VersionRef(ModelRef):
    version: str


class UpdateVersion(VersionRef):
    description: str


class Transition(VersionRef):
    stage: str
    archive_existing_versions: bool = False
    comment: str = ""


class VersionTag(ModelTag):
    version: str


class LatestVersions(_Body):
    name: str
    stages: list[str] = []


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _run(fn: Callable[[], Any]) -> JSONResponse:
    try:
        result = fn()
        return JSONResponse({} if result is None else _json(result))
    except MetricflowError as e:
        return JSONResponse({"error_code": e.code.value, "message": e.message},
                            status_code=e.http_status)


def registry_router(store: MetadataStore, *, actor_of: ActorOf = actor_from_header
                    ) -> APIRouter:
    """Build the `/api/v1/` routes for `store` (experiments, registry, audit log)."""
    from metricflow.registry._http_registry import add_registry_routes

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
