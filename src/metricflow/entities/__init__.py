"""Value types shared by the client, the stores, query, ingest, the registry and artifacts.

Dependency-free (the standard library, and numpy for point columns); their protobuf
converters are in `metricflow.entities.pb`. Unset is None everywhere (see `RunInfo`,
`MetricSummary`).
"""

from __future__ import annotations

from metricflow.entities._metrics import DecodedMetrics
from metricflow.entities._registry import (
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
from metricflow.entities._run import (
    LIFECYCLE_STAGES,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    MetricSummary,
    Run,
    RunInfo,
)
from metricflow.entities._serving import (
    STATE_LOAD_FAILED,
    STATE_OUT_OF_ROTATION,
    STATE_SERVING,
    STICKY_SOURCES,
    VARIANT_STATES,
    Deployment,
    Guardrails,
    StickyKey,
    Variant,
    VariantStatus,
    deployment_from_dict,
    deployment_to_dict,
)

__all__ = [
    "DEFAULT_EXPERIMENT_ID", "DEFAULT_EXPERIMENT_NAME", "LIFECYCLE_ACTIVE", "LIFECYCLE_DELETED",
    "LIFECYCLE_STAGES", "RUN_STATUSES", "STAGES", "STAGE_ARCHIVED", "STAGE_NONE",
    "STAGE_PRODUCTION", "STAGE_STAGING", "STATUS_FAILED", "STATUS_PENDING", "STATUS_READY",
    "TERMINAL_STATUSES", "VERSION_STATUSES",
    "AuditEntry", "DecodedMetrics", "Experiment", "MetricSummary", "ModelVersion",
    "RegisteredModel", "Run", "RunInfo",
    "STATE_LOAD_FAILED", "STATE_OUT_OF_ROTATION", "STATE_SERVING", "STICKY_SOURCES",
    "VARIANT_STATES", "Deployment", "Guardrails", "StickyKey", "Variant", "VariantStatus",
    "deployment_from_dict", "deployment_to_dict",
]
