"""Governance: the audit hash chain, approvals, policies and dataset lineage.

Adds `prev_hash`/`entry_hash` to `audit_log` and chains the rows already there (in
id order, with the same function the writer uses), protected targets, approvers,
approval requests and votes, versioned policies, datasets and run inputs.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild), so the audit log's triggers stay put.
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("entry_hash", sa.String(64), nullable=True))
    op.create_index("ix_audit_entry_hash", "audit_log", ["entry_hash"])
    _chain_existing_rows()
    op.create_table(
        "protected_targets",
        sa.Column("target_id", BigId, primary_key=True, autoincrement=True),
        # NULL: the rule protects this target on every model.
        sa.Column("model_id", sa.Integer,
                  sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pattern", sa.String(256), nullable=False),
        sa.Column("approvals_required", sa.Integer, nullable=False),
        sa.Column("expiry_s", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("kind IN ('stage', 'alias')", name="ck_protected_kind"),
        sa.CheckConstraint("approvals_required >= 1", name="ck_protected_approvals"),
    )
    op.create_table(
        "governance_approvers",
        sa.Column("grant_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer,
                  sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("granted_by", sa.String(256), nullable=False),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_approvers_user", "governance_approvers", ["username"])
    op.create_table(
        "approval_requests",
        sa.Column("request_id", BigId, primary_key=True, autoincrement=True),
        # No foreign key: a request outlives its model (it is then invalidated).
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("archive_existing", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("approvals_required", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("version_row_version", sa.Integer, nullable=False),
        sa.Column("model_last_version", sa.Integer, nullable=False),
        sa.CheckConstraint("state IN ('pending', 'applied', 'rejected', 'expired', "
                           "'invalidated')", name="ck_approval_state"),
    )
    op.create_index("ix_approval_requests_state", "approval_requests", ["state", "request_id"])
    op.create_index("ix_approval_requests_model", "approval_requests",
                    ["model_id", "version"])
    op.create_table(
        "approval_votes",
        sa.Column("request_id", BigId,
                  sa.ForeignKey("approval_requests.request_id", ondelete="CASCADE"),
                  primary_key=True),
        # The primary key makes a second vote of the same person impossible, even racing.
        sa.Column("approver", sa.String(256), primary_key=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.CheckConstraint("decision IN ('approve', 'reject')", name="ck_vote_decision"),
    )
    op.create_table(
        "governance_policies",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("dataset_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(256), nullable=False),
        sa.Column("source_type", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("name", "digest", name="uq_datasets_name_digest"),
    )
    op.create_index("ix_datasets_digest", "datasets", ["digest"])
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("dataset_id", BigId,
                  sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("context", sa.String(64), nullable=False),
        sa.Column("tags_json", sa.Text, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
    )
    # dataset -> runs; runs -> versions uses ix_model_versions_run (revision 0002).
    op.create_index("ix_run_inputs_dataset", "run_inputs", ["dataset_id", "run_id"])


def _chain_existing_rows() -> None:
    """Hash the rows written before the chain existed, oldest first.

    The append-only triggers are lifted for this one UPDATE pass and restored in
    the same transaction (DDL is transactional on both engines).
    """
    from metricflow.store.metadata._chain import GENESIS, canonical, entry_hash

    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    if pg:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
    # Ids are also closed up (1, 2, 3, ...): from now on the writer assigns them one
    # past the head, and a gap means deleted entries. Moving each row down to its
    # rank, in id order, never collides (the rank is at most the old id).
    prev, last, rank = GENESIS, 0, 0
    cols = ("ts, actor, action, entity_type, entity_id, before_json, after_json, comment, "
            "model_id, model_name, version")
    while True:
        rows = conn.execute(sa.text(f"SELECT id, {cols} FROM audit_log WHERE id > :last "
                                    "ORDER BY id LIMIT 10000"), {"last": last}).all()
        if not rows:
            break
        updates = []
        for r in rows:
            rank += 1
            h = entry_hash(prev, canonical(*r[1:]))
            updates.append({"i": r[0], "n": rank, "p": prev, "h": h})
            prev, last = h, r[0]
        for u in updates:  # one by one, in order (see above)
            conn.execute(sa.text("UPDATE audit_log SET id = :n, prev_hash = :p, "
                                 "entry_hash = :h WHERE id = :i"), u)
    if pg:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    else:
        op.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    raise NotImplementedError("the control-plane schema is never downgraded")
