"""The composition root: settings -> components (backends chosen by URI) -> roles.

    settings_from_args(args)          flags and METRICFLOW_* -> frozen ServerConfig
    build_components(settings)        MetricStore, MetadataStore, ArtifactStore, sink,
                                      auth, TrackingCore, QueryCore, writer: built once
    App(settings).start()             mounts the role's services on one gRPC server
                                      and one HTTP app (ROLES: what each role mounts)

`metricflow server` and the distributed roles (ingest, writer, query, registry)
are all built here; they differ only in the set of services they mount.
"""

from __future__ import annotations

from metricflow.app._backends import (
    BACKENDS,
    Backend,
    backend_for,
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
from metricflow.app._roles import ROLES, Role, services
from metricflow.app._serve import App, ServerThread, run
from metricflow.app._settings import (
    KafkaSettings,
    SecurityConfig,
    ServerConfig,
    Upstreams,
    auth_banner,
    resolve_auth,
)

__all__ = [
    "BACKENDS", "ROLES", "App", "Backend", "Components", "KafkaSettings", "NoRunLookup",
    "Role", "SecurityConfig", "ServerConfig", "ServerThread", "Upstreams", "add_role_flags",
    "add_role_parsers", "auth_banner", "backend_for", "build_components", "open_blobs",
    "open_metadata", "open_metric_store", "open_sink", "resolve_auth", "run", "services",
    "settings_from_args", "tail_limits_from_env", "writer_flag_errors",
]
