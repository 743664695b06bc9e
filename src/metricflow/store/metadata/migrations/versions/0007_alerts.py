"""Alerts and webhooks: rules, alert state, subscriptions and deliveries.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("experiment_ids", sa.Text, nullable=False),  # JSON list of ids
        sa.Column("run_filter", sa.Text, nullable=False),  # the search grammar
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("metric_key", sa.String(250), nullable=False),
        sa.Column("op", sa.String(4), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("window_steps", sa.Integer, nullable=False),
        sa.Column("stalled_s", sa.Float, nullable=False),
        sa.Column("for_s", sa.Float, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("channels", sa.Text, nullable=False),  # JSON list of webhook ids
        sa.Column("muted_until", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alert_states",
        sa.Column("rule_id", sa.Integer,
                  sa.ForeignKey("alert_rules.rule_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),  # pending | firing | resolved
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=True),
        sa.Column("pending_since", sa.BigInteger, nullable=True),
        sa.Column("fired_at", sa.BigInteger, nullable=True),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", sa.Text, nullable=False),  # JSON list of event names
        sa.Column("experiment_ids", sa.Text, nullable=False),  # JSON list; [] = every one
        sa.Column("secret", sa.String(512), nullable=False),
        sa.Column("payload_format", sa.String(16), nullable=False),  # json | slack
        sa.Column("status", sa.String(16), nullable=False),  # ACTIVE | DISABLED
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(32), nullable=False, unique=True),
        sa.Column("webhook_id", sa.Integer,
                  sa.ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | dead
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_status", "webhook_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_subject", "webhook_deliveries",
                    ["webhook_id", "subject", "seq"])


def downgrade() -> None:
    for t in ("webhook_deliveries", "webhooks", "alert_states", "alert_rules"):
        op.drop_table(t)
