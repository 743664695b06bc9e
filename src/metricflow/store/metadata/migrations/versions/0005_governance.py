"""Governance: approvals, policies, the audit hash chain and lineage.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved for issue 21; filled in with its tables


def downgrade() -> None:
    pass
