"""Wiring of auth into a server process: one call builds every piece.

`ServerAuth` hands the server its gRPC interceptor, the HTTP app wrapper,
the search-scoped metadata view, and the registry actor hooks (the search-scoped
query core is `metricflow.query.query_core(..., scoped=auth.enabled)`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from metricflow.auth._authn import Authenticator
from metricflow.auth._authz import Authorizer
from metricflow.auth._context import grpc_actor, http_actor
from metricflow.auth._guard import Guard
from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

log = logging.getLogger(__name__)


@dataclass
class ServerAuth:
    """Auth pieces of one server (built by `build_server_auth`)."""

    config: AuthConfig
    guard: Guard
    store: AuthStore | None

    @property
    def enabled(self) -> bool:
        return self.guard.enabled

    def interceptors(self) -> list[Any]:
        """gRPC server interceptors (always installed: limits apply with auth off too)."""
        from metricflow.auth._grpc import AuthInterceptor

        return [AuthInterceptor(self.guard)]

    def metadata_view(self, metadata: Any) -> Any:
        """The metadata store as request handlers should see it (filtered searches)."""
        if not self.enabled:
            return metadata
        from metricflow.auth._scoped import ScopedMetadataStore

        return ScopedMetadataStore(metadata)

    def actor_hooks(self) -> dict[str, Any]:
        """`actor_of=` for the registry services: the authenticated user, or the old default."""
        return {"grpc": grpc_actor, "http": http_actor} if self.enabled else {}

    def secure_http(self, app: Any) -> Any:
        """Wrap a FastAPI app: the guard dependency on every route, plus the admin API."""
        from metricflow.auth._admin_api import admin_router
        from metricflow.auth._http import secure_app

        extra = []
        if self.store is not None:
            extra.append(admin_router(self.store, self.guard.authn,
                                      self.config.max_token_ttl_days * 86400))
        return secure_app(app, self.guard, extra)


def build_server_auth(config: AuthConfig, metadata: Any, metric_store: Any,
                      run_wait_s: float = 0.0) -> ServerAuth:
    """Build the auth layer over the control-plane store and the data plane's run table.

    Args:
        metric_store: anything with `get_run_infos(run_ids)`; None = no data plane (only
            runs created through this process are known, see `Authorizer.remember_run`).
        run_wait_s: with the Kafka write path a run created a moment ago (on another node)
            may not be in ClickHouse yet; unknown runs are looked up again for this long.
    """
    engine = getattr(metadata, "engine", None)
    store = AuthStore(engine) if engine is not None else None
    if config.enabled and store is None:
        raise RuntimeError("auth needs a SQL metadata store (users, tokens, grants)")
    authn = Authenticator(store, config) if store is not None else None

    def lookup(run_ids: list[str]) -> dict[str, str]:
        if metric_store is None:
            return {}
        infos = metric_store.get_run_infos(run_ids)
        return {r: i.experiment_id for r, i in infos.items()}

    authz = (Authorizer(store, config, lookup,
                        run_wait_s=run_wait_s if metric_store is not None else 0.0)
             if store is not None else None)
    if authz is not None:
        authz.sees_all_runs = metric_store is not None
    if config.enabled and store is not None and not store.list_users():
        log.warning("auth is on but no users exist; create one with "
                    "`metricflow admin %s user create NAME --admin`", admin_store_flag(engine))
    return ServerAuth(config, Guard(config, authn, authz), store)


def admin_store_flag(engine: Any) -> str:
    """The `metricflow admin` flag naming this control-plane store (password hidden)."""
    import os
    import shlex

    from metricflow._uris import CONTROL, backend_key

    url = engine.url.render_as_string(hide_password=True)
    path = url.removeprefix("sqlite:///")
    if backend_key(CONTROL, url) == "sqlite" and os.path.basename(path) == "metadata.db":
        return f"--data-dir {shlex.quote(os.path.dirname(path))}"
    return f"--metadata {shlex.quote(url)}"
