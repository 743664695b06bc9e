"""SQLAlchemy Core tables of alerts and webhooks (revision 0007; the DDL is in
`store/metadata/migrations/versions/0007_alerts.py`, a test checks they match)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

alert_rules = sa.Table(
    "alert_rules", metadata,
    sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("experiment_ids", sa.Text, nullable=False),
    sa.Column("run_filter", sa.Text, nullable=False),
    sa.Column("condition", sa.String(16), nullable=False),
    sa.Column("metric_key", sa.String(250), nullable=False),
    sa.Column("op", sa.String(4), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("window_steps", sa.Integer, nullable=False),
    sa.Column("stalled_s", sa.Float, nullable=False),
    sa.Column("for_s", sa.Float, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("channels", sa.Text, nullable=False),
    sa.Column("muted_until", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

alert_states = sa.Table(
    "alert_states", metadata,
    sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.rule_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=True),
    sa.Column("pending_since", sa.BigInteger, nullable=True),
    sa.Column("fired_at", sa.BigInteger, nullable=True),
    sa.Column("resolved_at", sa.BigInteger, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

webhooks = sa.Table(
    "webhooks", metadata,
    sa.Column("webhook_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("experiment_ids", sa.Text, nullable=False),
    sa.Column("secret", sa.String(512), nullable=False),
    sa.Column("payload_format", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(32), nullable=False, unique=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.webhook_id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("event_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
)
