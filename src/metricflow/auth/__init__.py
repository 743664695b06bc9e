"""Authentication, authorization, TLS and request limits.

- Tokens (`mft_...`, stored as SHA-256), passwords (argon2id), mTLS client certificates.
- MLflow-style permissions: READ < EDIT < MANAGE per experiment and registered model,
  admins, a default permission, MANAGE for creators, runs inherit from experiments.
- Enforced in one place per front end: `AuthInterceptor` (gRPC) and the FastAPI
  dependency added by `secure_app`, both driven by the table in `metricflow.auth.policy`.

Server pieces are imported lazily, so `import metricflow.auth` stays light. The
permission table and its rule constructors are `metricflow.auth.policy`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from metricflow.auth._context import caller, current, current_user
from metricflow.auth._params import ARGS_STATE
from metricflow.auth._types import SCOPES, AuthConfig, Permission, Principal

__all__ = [
    "ARGS_STATE", "CSRF_COOKIE", "SCOPES", "SESSION_COOKIE", "AuthConfig", "AuthInterceptor",
    "AuthStore", "Need", "Permission", "Principal", "ScopedMetadataStore",
    "ServerAuth", "TlsConfig", "bearer_channel", "build_server_auth", "caller", "check_csrf",
    "add_admin_parsers", "csrf_of", "current", "current_user", "grpc_server_credentials",
    "secure_app", "uvicorn_ssl_options",
]

_LAZY = {
    "AuthInterceptor": "metricflow.auth._grpc",
    "AuthStore": "metricflow.auth._store",
    "Need": "metricflow.auth._authz",
    "ServerAuth": "metricflow.auth._server",
    "build_server_auth": "metricflow.auth._server",
    "ScopedMetadataStore": "metricflow.auth._scoped",
    "TlsConfig": "metricflow.auth._tls",
    "grpc_server_credentials": "metricflow.auth._tls",
    "uvicorn_ssl_options": "metricflow.auth._tls",
    "secure_app": "metricflow.auth._http",
    "bearer_channel": "metricflow.auth._bearer",
    "CSRF_COOKIE": "metricflow.auth._cookie",
    "SESSION_COOKIE": "metricflow.auth._cookie",
    "check_csrf": "metricflow.auth._cookie",
    "csrf_of": "metricflow.auth._cookie",
    "add_admin_parsers": "metricflow.auth._cli",
}

if TYPE_CHECKING:
    from metricflow.auth._authz import Need
    from metricflow.auth._bearer import bearer_channel
    from metricflow.auth._cli import add_admin_parsers
    from metricflow.auth._cookie import CSRF_COOKIE, SESSION_COOKIE, check_csrf, csrf_of
    from metricflow.auth._grpc import AuthInterceptor
    from metricflow.auth._http import secure_app
    from metricflow.auth._scoped import ScopedMetadataStore
    from metricflow.auth._server import ServerAuth, build_server_auth
    from metricflow.auth._store import AuthStore
    from metricflow.auth._tls import TlsConfig, grpc_server_credentials, uvicorn_ssl_options


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metricflow.auth' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
