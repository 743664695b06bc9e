"""Serving: deployments and their variants.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_STATES = "('serving', 'load_failed', 'out_of_rotation')"


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        # A deployment belongs to one registered model; deleting the model deletes it.
        sa.Column("model_id", sa.Integer,
                  sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  nullable=False),
        # Variants, sticky key and guardrails as one JSON document (validated in Python;
        # they are read and replaced together, never queried by part).
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False, server_default="1"),
        sa.UniqueConstraint("name", name="uq_deployments_name"),
    )
    op.create_index("ix_deployments_model", "deployments", ["model_id"])
    op.create_table(
        "deployment_variant_status",
        sa.Column("deployment_id", sa.Integer,
                  sa.ForeignKey("deployments.deployment_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("variant", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("version", sa.String(32), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("reporter", sa.String(256), nullable=False, server_default=""),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.CheckConstraint(f"state IN {_STATES}", name="ck_deployment_variant_status_state"),
    )


def downgrade() -> None:
    op.drop_table("deployment_variant_status")
    op.drop_index("ix_deployments_model", table_name="deployments")
    op.drop_table("deployments")
