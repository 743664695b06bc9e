"""HTTP/JSON routes for deployments under `/api/v1/deployments/` (issue 19).

Changes need MANAGE on the deployment's model, status reports from serve
processes EDIT, reads READ (the rules are in `auth/policy`). Errors are
`{"error_code", "message"}` with the status of `metricflow.errors.STATUS_TABLE`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from metricflow.auth import Permission, caller, current
from metricflow.entities import Deployment, Guardrails, StickyKey
from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.serving._deploy_ops import deployment_json, guardrails_from_json, sticky_from_json
from metricflow.store.metadata import variants_from_json

if TYPE_CHECKING:
    from metricflow.query import QueryCore
    from metricflow.store.metadata import MetadataStore

ActorOf = Callable[[Request], "str | None"]
ACTOR_HEADER = "X-Metricflow-Actor"


def actor_from_header(request: Request) -> str | None:
    """The caller with auth off: the X-Metricflow-Actor header, else the server's OS user."""
    return caller(request.headers.get(ACTOR_HEADER))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateDeployment(_Body):
    name: str
    model_name: str
    variants: list[Any]
    sticky_key: Any = None
    guardrails: Any = None
    description: str = ""


class UpdateDeployment(_Body):
    name: str
    variants: list[Any] | None = None
    sticky_key: Any = "unchanged"
    guardrails: Any = None
    description: str | None = None
    expected_version: int | None = None
    comment: str = ""


class DeploymentRef(_Body):
    name: str
    expected_version: int | None = None


class ReportStatus(_Body):
    name: str
    variant: str
    state: str
    version: str = ""
    reason: str = ""
    reporter: str = ""
    restore: bool = False


def _run(fn: Callable[[], Any]) -> JSONResponse:
    try:
        result = fn()
        return JSONResponse({} if result is None else result)
    except MetricflowError as e:
        return JSONResponse({"error_code": e.code.value, "message": e.message},
                            status_code=e.http_status)


def readable(deployments: list[Deployment]) -> list[Deployment]:
    """The deployments whose model the caller may READ (all of them with auth off)."""
    cur = current()
    if cur is None:
        return deployments
    p, authz = cur
    if p.admin:
        return deployments
    if p.ceiling < Permission.READ:
        return []
    levels: dict[str, bool] = {}
    out = []
    for d in deployments:
        if d.model_name not in levels:
            levels[d.model_name] = authz.model_level(p, d.model_name) >= Permission.READ
        if levels[d.model_name]:
            out.append(d)
    return out


def deployment_router(store: MetadataStore, query: QueryCore | None = None, *,
                      actor_of: ActorOf = actor_from_header) -> APIRouter:
    """Build the `/api/v1/deployments/` routes over `store` (and `query` for reports)."""
    r = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])
    from metricflow.serving._report import build_report, report_core

    reports = report_core(query)

    @r.post("/create")
    def create(body: CreateDeployment, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            sticky: StickyKey | None = sticky_from_json(body.sticky_key)
            guard: Guardrails | None = guardrails_from_json(body.guardrails)
            d = store.create_deployment(
                body.name, body.model_name, variants_from_json(body.variants),
                sticky_key=sticky, guardrails=guard, description=body.description,
                actor=actor_of(request))
            return {"deployment": deployment_json(d)}
        return _run(go)

    @r.post("/update")
    def update(body: UpdateDeployment, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            kw: dict[str, Any] = {}
            if body.variants is not None:
                kw["variants"] = variants_from_json(body.variants)
            if body.sticky_key != "unchanged":
                kw["sticky_key"] = sticky_from_json(body.sticky_key)
            if body.guardrails is not None:
                kw["guardrails"] = guardrails_from_json(body.guardrails)
            d = store.update_deployment(body.name, description=body.description,
                                        expected_version=body.expected_version,
                                        comment=body.comment, actor=actor_of(request), **kw)
            return {"deployment": deployment_json(d)}
        return _run(go)

    @r.get("/get")
    def get(name: str) -> JSONResponse:
        return _run(lambda: {"deployment": deployment_json(store.get_deployment(name))})

    @r.get("/list")
    def list_(model_name: str | None = None) -> JSONResponse:
        return _run(lambda: {"deployments": [
            deployment_json(d) for d in readable(store.list_deployments(model_name))]})

    @r.post("/delete")
    def delete(body: DeploymentRef, request: Request) -> JSONResponse:
        return _run(lambda: store.delete_deployment(
            body.name, expected_version=body.expected_version, actor=actor_of(request)))

    @r.post("/report-status")
    def report_status(body: ReportStatus, request: Request) -> JSONResponse:
        return _run(lambda: {"deployment": deployment_json(store.report_variant_status(
            body.name, body.variant, body.state, version=body.version, reason=body.reason,
            reporter=body.reporter, restore=body.restore, actor=actor_of(request)))})

    @r.get("/history")
    def history(name: str, max_results: int = 1000) -> JSONResponse:
        def go() -> dict[str, Any]:
            if not 1 <= max_results <= 10_000:
                raise InvalidArgument(f"max_results must be in [1, 10000], got {max_results}",
                                      field="max_results", limit=10_000, received=max_results)
            import dataclasses

            return {"entries": [dataclasses.asdict(e)
                                for e in store.deployment_history(name, max_results)]}
        return _run(go)

    @r.get("/report")
    def report(name: str, confidence: float = 0.95, baseline: str = "") -> JSONResponse:
        def go() -> dict[str, Any]:
            return build_report(store, reports, name, confidence=confidence,
                                baseline=baseline).to_dict()
        return _run(go)

    return r
