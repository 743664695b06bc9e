"""SQLAlchemy Core tables of users, API tokens and permissions (revisions 0003, 0008).

They live in the control-plane database next to experiments and models, so a
permission row can reference its experiment or model with ON DELETE CASCADE:
a hard-deleted model takes its grants with it, and a new model that reuses the
name starts with none. The DDL is in `migrations/versions/0003_auth.py`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

PERMISSIONS_SQL = "('NO_PERMISSIONS', 'READ', 'EDIT', 'MANAGE')"

users = sa.Table(
    "auth_users", metadata,
    sa.Column("username", sa.String(256), primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

tokens = sa.Table(
    "auth_tokens", metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(256),
              sa.ForeignKey("auth_users.username", ondelete="CASCADE"), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(64), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    # revision 0008: the API token a `ui-session` token was signed in with (NULL otherwise)
    sa.Column("parent_token_id", sa.String(32), nullable=True),
)

experiment_permissions = sa.Table(
    "auth_experiment_permissions", metadata,
    sa.Column("experiment_id", sa.Integer,
              sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("username", sa.String(256),
              sa.ForeignKey("auth_users.username", ondelete="CASCADE"), primary_key=True),
    sa.Column("permission", sa.String(16), nullable=False),
)

model_permissions = sa.Table(
    "auth_model_permissions", metadata,
    sa.Column("model_id", sa.Integer,
              sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("username", sa.String(256),
              sa.ForeignKey("auth_users.username", ondelete="CASCADE"), primary_key=True),
    sa.Column("permission", sa.String(16), nullable=False),
)
