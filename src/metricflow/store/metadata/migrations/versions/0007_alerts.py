"""Alerts and webhooks: rules, alert state, subscriptions and deliveries.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved for issue 20; filled in with its tables


def downgrade() -> None:
    pass
