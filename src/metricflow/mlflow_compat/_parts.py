"""What the MLflow front end is built on (light: no server extras imported)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MlflowParts:
    """What the MLflow REST routes are built on (the server passes exactly these)."""

    store: Any
    """The data plane (MetricStore): run reads the query core does not cover."""
    metadata: Any
    """The control plane as handlers see it (scoped to the caller when auth is on)."""
    artifacts: Any
    """The ArtifactStore (mlflow-artifacts proxy, logged-model documents)."""
    tracking: Any
    """The process's TrackingCore: MLflow writes take metricflow's validation and sink."""
    query: Any
    """The process's QueryCore (caller-scoped when auth is on)."""
    artifact_root: str = ""
    """Server-managed artifact root, shown to MLflow as mlflow-artifacts:/..."""
    authz: Any = None
    """The auth Authorizer (learns who owns a logged model), or None with auth off."""
