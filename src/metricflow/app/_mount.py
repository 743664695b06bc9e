"""Mount a process's services on its one gRPC server and its one HTTP app.

Each service is a few lines here, fed the components it needs and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc

from metricflow.app._components import Components
from metricflow.app._roles import (
    ALERTS,
    GRPC_SERVICES,
    HTTP_QUERY,
    HTTP_REGISTRY,
    MLFLOW,
    UI,
    WRITER,
)
from metricflow.server import ARTIFACTS, INGEST, QUERY, REGISTRY

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from metricflow.auth import ServerAuth

Facts = dict[str, object]
"""What the app's `/` reports (role, grpc_port, serves, forwards); completed once bound."""


def mount_grpc(server: grpc.aio.Server, c: Components) -> None:
    """Add the process's client-facing gRPC services (health is added by the runner)."""
    if INGEST in c.services:
        from metricflow.ingest import IngestServicer
        from metricflow.ingest import add_to_server as add_ingest

        assert c.tracking is not None
        add_ingest(server, IngestServicer(c.tracking))
    if QUERY in c.services:
        from metricflow.query import add_to_server as add_query

        assert c.query is not None
        add_query(server, c.query)
    if REGISTRY in c.services:
        from metricflow.registry import add_to_server

        assert c.auth is not None and c.metadata_view is not None
        hooks = c.auth.actor_hooks()
        add_to_server(server, c.metadata_view, **({"actor_of": hooks["grpc"]} if hooks else {}))
        from metricflow.serving import add_to_server as add_deployments

        add_deployments(server, c.metadata_view, c.query,  # query: the report (None: refused)
                        **({"actor_of": hooks["grpc"]} if hooks else {}))
        from metricflow.governance import add_to_server as add_governance

        add_governance(server, c.metadata_view)  # approvals, policies, lineage
        if c.alerts is not None:
            from metricflow.alerts import add_alerts_to_server

            add_alerts_to_server(server, c.alerts, _run_experiment(c),
                                 **({"actor_of": hooks["grpc"]} if hooks else {}))
    if ARTIFACTS in c.services:
        from metricflow.artifacts import add_to_server as add_artifacts

        assert c.artifacts is not None
        add_artifacts(server, c.artifacts)


def grpc_kinds(c: Components) -> frozenset[str]:
    """The client-facing gRPC kinds this process serves itself (the rest it forwards)."""
    return c.services & GRPC_SERVICES


def build_app(c: Components, facts: Facts) -> FastAPI:
    """The process's HTTP app: the query API (with the registry, the MLflow API and the
    web UI) where the role reads ClickHouse, else the ops endpoints (plus the registry
    API on a registry node). Apps serving an API are wrapped by the auth guard."""
    routers: list[APIRouter] = []
    if HTTP_REGISTRY in c.services:
        routers.append(_registry_router(c))
        routers.append(_deployment_router(c))
        routers.append(_governance_router(c))
    if MLFLOW in c.services:
        routers.extend(_mlflow_routers(c))
    if c.alerts is not None and c.services & {HTTP_REGISTRY, HTTP_QUERY, ALERTS}:
        routers.append(_alerts_router(c))
    ready: Callable[[], bool] = lambda: c.ready  # noqa: E731 - read at each probe
    if HTTP_QUERY in c.services:
        from metricflow.server import create_app

        assert c.query is not None
        app = create_app(c.query, extra_routers=routers, ready=ready, index=facts)
        if UI in c.services:  # before the auth guard wraps the app
            from metricflow.ui import mount_ui

            mount_ui(app, core=c.query)
    else:
        from metricflow.server import ops_app

        app = ops_app(ready, facts, api=bool(routers))
        for r in routers:
            app.include_router(r)
    if WRITER in c.services:
        from metricflow.server import add_writer_stats

        assert c.writer is not None
        add_writer_stats(app, c.writer)
    if routers or HTTP_QUERY in c.services:
        assert c.auth is not None
        app = _secure(c.auth, app)
    return app


def _secure(auth: ServerAuth, app: FastAPI) -> FastAPI:
    secured: FastAPI = auth.secure_http(app)
    return secured


def _registry_router(c: Components) -> APIRouter:
    from metricflow.registry import registry_router

    assert c.auth is not None and c.metadata_view is not None
    hooks = c.auth.actor_hooks()
    router: APIRouter = registry_router(
        c.metadata_view, **({"actor_of": hooks["http"]} if hooks else {}))
    return router


def _governance_router(c: Components) -> APIRouter:
    """/api/v1/approvals, /api/v1/policies and /api/v1/lineage (metricflow.governance)."""
    from metricflow.governance import governance_router

    assert c.metadata_view is not None
    router: APIRouter = governance_router(c.metadata_view)
    return router


def _alerts_router(c: Components) -> APIRouter:
    """/api/v1/alerts and /api/v1/webhooks (metricflow.alerts)."""
    from metricflow.alerts import alerts_router

    assert c.alerts is not None and c.auth is not None
    hooks = c.auth.actor_hooks()
    router: APIRouter = alerts_router(c.alerts, _run_experiment(c),
                                      **({"actor_of": hooks["http"]} if hooks else {}))
    return router


def _run_experiment(c: Components) -> Callable[[str], str]:
    """A run's experiment, for `mf.alert` (NotFound when this process's data plane does
    not show the run)."""
    from metricflow.errors import NotFound

    store = c.store

    def run_experiment(run_id: str) -> str:
        info = store.get_run_infos([run_id]).get(run_id) if store is not None else None
        if info is None:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id", received=run_id)
        return str(info.experiment_id)
    return run_experiment


def _deployment_router(c: Components) -> APIRouter:
    from metricflow.serving import deployment_router

    assert c.auth is not None and c.metadata_view is not None
    hooks = c.auth.actor_hooks()
    router: APIRouter = deployment_router(
        c.metadata_view, c.query, **({"actor_of": hooks["http"]} if hooks else {}))
    return router


def _mlflow_routers(c: Components) -> list[APIRouter]:
    """The MLflow REST API and artifact proxy over this process's cores and stores."""
    from metricflow.mlflow_compat import MlflowParts, routers

    assert c.auth is not None
    parts = MlflowParts(store=c.store, metadata=c.metadata_view, artifacts=c.artifacts,
                        tracking=c.tracking, query=c.query,
                        artifact_root=c.artifact_root, authz=c.auth.guard.authz)
    return list(routers(parts))

