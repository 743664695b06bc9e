"""Value types of the control plane (experiments, registry, audit log).

Pure Python with no server dependencies, so the gRPC client can return them;
the metadata store, the registry and the client all use these same classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)

STATUS_PENDING = "PENDING_REGISTRATION"
STATUS_READY = "READY"
STATUS_FAILED = "FAILED_REGISTRATION"
VERSION_STATUSES = (STATUS_PENDING, STATUS_READY, STATUS_FAILED)

LIFECYCLE_ACTIVE = "active"
LIFECYCLE_DELETED = "deleted"
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


@dataclass(frozen=True)
class Experiment:
    """An experiment: a named group of runs with its own artifact location."""

    experiment_id: str
    """String id; "0" is Default, new ids are integers as strings."""
    name: str
    artifact_location: str
    lifecycle_stage: str
    """"active" or "deleted"."""
    tags: Mapping[str, str]
    creation_time: int
    """ms since epoch."""
    last_update_time: int
    """ms since epoch."""


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model; `row_version` is the optimistic-concurrency token."""

    name: str
    description: str
    creation_timestamp: int
    last_updated_timestamp: int
    tags: Mapping[str, str]
    aliases: Mapping[str, str]
    """alias -> version (as a string, MLflow style)."""
    latest_versions: tuple[ModelVersion, ...] = ()
    """The newest version in each stage."""
    row_version: int = 1


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model; `row_version` guards concurrent updates."""

    name: str
    version: str
    """The version number as a string ("1", "2", ...), as MLflow returns it."""
    source: str
    run_id: str
    description: str
    status: str
    status_message: str
    current_stage: str
    creation_timestamp: int
    last_updated_timestamp: int
    tags: Mapping[str, str]
    aliases: tuple[str, ...]
    user_id: str = ""
    run_link: str = ""
    row_version: int = 1


@dataclass(frozen=True)
class AuditEntry:
    """One append-only audit record: who did what, when, with before/after state."""

    id: int
    timestamp: int
    """ms since epoch."""
    actor: str
    action: str
    entity_type: str
    """"experiment", "registered_model" or "model_version"."""
    entity_id: str
    """Experiment id, model name, or "<model name>/<version>" at the time of the change."""
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    comment: str = ""
    model_name: str = ""
    version: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
