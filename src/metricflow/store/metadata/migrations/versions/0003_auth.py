"""Auth: users, API tokens (hashes only), per-experiment and per-model permissions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PERMS = "('NO_PERMISSIONS', 'READ', 'EDIT', 'MANAGE')"


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("username", sa.String(256), primary_key=True),
        # argon2id PHC string; NULL = the user signs in with tokens only.
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(256),
                  sa.ForeignKey("auth_users.username", ondelete="CASCADE"), nullable=False),
        # SHA-256 of the 256-bit random secret; the secret itself is never stored.
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_auth_tokens_user", "auth_tokens", ["username"])
    op.create_table(
        "auth_experiment_permissions",
        sa.Column("experiment_id", sa.Integer,
                  sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("username", sa.String(256),
                  sa.ForeignKey("auth_users.username", ondelete="CASCADE"), primary_key=True),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.CheckConstraint(f"permission IN {_PERMS}", name="ck_auth_exp_perm"),
    )
    op.create_index("ix_auth_exp_perm_user", "auth_experiment_permissions", ["username"])
    op.create_table(
        "auth_model_permissions",
        sa.Column("model_id", sa.Integer,
                  sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("username", sa.String(256),
                  sa.ForeignKey("auth_users.username", ondelete="CASCADE"), primary_key=True),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.CheckConstraint(f"permission IN {_PERMS}", name="ck_auth_model_perm"),
    )
    op.create_index("ix_auth_model_perm_user", "auth_model_permissions", ["username"])


def downgrade() -> None:
    raise NotImplementedError("the control-plane schema is never downgraded")
