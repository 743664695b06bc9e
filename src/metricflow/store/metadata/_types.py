"""Control-plane value types; defined dependency-free in `metricflow.registry._types`."""

from __future__ import annotations

from metricflow.registry._types import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    LIFECYCLE_ACTIVE,
    LIFECYCLE_DELETED,
    STAGE_ARCHIVED,
    STAGE_NONE,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    STAGES,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_READY,
    VERSION_STATUSES,
    AuditEntry,
    Experiment,
    ModelVersion,
    RegisteredModel,
)

__all__ = [
    "DEFAULT_EXPERIMENT_ID", "DEFAULT_EXPERIMENT_NAME", "LIFECYCLE_ACTIVE", "LIFECYCLE_DELETED",
    "STAGES", "STAGE_ARCHIVED", "STAGE_NONE", "STAGE_PRODUCTION", "STAGE_STAGING",
    "STATUS_FAILED", "STATUS_PENDING", "STATUS_READY", "VERSION_STATUSES",
    "AuditEntry", "Experiment", "ModelVersion", "RegisteredModel",
]
