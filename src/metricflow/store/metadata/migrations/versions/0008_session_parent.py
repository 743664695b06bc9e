"""Auth: a UI session token records the API token it was signed in with.

`auth_tokens.parent_token_id` is NULL for ordinary tokens and for sessions signed
in with a password; for a `ui-session` token minted from an API token it names
that token, so revoking (or the expiry of) the token ends its sessions at once.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column("parent_token_id", sa.String(32), nullable=True))
    op.create_index("ix_auth_tokens_parent", "auth_tokens", ["parent_token_id"])


def downgrade() -> None:
    op.drop_index("ix_auth_tokens_parent", table_name="auth_tokens")
    op.drop_column("auth_tokens", "parent_token_id")
