"""MLflow 3.17.2's length limits: experiment names up to 500 characters, experiment tag
values up to 20,000, registered-model and model-version tag values up to 100,000.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_WIDER = [("experiments", "name", sa.String(256), sa.String(500)),
          ("experiment_tags", "value", sa.String(5000), sa.String(20000)),
          ("registered_model_tags", "value", sa.String(5000), sa.Text()),
          ("model_version_tags", "value", sa.String(5000), sa.Text())]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite does not enforce VARCHAR lengths: nothing to widen
    for table, column, old, new in _WIDER:
        op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, old, new in _WIDER:
        op.alter_column(table, column, type_=old, existing_type=new, existing_nullable=False)
