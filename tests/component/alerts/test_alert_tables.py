"""Revision 0007's tables match the alerts package's SQLAlchemy tables; the store's
rules, outbox claims and dead letters work on them."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from metricflow._events import Event
from metricflow.alerts import AlertStore, Webhook, alert_tables, rule_from_dict
from metricflow.store.metadata import open_metadata_store


def test_head_schema_matches_alert_tables(tmp_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    try:
        insp = sa.inspect(store.engine)  # type: ignore[attr-defined]
        for table in alert_tables.sorted_tables:
            cols = {c["name"] for c in insp.get_columns(table.name)}
            assert cols == {c.name for c in table.columns}, table.name
    finally:
        store.close()


def test_outbox_claims_heads_in_order_and_dead_letters_redeliver(tmp_path: Path) -> None:
    md = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    try:
        s = AlertStore(md.engine)  # type: ignore[attr-defined]
        w = s.create_webhook(Webhook("h", "http://127.0.0.1:9/x", ("run.created",)))
        for i in range(3):
            s.queue_event(Event("run.created", "run:a", {"i": i}))
        s.queue_event(Event("run.created", "run:b", {"i": 9}))
        first = s.claim_due()
        # one head per subject: run:a's first and run:b's only delivery
        assert sorted(d.subject for d in first) == ["run:a", "run:b"]
        assert s.claim_due() == []  # the heads are leased; later ones wait behind them
        a0 = next(d for d in first if d.subject == "run:a")
        s.finish(a0, False, 500, "boom", None)  # dead: no retry left
        nxt = s.claim_due()
        assert [d.subject for d in nxt] == ["run:a"] and '"i": 1' in nxt[0].payload
        dead = s.list_deliveries(w.webhook_id, "dead")
        assert [d.delivery_id for d in dead] == [a0.delivery_id]
        assert s.redeliver(w.webhook_id) == 1
        assert s.list_deliveries(w.webhook_id, "dead") == []
        rule = s.create_rule(rule_from_dict({"name": "r", "experiment_ids": ["0"],
                                             "condition": {"type": "failed"}}), "ann")
        assert s.get_rule(rule.rule_id).condition == "failed"
        s.mute_rule(rule.rule_id, 0, "bob")
        s.delete_rule(rule.rule_id, "bob")
        assert s.list_rules() == []
        # every change is in the hash-chained audit log, with who made it
        with md.engine.connect() as conn:  # type: ignore[attr-defined]
            got = conn.execute(sa.text(
                "SELECT action, actor, entity_id FROM audit_log WHERE entity_type IN "
                "('alert_rule', 'webhook') ORDER BY id")).all()
        assert [tuple(r) for r in got] == [
            ("create_webhook", "unknown", str(w.webhook_id)),
            ("redeliver_webhook", "unknown", str(w.webhook_id)),
            ("create_alert_rule", "ann", str(rule.rule_id)),
            ("unmute_alert_rule", "bob", str(rule.rule_id)),
            ("delete_alert_rule", "bob", str(rule.rule_id))]
        from metricflow.store.metadata import verify_chain

        assert verify_chain(md.engine).ok  # type: ignore[attr-defined]
    finally:
        md.close()


def test_queue_claims_only_the_head_of_a_subject(tmp_path: Path) -> None:
    md = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    try:
        s = AlertStore(md.engine)  # type: ignore[attr-defined]
        s.create_webhook(Webhook("h", "http://127.0.0.1:9/x", ("alert.firing",
                                                               "alert.resolved")))
        claimed: list = []
        s.queue_event(Event("alert.firing", "alert:1:r", {}), claim=claimed)
        s.queue_event(Event("alert.resolved", "alert:1:r", {}), claim=claimed)
        s.queue_event(Event("alert.firing", "alert:2:r", {}), claim=claimed)
        # the resolved waits behind its firing (in order per subject); the others are
        # the caller's to send, leased so no poll takes them
        assert [(d.event, d.subject) for d in claimed] == [
            ("alert.firing", "alert:1:r"), ("alert.firing", "alert:2:r")]
        assert s.claim_due() == []
        s.finish(claimed[0], True, 200, None, None)
        assert [d.event for d in s.claim_due()] == ["alert.resolved"]
        s.unclaim(claimed[1])
        assert [d.subject for d in s.claim_due()] == ["alert:2:r"]
    finally:
        md.close()
