"""Value types <-> registry protobuf messages (both directions)."""

from __future__ import annotations

import json

from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb
from metricflow.entities import AuditEntry, Experiment, ModelVersion, RegisteredModel


def experiment_to_pb(e: Experiment) -> pb.Experiment:
    return pb.Experiment(experiment_id=e.experiment_id, name=e.name,
                         artifact_location=e.artifact_location,
                         lifecycle_stage=e.lifecycle_stage, tags=dict(e.tags),
                         creation_time=e.creation_time, last_update_time=e.last_update_time)


def experiment_from_pb(m: pb.Experiment) -> Experiment:
    return Experiment(m.experiment_id, m.name, m.artifact_location, m.lifecycle_stage,
                      dict(m.tags), m.creation_time, m.last_update_time)


def version_to_pb(v: ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(
        name=v.name, version=v.version, source=v.source, run_id=v.run_id,
        description=v.description, status=v.status, status_message=v.status_message,
        current_stage=v.current_stage, creation_timestamp=v.creation_timestamp,
        last_updated_timestamp=v.last_updated_timestamp, tags=dict(v.tags),
        aliases=list(v.aliases), user_id=v.user_id, run_link=v.run_link,
        row_version=v.row_version)


def version_from_pb(m: pb.ModelVersion) -> ModelVersion:
    return ModelVersion(
        name=m.name, version=m.version, source=m.source, run_id=m.run_id,
        description=m.description, status=m.status, status_message=m.status_message,
        current_stage=m.current_stage, creation_timestamp=m.creation_timestamp,
        last_updated_timestamp=m.last_updated_timestamp, tags=dict(m.tags),
        aliases=tuple(m.aliases), user_id=m.user_id, run_link=m.run_link,
        row_version=m.row_version)


def model_to_pb(r: RegisteredModel) -> pb.RegisteredModel:
    return pb.RegisteredModel(
        name=r.name, description=r.description, creation_timestamp=r.creation_timestamp,
        last_updated_timestamp=r.last_updated_timestamp, tags=dict(r.tags),
        aliases=dict(r.aliases), latest_versions=[version_to_pb(v) for v in r.latest_versions],
        row_version=r.row_version)


def model_from_pb(m: pb.RegisteredModel) -> RegisteredModel:
    return RegisteredModel(
        name=m.name, description=m.description, creation_timestamp=m.creation_timestamp,
        last_updated_timestamp=m.last_updated_timestamp, tags=dict(m.tags),
        aliases=dict(m.aliases),
        latest_versions=tuple(version_from_pb(v) for v in m.latest_versions),
        row_version=m.row_version)


def audit_to_pb(a: AuditEntry) -> pb.AuditEntry:
    return pb.AuditEntry(
        id=a.id, timestamp=a.timestamp, actor=a.actor, action=a.action,
        entity_type=a.entity_type, entity_id=a.entity_id,
        before_json="" if a.before is None else json.dumps(a.before, sort_keys=True),
        after_json="" if a.after is None else json.dumps(a.after, sort_keys=True),
        comment=a.comment, model_name=a.model_name, version=a.version)


def audit_from_pb(m: pb.AuditEntry) -> AuditEntry:
    return AuditEntry(
        id=m.id, timestamp=m.timestamp, actor=m.actor, action=m.action,
        entity_type=m.entity_type, entity_id=m.entity_id,
        before=json.loads(m.before_json) if m.before_json else None,
        after=json.loads(m.after_json) if m.after_json else None,
        comment=m.comment, model_name=m.model_name, version=m.version)
