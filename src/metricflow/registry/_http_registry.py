"""HTTP/JSON routes of the model registry and the audit log (experiments: `_http.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from metricflow.registry._http_common import (
    ActorOf,
    Alias,
    CreateModel,
    CreateVersion,
    LatestVersions,
    ModelRef,
    ModelTag,
    RenameModel,
    Search,
    Transition,
    UpdateModel,
    UpdateVersion,
    VersionRef,
    VersionTag,
    _json,
    _run,
)
from metricflow.registry._sources import check_new_source, check_source_readable

if TYPE_CHECKING:
    from metricflow.store.metadata import MetadataStore


def add_registry_routes(r: APIRouter, store: MetadataStore, actor_of: ActorOf) -> None:
    """Add registered-model, model-version and audit-log routes to `r`."""

    @r.post("/registered-models/create")
    def create_model(body: CreateModel, request: Request) -> JSONResponse:
        return _run(lambda: {"registered_model": _json(store.create_registered_model(
            body.name, body.tags, body.description, actor=actor_of(request)))})

    @r.get("/registered-models/get")
    def get_model(name: str) -> JSONResponse:
        return _run(lambda: {"registered_model": _json(store.get_registered_model(name))})

    @r.post("/registered-models/rename")
    def rename_model(body: RenameModel, request: Request) -> JSONResponse:
        return _run(lambda: {"registered_model": _json(store.rename_registered_model(
            body.name, body.new_name, expected_version=body.expected_version,
            actor=actor_of(request)))})

    @r.patch("/registered-models/update")
    def update_model(body: UpdateModel, request: Request) -> JSONResponse:
        return _run(lambda: {"registered_model": _json(store.update_registered_model(
            body.name, body.description, expected_version=body.expected_version,
            actor=actor_of(request)))})

    @r.post("/registered-models/delete")
    def delete_model(body: ModelRef, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_registered_model(
            body.name, expected_version=body.expected_version, actor=actor_of(request)))

    @r.post("/registered-models/set-tag")
    def set_model_tag(body: ModelTag, request: Request) -> JSONResponse:
        return _run(lambda: store.set_registered_model_tag(
            body.name, body.key, body.value, actor=actor_of(request)))

    @r.post("/registered-models/delete-tag")
    def delete_model_tag(body: ModelTag, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_registered_model_tag(
            body.name, body.key, actor=actor_of(request)))

    @r.post("/registered-models/search")
    def search_models(body: Search) -> JSONResponse:
        def go() -> dict[str, Any]:
            page, token = store.search_registered_models(
                body.filter, body.max_results or 100, body.order_by, body.page_token)
            return {"registered_models": _json(page), "next_page_token": token}
        return _run(go)

    @r.post("/registered-models/alias")
    def set_alias(body: Alias, request: Request) -> JSONResponse:
        return _run(lambda: store.set_registered_model_alias(
            body.name, body.alias, body.version, actor=actor_of(request)))

    @r.delete("/registered-models/alias")
    def delete_alias(name: str, alias: str, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_registered_model_alias(
            name, alias, actor=actor_of(request)))

    @r.get("/registered-models/alias")
    def get_by_alias(name: str, alias: str) -> JSONResponse:
        return _run(lambda: {"model_version": _json(
            store.get_model_version_by_alias(name, alias))})

    @r.post("/model-versions/create")
    def create_version(body: CreateVersion, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            check_new_source(body.source, run_id=body.run_id or "")
            return {"model_version": _json(store.create_model_version(
                body.name, body.source, body.run_id, body.tags, body.description,
                body.run_link, actor=actor_of(request)))}
        return _run(go)

    @r.get("/model-versions/get")
    def get_version(name: str, version: str) -> JSONResponse:
        return _run(lambda: {"model_version": _json(store.get_model_version(name, version))})

    @r.patch("/model-versions/update")
    def update_version(body: UpdateVersion, request: Request) -> JSONResponse:
        return _run(lambda: {"model_version": _json(store.update_model_version(
            body.name, body.version, body.description, expected_version=body.expected_version,
            actor=actor_of(request)))})

    @r.post("/model-versions/delete")
    def delete_version(body: VersionRef, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_model_version(
            body.name, body.version, expected_version=body.expected_version,
            actor=actor_of(request)))

    @r.post("/model-versions/transition-stage")
    def transition(body: Transition, request: Request) -> JSONResponse:
        return _run(lambda: {"model_version": _json(store.transition_model_version_stage(
            body.name, body.version, body.stage, body.archive_existing_versions,
            comment=body.comment, expected_version=body.expected_version,
            actor=actor_of(request)))})

    @r.post("/model-versions/set-tag")
    def set_version_tag(body: VersionTag, request: Request) -> JSONResponse:
        return _run(lambda: store.set_model_version_tag(
            body.name, body.version, body.key, body.value, actor=actor_of(request)))

    @r.post("/model-versions/delete-tag")
    def delete_version_tag(body: VersionTag, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_model_version_tag(
            body.name, body.version, body.key, actor=actor_of(request)))

    @r.post("/registered-models/get-latest-versions")
    def latest_versions(body: LatestVersions) -> JSONResponse:
        return _run(lambda: {"model_versions": _json(
            store.get_latest_versions(body.name, body.stages))})

    @r.post("/model-versions/search")
    def search_versions(body: Search) -> JSONResponse:
        def go() -> dict[str, Any]:
            page, token = store.search_model_versions(
                body.filter, body.max_results or 1000, body.order_by, body.page_token)
            return {"model_versions": _json(page), "next_page_token": token}
        return _run(go)

    @r.get("/model-versions/resolve")
    def resolve(model_uri: str) -> JSONResponse:
        def go() -> dict[str, Any]:
            mv = store.resolve_model_uri(model_uri)
            check_source_readable(mv.source)  # again for the reader (docs/registry.md)
            return {"model_version": _json(mv), "artifact_location":
                    store.get_model_version_download_uri(mv.name, mv.version)}
        return _run(go)

    @r.get("/audit-log/search")
    def search_audit(model_name: str | None = None, actor: str | None = None,
                     experiment_id: str | None = None, action: str | None = None,
                     max_results: int = 1000, page_token: str | None = None) -> JSONResponse:
        def go() -> dict[str, Any]:
            entries, token = store.search_audit_log(
                model_name=model_name, actor=actor, experiment_id=experiment_id,
                action=action, max_results=max_results, page_token=page_token)
            return {"entries": _json(entries), "next_page_token": token}
        return _run(go)
