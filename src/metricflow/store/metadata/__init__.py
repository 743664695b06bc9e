"""Control-plane metadata store: experiments, model registry and audit log.

`open_metadata_store("sqlite:///abs/path.db")` or
`open_metadata_store("postgresql+psycopg://user@host/db")` returns a ready
`MetadataStore`: the schema is migrated to the newest revision on open.
"""

from __future__ import annotations

import os
from pathlib import Path

from metricflow.entities import (
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
    AuditEntry,
    Experiment,
    ModelVersion,
    RegisteredModel,
)
from metricflow.store.metadata._approvals import model_of_request
from metricflow.store.metadata._base import (
    MetadataStoreConfig,
    RunArtifactResolver,
    SourceChecker,
)
from metricflow.store.metadata._chain import (
    GENESIS as AUDIT_GENESIS,
)
from metricflow.store.metadata._chain import (
    AnchorForged,
    ChainProblem,
    ChainReport,
    append_audit,
    check_anchor_signature,
    iter_entries,
    make_anchor,
    seed_audit_rows,
    verify_anchor,
    verify_chain,
)
from metricflow.store.metadata._chain import (
    canonical as audit_canonical,
)
from metricflow.store.metadata._chain import (
    entry_hash as audit_entry_hash,
)
from metricflow.store.metadata._deploy_validate import (
    check_deployment_name,
    parse_sticky_key,
    variants_from_json,
)
from metricflow.store.metadata._deployments_read import model_of_deployment
from metricflow.store.metadata._engine import (
    READONLY_OPTION,
    create_metadata_engine,
    read_only_sessions,
)
from metricflow.store.metadata._gov_types import (
    ApprovalRequest,
    ApprovalRequired,
    DatasetInput,
    GateSubject,
    LineageEdge,
    LineageGraph,
    LineageNode,
    Policy,
    PolicyGate,
    PolicyViolation,
    ProtectedTarget,
    Violation,
    Vote,
)
from metricflow.store.metadata._lineage import dataset_inputs_from_mlflow
from metricflow.store.metadata._migrate import current_revision, head_revision, upgrade
from metricflow.store.metadata._protocol import (
    AuditLog,
    DeploymentStore,
    ExperimentStore,
    MetadataStore,
    ModelStore,
    ModelVersionStore,
)
from metricflow.store.metadata._sql_store import SqlMetadataStore
from metricflow.store.metadata._tables import (  # tables that auth's tables refer to
    approvers,
    audit_log,
    experiments,
    registered_models,
)
from metricflow.store.metadata._uris import (
    check_artifact_host,
    host_addressed_scheme,
    parse_model_uri,
    parse_runs_uri,
)
from metricflow.store.metadata._validate import (
    MAX_ID,
    canonical_experiment_id,
    check_experiment_id,
    check_row_id,
)

__all__ = [
    "DEFAULT_EXPERIMENT_ID", "DEFAULT_EXPERIMENT_NAME", "LIFECYCLE_ACTIVE", "LIFECYCLE_DELETED",
    "MAX_ID",
    "STAGES", "STAGE_ARCHIVED", "STAGE_NONE", "STAGE_PRODUCTION", "STAGE_STAGING",
    "STATUS_FAILED", "STATUS_PENDING", "STATUS_READY", "READONLY_OPTION",
    "AuditEntry", "AuditLog", "Experiment", "ExperimentStore", "MetadataStore",
    "MetadataStoreConfig", "ModelStore", "ModelVersion", "ModelVersionStore",
    "RegisteredModel", "RunArtifactResolver", "SourceChecker", "SqlMetadataStore",
    "approvers", "audit_log", "canonical_experiment_id", "check_artifact_host",
    "check_experiment_id", "check_row_id",
    "create_metadata_engine", "current_revision", "experiments", "head_revision",
    "host_addressed_scheme", "open_metadata_store",
    "parse_model_uri", "parse_runs_uri", "registered_models", "upgrade",
    "DeploymentStore", "check_deployment_name", "model_of_deployment", "parse_sticky_key",
    "variants_from_json",
    "ApprovalRequest", "ApprovalRequired", "ChainProblem", "ChainReport", "DatasetInput",
    "GateSubject", "LineageEdge", "LineageGraph", "LineageNode", "Policy", "PolicyGate",
    "PolicyViolation", "ProtectedTarget", "Violation", "Vote", "append_audit",
    "dataset_inputs_from_mlflow", "iter_entries", "make_anchor", "model_of_request",
    "seed_audit_rows", "verify_anchor", "verify_chain",
    "AUDIT_GENESIS", "AnchorForged", "audit_canonical", "audit_entry_hash",
    "check_anchor_signature",
]


def open_metadata_store(
    uri: str,
    *,
    default_artifact_root: str | None = None,
    require_transition_comment: bool = False,
    source_exists: SourceChecker | None = None,
    run_artifact_uri: RunArtifactResolver | None = None,
    config: MetadataStoreConfig | None = None,
    read_uri: str | None = None,
    policy_gate: PolicyGate | None = None,
) -> MetadataStore:
    """Open (creating and migrating as needed) the metadata store at `uri`.

    Args:
        uri: `sqlite:///abs/path.db` or `postgresql+psycopg://...`.
        default_artifact_root: experiments created without a location get
            `<root>/<experiment_id>`. Defaults to `file://<db dir>/artifacts` for
            SQLite and `file://<cwd>/metricflow-data/artifacts` otherwise.
        require_transition_comment: stage transitions must carry a comment.
        source_exists: `(run_id, path) -> bool` check of `runs:/` version sources.
        run_artifact_uri: `(run_id, path) -> uri` used to resolve `runs:/` sources.
        config: full settings; the keyword arguments above override its fields.
        read_uri: a replica of `uri` (a PostgreSQL standby) that the read-only
            transactions (`get_*`, `search_*`, `list_*`) use; every write, and every
            read a write depends on, stays on `uri`. Never migrated or written: its
            sessions are read-only.
        policy_gate: evaluates governance policies (`metricflow.governance.policy_gate`).
    """
    base = config or MetadataStoreConfig()
    root = default_artifact_root or base.default_artifact_root or _default_root(uri)
    cfg = MetadataStoreConfig(
        default_artifact_root=root,
        require_transition_comment=require_transition_comment or base.require_transition_comment,
        source_exists=source_exists or base.source_exists,
        run_artifact_uri=run_artifact_uri or base.run_artifact_uri,
        busy_timeout_ms=base.busy_timeout_ms, pool_size=base.pool_size,
        auto_migrate=base.auto_migrate, policy_gate=policy_gate or base.policy_gate,
    )
    engine = create_metadata_engine(uri, busy_timeout_ms=cfg.busy_timeout_ms,
                                    pool_size=cfg.pool_size)
    read_engine = None
    try:
        if read_uri:
            read_engine = create_metadata_engine(read_uri, busy_timeout_ms=cfg.busy_timeout_ms,
                                                 pool_size=cfg.pool_size)
            read_only_sessions(read_engine)
        return SqlMetadataStore(engine, cfg, read_engine)
    except BaseException:
        engine.dispose()
        if read_engine is not None:
            read_engine.dispose()
        raise


def _default_root(uri: str) -> str:
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        return (db.parent.absolute() / "artifacts").as_uri()
    return (Path(os.getcwd()) / "metricflow-data" / "artifacts").as_uri()
