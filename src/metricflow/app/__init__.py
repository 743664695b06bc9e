"""The composition root: settings -> components (backends chosen by URI) -> roles.

    settings_from_args(args)          flags and METRICFLOW_* -> frozen ServerConfig
    build_components(settings)        MetricStore, MetadataStore, ArtifactStore, sink,
                                      auth, TrackingCore, QueryCore, writer: built once
    App(settings).start()             mounts the role's services on one gRPC server
                                      and one HTTP app (ROLES: what each role mounts)

`metricflow server` and the distributed roles (ingest, writer, query, registry)
are all built here; they differ only in the set of services they mount.
Modules load on first attribute access, so building the CLI's parser does not
load the servers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BACKENDS": "_backends", "Backend": "_backends", "backend_for": "_backends",
    "backend_key": "_backends", "CONTROL": "_backends", "DATA": "_backends",
    "BLOBS": "_backends", "SINK": "_backends",
    "open_blobs": "_backends", "open_metadata": "_backends", "open_metric_store": "_backends",
    "open_sink": "_backends",
    "Components": "_components", "NoRunLookup": "_components",
    "build_components": "_components",
    "add_role_flags": "_flags", "add_role_parsers": "_flags", "settings_from_args": "_flags",
    "tail_limits_from_env": "_flags", "writer_flag_errors": "_flags",
    "ROLES": "_roles", "Role": "_roles", "services": "_roles",
    "uses_kafka": "_roles", "uses_metadata": "_roles",
    "App": "_serve", "ServerThread": "_serve", "run": "_serve",
    "KafkaSettings": "_settings", "SecurityConfig": "_settings", "ServerConfig": "_settings",
    "Upstreams": "_settings", "auth_banner": "_settings", "resolve_auth": "_settings",
}

__all__ = [
    "BACKENDS", "BLOBS", "CONTROL", "DATA", "ROLES", "SINK", "App", "Backend", "Components",
    "KafkaSettings", "NoRunLookup", "Role", "SecurityConfig", "ServerConfig", "ServerThread",
    "Upstreams", "add_role_flags", "add_role_parsers", "auth_banner", "backend_for",
    "backend_key", "build_components", "open_blobs", "open_metadata", "open_metric_store",
    "open_sink", "resolve_auth", "run", "services", "settings_from_args",
    "tail_limits_from_env", "uses_kafka", "uses_metadata", "writer_flag_errors",
]

if TYPE_CHECKING:
    from metricflow.app._backends import (
        BACKENDS,
        BLOBS,
        CONTROL,
        DATA,
        SINK,
        Backend,
        backend_for,
        backend_key,
        open_blobs,
        open_metadata,
        open_metric_store,
        open_sink,
    )
    from metricflow.app._components import Components, NoRunLookup, build_components
    from metricflow.app._flags import (
        add_role_flags,
        add_role_parsers,
        settings_from_args,
        tail_limits_from_env,
        writer_flag_errors,
    )
    from metricflow.app._roles import ROLES, Role, services, uses_kafka, uses_metadata
    from metricflow.app._serve import App, ServerThread, run
    from metricflow.app._settings import (
        KafkaSettings,
        SecurityConfig,
        ServerConfig,
        Upstreams,
        auth_banner,
        resolve_auth,
    )


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
