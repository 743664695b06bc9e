"""Authentication, authorization, TLS and request limits.

- Tokens (`mft_...`, stored as SHA-256), passwords (argon2id), mTLS client certificates.
- MLflow-style permissions: READ < EDIT < MANAGE per experiment and registered model,
  admins, a default permission, MANAGE for creators, runs inherit from experiments.
- Enforced in one place per front end: `AuthInterceptor` (gRPC) and the FastAPI
  dependency added by `secure_app`, both driven by the table in `_policy.py`.

Server pieces are imported lazily, so `import metricflow.auth` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from metricflow.auth._types import SCOPES, AuthConfig, Permission, Principal

__all__ = ["SCOPES", "AuthConfig", "AuthInterceptor", "AuthStore", "Permission", "Principal",
           "ServerAuth", "TlsConfig", "bearer_channel", "build_server_auth", "secure_app"]

_LAZY = {
    "AuthInterceptor": "metricflow.auth._grpc",
    "AuthStore": "metricflow.auth._store",
    "ServerAuth": "metricflow.auth._server",
    "build_server_auth": "metricflow.auth._server",
    "TlsConfig": "metricflow.auth._tls",
    "secure_app": "metricflow.auth._http",
    "bearer_channel": "metricflow.auth._bearer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metricflow.auth' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
