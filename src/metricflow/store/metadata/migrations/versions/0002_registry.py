"""Model registry: models, versions, tags, aliases; audit columns for models.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STAGES = "('None', 'Staging', 'Production', 'Archived')"
_STATUSES = "('PENDING_REGISTRATION', 'READY', 'FAILED_REGISTRATION')"


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("model_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        # Counter of the last version number handed out; never decremented, so
        # numbers are not reused after a delete.
        sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("row_version", sa.Integer, nullable=False, server_default="1"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", sa.Integer,
                  sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(5000), nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer,
                  sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("run_link", sa.String(1000), nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False, server_default=""),
        sa.Column("current_stage", sa.String(32), nullable=False, server_default="None"),
        sa.Column("user_id", sa.String(256), nullable=False, server_default=""),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False, server_default="1"),
        sa.CheckConstraint(f"current_stage IN {_STAGES}", name="ck_model_versions_stage"),
        sa.CheckConstraint(f"status IN {_STATUSES}", name="ck_model_versions_status"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_stage", "model_versions", ["model_id", "current_stage"])
    op.create_table(
        "model_version_tags",
        sa.Column("model_id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(5000), nullable=False),
        sa.ForeignKeyConstraint(["model_id", "version"],
                                ["model_versions.model_id", "model_versions.version"],
                                ondelete="CASCADE"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer, primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["model_id", "version"],
                                ["model_versions.model_id", "model_versions.version"],
                                ondelete="CASCADE"),
    )
    # Plain ADD COLUMN (no table rebuild), so the audit log's triggers and rows stay put.
    op.add_column("audit_log", sa.Column("model_id", sa.Integer, nullable=True))
    op.add_column("audit_log", sa.Column("model_name", sa.String(256), nullable=True))
    op.add_column("audit_log", sa.Column("version", sa.Integer, nullable=True))
    op.create_index("ix_audit_model", "audit_log", ["model_id", "id"])


def downgrade() -> None:
    raise NotImplementedError("the control-plane schema is never downgraded")
