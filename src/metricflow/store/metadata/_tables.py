"""SQLAlchemy Core tables of the latest control-plane schema (used for queries).

The DDL itself lives in the versioned migrations under `migrations/versions/`;
these definitions must match the head revision (a test checks that).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# BIGINT is not a rowid alias on SQLite, so it would not autoincrement there.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

experiments = sa.Table(
    "experiments", metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False, unique=True),
    sa.Column("artifact_location", sa.String(1000), nullable=False),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

experiment_tags = sa.Table(
    "experiment_tags", metadata,
    sa.Column("experiment_id", sa.Integer,
              sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(20000), nullable=False),
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(512), nullable=False),
    sa.Column("before_json", sa.Text, nullable=True),
    sa.Column("after_json", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    # Added in revision 0002 (registry): the model's surrogate id survives renames.
    sa.Column("model_id", sa.Integer, nullable=True),
    sa.Column("model_name", sa.String(256), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    # Added in revision 0005 (governance): the hash chain (store/metadata/_chain.py).
    sa.Column("prev_hash", sa.String(64), nullable=True),
    sa.Column("entry_hash", sa.String(64), nullable=True),
)

registered_models = sa.Table(
    "registered_models", metadata,
    sa.Column("model_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False),
    sa.Column("row_version", sa.Integer, nullable=False),
)

registered_model_tags = sa.Table(
    "registered_model_tags", metadata,
    sa.Column("model_id", sa.Integer,
              sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions", metadata,
    sa.Column("model_id", sa.Integer,
              sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("run_link", sa.String(1000), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("status_message", sa.Text, nullable=False),
    sa.Column("current_stage", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    sa.Column("row_version", sa.Integer, nullable=False),
)

model_version_tags = sa.Table(
    "model_version_tags", metadata,
    sa.Column("model_id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["model_id", "version"],
                            ["model_versions.model_id", "model_versions.version"],
                            ondelete="CASCADE"),
)

model_aliases = sa.Table(
    "model_aliases", metadata,
    sa.Column("model_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(["model_id", "version"],
                            ["model_versions.model_id", "model_versions.version"],
                            ondelete="CASCADE"),
)

# Revision 0006 (serving): deployments and what serve processes report about variants.
deployments = sa.Table(
    "deployments", metadata,
    sa.Column("deployment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("model_id", sa.Integer,
              sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    sa.Column("row_version", sa.Integer, nullable=False),
)

deployment_variant_status = sa.Table(
    "deployment_variant_status", metadata,
    sa.Column("deployment_id", sa.Integer,
              sa.ForeignKey("deployments.deployment_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("variant", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reporter", sa.String(256), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
)

# Revision 0005 (governance): approvals, policies, lineage. The DDL is in
# migrations/versions/0005_governance.py.
protected_targets = sa.Table(
    "protected_targets", metadata,
    sa.Column("target_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer,
              sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), nullable=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("pattern", sa.String(256), nullable=False),
    sa.Column("approvals_required", sa.Integer, nullable=False),
    sa.Column("expiry_s", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

approvers = sa.Table(
    "governance_approvers", metadata,
    sa.Column("grant_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer,
              sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), nullable=True),
    sa.Column("username", sa.String(256), nullable=False),
    sa.Column("granted_by", sa.String(256), nullable=False),
    sa.Column("granted_at", sa.BigInteger, nullable=False),
)

approval_requests = sa.Table(
    "approval_requests", metadata,
    sa.Column("request_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, nullable=False),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("archive_existing", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("requester", sa.String(256), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("approvals_required", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("resolved_at", sa.BigInteger, nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("version_row_version", sa.Integer, nullable=False),
    sa.Column("model_last_version", sa.Integer, nullable=False),
)

approval_votes = sa.Table(
    "approval_votes", metadata,
    sa.Column("request_id", BigId,
              sa.ForeignKey("approval_requests.request_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("approver", sa.String(256), primary_key=True),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
)

policies = sa.Table(
    "governance_policies", metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

datasets = sa.Table(
    "datasets", metadata,
    sa.Column("dataset_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("digest", sa.String(256), nullable=False),
    sa.Column("source_type", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("schema", sa.Text, nullable=False),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("name", "digest", name="uq_datasets_name_digest"),
)

run_inputs = sa.Table(
    "run_inputs", metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("dataset_id", BigId,
              sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("context", sa.String(64), nullable=False),
    sa.Column("tags_json", sa.Text, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
)
