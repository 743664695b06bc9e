"""Model registry and experiments (control plane): gRPC/HTTP services and client.

- `RegistryClient(channel)`: MLflow-style sync client over gRPC.
- `add_to_server(server, store)`: registers ExperimentService and RegistryService.
- `registry_router(store)`: FastAPI routes under `/api/v1/` (needs the server extra).

The services and router are imported lazily so `import metricflow.registry`
needs only grpcio and protobuf.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metricflow.entities import (
    AuditEntry,
    Experiment,
    ModelVersion,
    RegisteredModel,
)
from metricflow.registry._client import PagedList, RegistryClient

if TYPE_CHECKING:
    from metricflow.registry._http import registry_router
    from metricflow.registry._servicer import ExperimentServicer, add_to_server
    from metricflow.registry._servicer_registry import RegistryServicer
    from metricflow.registry._sources import check_new_source, check_source_readable

__all__ = [
    "AuditEntry", "Experiment", "ExperimentServicer", "ModelVersion", "PagedList",
    "RegisteredModel", "RegistryClient", "RegistryServicer", "add_to_server",
    "check_new_source", "check_source_readable", "registry_router",
]

_LAZY = {
    "add_to_server": "metricflow.registry._servicer",
    "ExperimentServicer": "metricflow.registry._servicer",
    "RegistryServicer": "metricflow.registry._servicer_registry",
    "registry_router": "metricflow.registry._http",
    "check_new_source": "metricflow.registry._sources",
    "check_source_readable": "metricflow.registry._sources",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metricflow.registry' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
