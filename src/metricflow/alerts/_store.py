"""AlertStore: rules, alert state, webhooks and the delivery log in the control plane.

An alert's state change and the deliveries that announce it commit in one
transaction (`transition`), so an evaluator that restarts finds the alert firing and
its notifications queued: it neither loses nor repeats them. Deliveries are an
outbox: senders claim rows with a lease, so several processes on one database
never send a delivery twice at the same time, and a sender that dies leaves its
claims to expire.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from metricflow._events import Event
from metricflow.alerts._model import Rule, Webhook, canonical_experiments, covers
from metricflow.alerts._tables import alert_rules, alert_states, webhook_deliveries, webhooks
from metricflow.errors import InvalidArgument, NotFound
from metricflow.store.metadata import READONLY_OPTION, append_audit

_R, _S, _W, _D = alert_rules.c, alert_states.c, webhooks.c, webhook_deliveries.c
LEASE_MS = 30_000
"""How long a claimed delivery is a sender's; after that another sender may take it."""
_ACTIVE = ("pending", "sending")

# The statements of an alert's announcement (its state write, its deliveries, their
# sends), built once: building a statement and its cache key anew on every execution
# cost about as much CPU as running it. Values come as execution parameters; a `k_`
# parameter is a WHERE operand, the others are the columns an UPDATE sets.
_STATE_OF = sa.select(_S.state, _S.fired_at).where(
    _S.rule_id == sa.bindparam("k_rule"), _S.run_id == sa.bindparam("k_run"))
_STATE_INSERT = alert_states.insert()
_STATE_UPDATE = alert_states.update().where(
    _S.rule_id == sa.bindparam("k_rule"), _S.run_id == sa.bindparam("k_run"))
_ACTIVE_HOOKS = sa.select(webhooks).where(_W.status == "ACTIVE")
_AHEAD = sa.select(_D.seq).where(
    _D.webhook_id == sa.bindparam("k_hook"), _D.subject == sa.bindparam("k_subject"),
    _D.status.in_(_ACTIVE)).limit(1)
_DELIVERY_INSERT = webhook_deliveries.insert()
_OTHER_ACTIVE = sa.select(_D.seq).where(_D.status.in_(_ACTIVE),
                                        _D.seq != sa.bindparam("k_seq")).limit(1)
_SUBJECT_HEAD = sa.select(webhook_deliveries).where(
    _D.webhook_id == sa.bindparam("k_hook"), _D.subject == sa.bindparam("k_subject"),
    _D.status.in_(_ACTIVE)).order_by(_D.seq).limit(1)
_CLAIM_PENDING = webhook_deliveries.update().where(_D.seq == sa.bindparam("k_seq"),
                                                   _D.status == "pending")
_DELIVERY_RECORD = webhook_deliveries.update().where(
    _D.seq == sa.bindparam("k_seq"), _D.status == "sending",
    _D.next_attempt_at == sa.bindparam("k_lease"))
_NEXT_DUE = sa.select(sa.func.min(_D.next_attempt_at)).where(_D.status.in_(_ACTIVE))
_WEBHOOK = sa.select(webhooks).where(_W.webhook_id == sa.bindparam("k_hook"))
_RULE_CHANNELS = sa.select(_R.channels).where(_R.rule_id == sa.bindparam("k_rule"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class AlertState:
    rule_id: int
    run_id: str
    state: str  # pending | firing | resolved
    value: float | None = None
    step: int | None = None
    pending_since: int | None = None
    fired_at: int | None = None
    resolved_at: int | None = None
    updated_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": str(self.rule_id), "run_id": self.run_id, "state": self.state,
                "value": self.value, "step": self.step, "pending_since": self.pending_since,
                "fired_at": self.fired_at, "resolved_at": self.resolved_at}


@dataclass(frozen=True)
class Delivery:
    seq: int
    delivery_id: str
    webhook_id: int
    event_id: str
    event: str
    subject: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: int
    last_status_code: int | None
    last_error: str | None
    created_at: int
    delivered_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "webhook_id": str(self.webhook_id),
                "event_id": self.event_id, "event": self.event, "subject": self.subject,
                "status": self.status, "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at,
                "last_status_code": self.last_status_code, "last_error": self.last_error,
                "created_at": self.created_at, "delivered_at": self.delivered_at,
                "payload": json.loads(self.payload)}


def _rule(row: Any) -> Rule:
    return Rule(name=row.name, condition=row.condition,
                experiment_ids=canonical_experiments(json.loads(row.experiment_ids)),
                run_filter=row.run_filter, metric_key=row.metric_key, op=row.op,
                threshold=row.threshold, window_steps=row.window_steps,
                stalled_s=row.stalled_s, for_s=row.for_s, severity=row.severity,
                channels=tuple(int(c) for c in json.loads(row.channels)),
                muted_until=row.muted_until, rule_id=row.rule_id, created_by=row.created_by,
                creation_time=row.creation_time, last_update_time=row.last_update_time)


def _targets(rows: Sequence[Any], event: Event, channels: Sequence[int], experiment_id: str,
             only: int | None) -> list[Webhook]:
    """The active webhooks (`rows`) that want `event`: subscribers of its name (in its
    experiment, when both name one), the rule's `channels` for alerts (a scoped channel
    only for an alert in its scope: checked at the rule's creation, but a webhook's scope
    is its own and must hold at delivery too); `only`: that one."""
    out = []
    for w in map(_webhook, rows):
        if only is not None:
            wanted = w.webhook_id == only
        elif w.webhook_id in channels and covers(w.experiment_ids,
                                                  [experiment_id] if experiment_id else []):
            wanted = True  # the rule names it, and the alert is in the webhook's scope
        else:
            wanted = event.name in w.events and not (
                w.experiment_ids and experiment_id and experiment_id not in w.experiment_ids)
        if wanted:
            out.append(w)
    return out


def _webhook(row: Any) -> Webhook:
    return Webhook(name=row.name, url=row.url, events=tuple(json.loads(row.events)),
                   secret=row.secret, experiment_ids=tuple(json.loads(row.experiment_ids)),
                   payload_format=row.payload_format, status=row.status,
                   webhook_id=row.webhook_id, created_by=row.created_by,
                   creation_time=row.creation_time)


def _delivery_of(seq: int, row: dict[str, Any]) -> Delivery:
    return Delivery(seq=seq, **{k: row[k] for k in Delivery.__dataclass_fields__
                                if k != "seq"})


def _delivery(row: Any) -> Delivery:
    return Delivery(**{k: getattr(row, k) for k in Delivery.__dataclass_fields__})


def _state(row: Any) -> AlertState:
    return AlertState(row.rule_id, row.run_id, row.state, row.value, row.step,
                      row.pending_since, row.fired_at, row.resolved_at, row.updated_at)


class AlertStore:
    """Alerts and webhooks on the control plane's engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A read-only connection: on SQLite its transaction is a deferred one, which
        takes no write lock (BEGIN IMMEDIATE would, and wait for ingest's writers)."""
        with self.engine.connect() as conn:
            yield conn.execution_options(**{READONLY_OPTION: True})

    # ------------------------------------------------------------------ rules
    def create_rule(self, rule: Rule, actor: str = "") -> Rule:
        ts = now_ms()
        with self._write() as conn:
            self._check_channels(conn, rule)
            rid = conn.execute(alert_rules.insert().values(
                name=rule.name, experiment_ids=json.dumps(list(rule.experiment_ids)),
                run_filter=rule.run_filter, condition=rule.condition,
                metric_key=rule.metric_key, op=rule.op, threshold=rule.threshold,
                window_steps=rule.window_steps, stalled_s=rule.stalled_s, for_s=rule.for_s,
                severity=rule.severity, channels=json.dumps(list(rule.channels)),
                muted_until=rule.muted_until, created_by=actor or "",
                creation_time=ts, last_update_time=ts)).inserted_primary_key
            assert rid is not None
            out = replace(rule, rule_id=int(rid[0]), created_by=actor or "",
                          creation_time=ts, last_update_time=ts)
            _audit(conn, actor, "create_alert_rule", "alert_rule", out.rule_id,
                   after=out.to_dict())
        return out

    def _check_channels(self, conn: sa.Connection, rule: Rule) -> None:
        """Each channel is a webhook whose scope covers the rule's experiments (`covers`).
        A missing webhook and one the rule may not use get the same answer: a rule's
        creator need not be an admin, and webhooks are an admin's to list."""
        if not rule.channels:
            return
        scopes = {r.webhook_id: json.loads(r.experiment_ids) for r in conn.execute(
            sa.select(_W.webhook_id, _W.experiment_ids).where(
                _W.webhook_id.in_(list(rule.channels)))).all()}
        for c in rule.channels:
            if c not in scopes or not covers(scopes[c], rule.experiment_ids):
                raise InvalidArgument(
                    f"channels: webhook {c} does not exist or cannot carry this rule's "
                    "alerts: a channel must be a webhook with no experiment_ids, or one "
                    "whose experiment_ids include every experiment of the rule",
                    field="channels", received=str(c))

    def create_rules(self, rules: Iterable[Rule], actor: str = "") -> int:
        """Many rules in one transaction (benchmarks, imports); returns how many."""
        ts = now_ms()
        rules = list(rules)
        rows = [{"name": r.name, "experiment_ids": json.dumps(list(r.experiment_ids)),
                 "run_filter": r.run_filter, "condition": r.condition,
                 "metric_key": r.metric_key, "op": r.op, "threshold": r.threshold,
                 "window_steps": r.window_steps, "stalled_s": r.stalled_s, "for_s": r.for_s,
                 "severity": r.severity, "channels": json.dumps(list(r.channels)),
                 "muted_until": r.muted_until, "created_by": actor, "creation_time": ts,
                 "last_update_time": ts} for r in rules]
        if rows:
            with self._write() as conn:
                for r in rules:
                    self._check_channels(conn, r)
                conn.execute(alert_rules.insert(), rows)
                _audit(conn, actor, "create_alert_rules", "alert_rule", "*",
                       after={"count": len(rows), "names": [r["name"] for r in rows][:20]})
        return len(rows)

    def list_rules(self, experiment_ids: Sequence[str] | None = None) -> list[Rule]:
        """Every rule, or those scoped to any of `experiment_ids`."""
        with self._read() as conn:
            rows = conn.execute(sa.select(alert_rules).order_by(_R.rule_id)).all()
        out = [_rule(r) for r in rows]
        if experiment_ids is not None:
            want = set(canonical_experiments(experiment_ids))  # '01' lists 1's
            out = [r for r in out if set(r.experiment_ids) & want]
        return out

    def get_rule(self, rule_id: int) -> Rule:
        with self._read() as conn:
            row = conn.execute(sa.select(alert_rules).where(_R.rule_id == rule_id)).first()
        if row is None:
            raise NotFound(f"alert rule {rule_id} does not exist", field="rule_id",
                           received=str(rule_id))
        return _rule(row)

    def delete_rule(self, rule_id: int, actor: str = "") -> None:
        with self._write() as conn:
            row = conn.execute(sa.select(alert_rules).where(_R.rule_id == rule_id)).first()
            if row is None:
                raise NotFound(f"alert rule {rule_id} does not exist", field="rule_id",
                               received=str(rule_id))
            conn.execute(alert_states.delete().where(_S.rule_id == rule_id))
            conn.execute(alert_rules.delete().where(_R.rule_id == rule_id))
            _audit(conn, actor, "delete_alert_rule", "alert_rule", rule_id,
                   before=_rule(row).to_dict())

    def mute_rule(self, rule_id: int, until_ms: int, actor: str = "") -> Rule:
        """Mute notifications until `until_ms` (0 unmutes); alerts are still tracked."""
        with self._write() as conn:
            n = conn.execute(alert_rules.update().where(_R.rule_id == rule_id).values(
                muted_until=until_ms, last_update_time=now_ms())).rowcount
            if n:
                _audit(conn, actor, "unmute_alert_rule" if until_ms == 0 else
                       "mute_alert_rule", "alert_rule", rule_id,
                       after={"muted_until": until_ms})
        if not n:
            raise NotFound(f"alert rule {rule_id} does not exist", field="rule_id",
                           received=str(rule_id))
        return self.get_rule(rule_id)

    def rules_stamp(self) -> tuple[int, int, int]:
        """Changes when any rule is created, changed or deleted (the evaluator polls it)."""
        with self._read() as conn:
            row = conn.execute(sa.select(sa.func.count(), sa.func.max(_R.last_update_time),
                                         sa.func.max(_R.rule_id))).one()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    # ------------------------------------------------------------ alert state
    def load_states(self) -> dict[tuple[int, str], AlertState]:
        with self._read() as conn:
            rows = conn.execute(sa.select(alert_states).where(
                _S.state.in_(("pending", "firing")))).all()
        return {(r.rule_id, r.run_id): _state(r) for r in rows}

    def list_alerts(self, rule_ids: Sequence[int] | None = None,
                    states: Sequence[str] = ("pending", "firing", "resolved"),
                    limit: int = 1000) -> list[AlertState]:
        q = sa.select(alert_states).where(_S.state.in_(list(states)))
        if rule_ids is not None:
            q = q.where(_S.rule_id.in_(list(rule_ids)))
        with self._read() as conn:
            rows = conn.execute(q.order_by(_S.updated_at.desc()).limit(limit)).all()
        return [_state(r) for r in rows]

    def transition(self, st: AlertState, event: Event | None,
                   channels: Sequence[int] = (), experiment_id: str = "") -> bool:
        """Store `st`; with `event`, queue its deliveries in the same transaction.

        Returns False (nothing written) when the stored state already is `st.state`
        (firing or resolved): another evaluator did it, or a replay after restart.
        """
        return self.transitions([(st, event, channels, experiment_id)])[0]

    def transitions(self, items: Sequence[tuple[AlertState, Event | None, Sequence[int], str]],
                    claim: list[Delivery] | None = None,
                    queued: list[int] | None = None) -> list[bool]:
        """Several `transition`s in one transaction (one evaluated batch's); `claim`:
        see `queue`; `queued`: a list to which the number of deliveries each announced
        transition queued is appended (claimed ones included)."""
        with self._write() as conn:
            return [self._transition(conn, *it, claim=claim, queued=queued) for it in items]

    def _transition(self, conn: sa.Connection, st: AlertState, event: Event | None,
                    channels: Sequence[int], experiment_id: str,
                    claim: list[Delivery] | None = None,
                    queued: list[int] | None = None) -> bool:
        key = {"k_rule": st.rule_id, "k_run": st.run_id}
        cur = conn.execute(_STATE_OF, key).first()
        if cur is not None and cur.state == st.state and st.state != "pending":
            return False  # already so: another evaluator, or a replay after a restart
        values = {"state": st.state, "value": _finite(st.value), "step": st.step,
                  "pending_since": st.pending_since, "fired_at": st.fired_at,
                  "resolved_at": st.resolved_at, "updated_at": now_ms()}
        if cur is None:
            conn.execute(_STATE_INSERT, {"rule_id": st.rule_id, "run_id": st.run_id, **values})
        else:
            conn.execute(_STATE_UPDATE, {**key, **values})
        if event is not None:
            if channels:  # the rule's channels as stored now: a deleted webhook's id is
                # gone from them (`delete_webhook`), even if the caller's copy of the
                # rule predates the delete (another process's evaluator, until its tick)
                got = conn.execute(_RULE_CHANNELS, {"k_rule": st.rule_id}).scalar()
                now = {int(c) for c in json.loads(got)} if got is not None else set()
                channels = [c for c in channels if c in now]
            n = self.queue(conn, event, channels, experiment_id, claim=claim)
            if queued is not None:
                queued.append(n)
        return True

    # --------------------------------------------------------------- webhooks
    def create_webhook(self, hook: Webhook, actor: str = "") -> Webhook:
        ts = now_ms()
        with self._write() as conn:
            wid = conn.execute(webhooks.insert().values(
                name=hook.name, url=hook.url, events=json.dumps(list(hook.events)),
                experiment_ids=json.dumps(list(hook.experiment_ids)), secret=hook.secret,
                payload_format=hook.payload_format, status=hook.status,
                created_by=actor or "", creation_time=ts)).inserted_primary_key
            assert wid is not None
            out = replace(hook, webhook_id=int(wid[0]), created_by=actor or "",
                          creation_time=ts)
            _audit(conn, actor, "create_webhook", "webhook", out.webhook_id,
                   after=out.to_dict())  # never the secret
        return out

    def list_webhooks(self) -> list[Webhook]:
        with self._read() as conn:
            return [_webhook(r) for r in conn.execute(
                sa.select(webhooks).order_by(_W.webhook_id)).all()]

    def get_webhook(self, webhook_id: int) -> Webhook:
        with self._read() as conn:
            row = conn.execute(_WEBHOOK, {"k_hook": webhook_id}).first()
        if row is None:
            raise NotFound(f"webhook {webhook_id} does not exist", field="webhook_id",
                           received=str(webhook_id))
        return _webhook(row)

    def delete_webhook(self, webhook_id: int, actor: str = "") -> None:
        with self._write() as conn:
            row = conn.execute(sa.select(webhooks).where(_W.webhook_id == webhook_id)).first()
            if row is None:
                raise NotFound(f"webhook {webhook_id} does not exist", field="webhook_id",
                               received=str(webhook_id))
            conn.execute(webhook_deliveries.delete().where(_D.webhook_id == webhook_id))
            conn.execute(webhooks.delete().where(_W.webhook_id == webhook_id))
            # SQLite reuses the largest id once its row is gone: a rule still naming
            # this one would deliver to the next webhook created. Out of every rule's
            # channels, in the same transaction (and the rules' update time moves, so
            # every evaluator reloads them).
            ts = now_ms()
            cleaned = []
            for r in conn.execute(sa.select(_R.rule_id, _R.channels)).all():
                chans = [int(c) for c in json.loads(r.channels)]
                if webhook_id in chans:
                    conn.execute(alert_rules.update().where(_R.rule_id == r.rule_id).values(
                        channels=json.dumps([c for c in chans if c != webhook_id]),
                        last_update_time=ts))
                    cleaned.append(str(r.rule_id))
            _audit(conn, actor, "delete_webhook", "webhook", webhook_id,
                   before=_webhook(row).to_dict(),
                   after={"removed_from_rule_channels": cleaned} if cleaned else None)

    # ------------------------------------------------------------- deliveries
    def queue(self, conn: sa.Connection, event: Event, channels: Sequence[int] = (),
              experiment_id: str = "", only: int | None = None,
              claim: list[Delivery] | None = None) -> int:
        """Insert one delivery per webhook that wants `event` (inside `conn`'s
        transaction): subscribers of its name (in its experiment, when both name one),
        plus the rule's `channels` for alerts; `only`: that webhook alone (tests).

        `claim`: a list to which the deliveries that head their (webhook, subject) are
        appended, inserted already claimed (leased) by the caller, who sends them at
        once; the others wait for their subject's earlier deliveries as usual."""
        targets = _targets(conn.execute(_ACTIVE_HOOKS).all(), event, channels, experiment_id,
                           only)
        if not targets:
            return 0
        ts = now_ms()
        payload = json.dumps({"event": event.name, "event_id": event.event_id,
                              "subject": event.subject, "actor": event.actor,
                              "timestamp_ms": event.timestamp_ms,
                              "data": _jsonable(event.data)}, sort_keys=True)
        new_rows = [{"delivery_id": uuid.uuid4().hex, "webhook_id": w.webhook_id,
                     "event_id": event.event_id, "event": event.name,
                     "subject": event.subject, "payload": payload, "status": "pending",
                     "attempts": 0, "next_attempt_at": ts, "last_status_code": None,
                     "last_error": None, "created_at": ts, "delivered_at": None}
                    for w in targets]
        if claim is None:
            conn.execute(webhook_deliveries.insert(), new_rows)
            return len(new_rows)
        for row in new_rows:
            ahead = conn.execute(_AHEAD, {"k_hook": row["webhook_id"],
                                          "k_subject": row["subject"]}).first()
            if ahead is None:  # heads its subject: claimed now, sent by the caller
                row.update(status="sending", next_attempt_at=ts + LEASE_MS)
            pk = conn.execute(_DELIVERY_INSERT, row).inserted_primary_key
            if ahead is None and pk is not None:
                claim.append(_delivery_of(int(pk[0]), row))
        return len(new_rows)

    def unclaim(self, d: Delivery) -> None:
        """Give a claimed delivery back to the queue, due now (no sender free)."""
        with self._write() as conn:
            conn.execute(webhook_deliveries.update().where(
                _D.seq == d.seq, _D.status == "sending",
                _D.next_attempt_at == d.next_attempt_at).values(status="pending",
                                                                next_attempt_at=now_ms()))

    def queue_event(self, event: Event, experiment_id: str = "",
                    only: int | None = None, claim: list[Delivery] | None = None) -> int:
        # Most events (every run created or ended) have no subscriber: find that out on a
        # read connection, without the write lock, which on SQLite every run's own writes
        # (its audit entry) then waited for. `queue` looks again inside the transaction.
        with self._read() as conn:
            if not _targets(conn.execute(_ACTIVE_HOOKS).all(), event, (), experiment_id, only):
                return 0
        with self._write() as conn:
            return self.queue(conn, event, (), experiment_id, only, claim)

    def claim_due(self, limit: int = 64, skip: Sequence[int] = ()) -> list[Delivery]:
        """Claim the head delivery of each (webhook, subject) that is due: pending and
        due, or claimed by a sender whose lease ran out. Later deliveries of a subject
        wait for the head (in order per subject); dead ones do not block."""
        now = now_ms()
        active = _D.status.in_(("pending", "sending"))
        heads = (sa.select(sa.func.min(_D.seq)).where(active)
                 .group_by(_D.webhook_id, _D.subject))
        q = sa.select(webhook_deliveries).where(_D.seq.in_(heads), _D.next_attempt_at <= now)
        if skip:  # webhooks with all the senders they may have (a slow receiver)
            q = q.where(_D.webhook_id.notin_(list(skip)))
        q = q.order_by(_D.seq).limit(limit)
        out = []
        with self._write() as conn:
            for row in conn.execute(q).all():
                n = conn.execute(webhook_deliveries.update().where(
                    _D.seq == row.seq, _D.status == row.status,
                    _D.next_attempt_at == row.next_attempt_at).values(
                    status="sending", next_attempt_at=now + LEASE_MS)).rowcount
                if n:
                    out.append(replace(_delivery(row), status="sending",
                                       next_attempt_at=now + LEASE_MS))
        return out

    def next_due_ms(self) -> int | None:
        with self._read() as conn:
            v = conn.execute(_NEXT_DUE).scalar()
        return None if v is None else int(v)

    def finish(self, d: Delivery, ok: bool, status_code: int | None, error: str | None,
               next_attempt_at: int | None) -> bool:
        """Record an attempt: delivered, retried at `next_attempt_at`, or dead (None).
        Returns whether any delivery (this one or another) is still pending or being
        sent: the senders' poller has something to look at."""
        return self.finish_and_take_next(d, ok, status_code, error, next_attempt_at,
                                         take_next=False)[0]

    def finish_and_take_next(self, d: Delivery, ok: bool, status_code: int | None,
                             error: str | None, next_attempt_at: int | None,
                             take_next: bool = True) -> tuple[bool, Delivery | None]:
        """Record an attempt at `d` (see `finish`), and with `take_next`, when the attempt
        ends `d` (delivered or dead), claim the next delivery of its webhook and subject
        in the same transaction if it is due: its sender sends it at once, in order,
        without waiting for the poller's look (and its claim query). Returns (whether
        other deliveries are still pending or being sent, the claimed delivery or None).

        Nothing is recorded or claimed when `d`'s lease is no longer the caller's (it
        ran out and another sender claimed `d`): that sender records its own attempt."""
        with self._write() as conn:
            mine = self._record(conn, d, ok, status_code, error, next_attempt_at)
            nxt = None
            if mine and take_next and (ok or next_attempt_at is None):
                head = conn.execute(_SUBJECT_HEAD, {"k_hook": d.webhook_id,
                                                    "k_subject": d.subject}).first()
                now = now_ms()
                if head is not None and head.status == "pending" and (
                        head.next_attempt_at <= now):
                    lease = now + LEASE_MS
                    if conn.execute(_CLAIM_PENDING, {"k_seq": head.seq, "status": "sending",
                                                     "next_attempt_at": lease}).rowcount:
                        nxt = replace(_delivery(head), status="sending",
                                      next_attempt_at=lease)
            more = conn.execute(_OTHER_ACTIVE, {"k_seq": nxt.seq if nxt else -1}).first()
            return more is not None, nxt

    @staticmethod
    def _record(conn: sa.Connection, d: Delivery, ok: bool, status_code: int | None,
                error: str | None, next_attempt_at: int | None) -> bool:
        """The attempt's outcome, if `d` is still claimed with the caller's lease."""
        values: dict[str, Any] = {"attempts": d.attempts + 1, "last_status_code": status_code,
                                  "last_error": (error or None) and error[:2000]}
        if ok:
            values.update(status="delivered", delivered_at=now_ms())
        elif next_attempt_at is None:
            values.update(status="dead")
        else:
            values.update(status="pending", next_attempt_at=next_attempt_at)
        return bool(conn.execute(_DELIVERY_RECORD, {"k_seq": d.seq,
                                                    "k_lease": d.next_attempt_at,
                                                    **values}).rowcount)

    def list_deliveries(self, webhook_id: int | None = None, status: str | None = None,
                        limit: int = 1000) -> list[Delivery]:
        q = sa.select(webhook_deliveries)
        if webhook_id is not None:
            q = q.where(_D.webhook_id == webhook_id)
        if status:
            q = q.where(_D.status == status)
        with self._read() as conn:
            rows = conn.execute(q.order_by(_D.seq.desc()).limit(limit)).all()
        return [_delivery(r) for r in rows]

    def redeliver(self, webhook_id: int, delivery_ids: Sequence[str] = (),
                  actor: str = "") -> int:
        """Put dead letters back in the queue (all of the webhook's, or those named)."""
        q = webhook_deliveries.update().where(_D.webhook_id == webhook_id,
                                              _D.status == "dead")
        if delivery_ids:
            q = q.where(_D.delivery_id.in_(list(delivery_ids)))
        with self._write() as conn:
            n = int(conn.execute(q.values(status="pending", attempts=0,
                                          next_attempt_at=now_ms())).rowcount)
            if n:
                _audit(conn, actor, "redeliver_webhook", "webhook", webhook_id,
                       after={"redelivered": n, "delivery_ids": list(delivery_ids)[:100]})
            return n


def _audit(conn: sa.Connection, actor: str | None, action: str, entity_type: str,
           entity_id: object, before: Any = None, after: Any = None) -> None:
    """An entry of the control plane's hash-chained audit log, in `conn`'s transaction."""
    append_audit(conn, actor=actor or "unknown", action=action, entity_type=entity_type,
                 entity_id=str(entity_id), before=before, after=after)


def _finite(v: float | None) -> float | None:
    """NaN/Inf are stored as NULL (PostgreSQL takes them, SQLite does not)."""
    if v is None or v != v or v in (float("inf"), float("-inf")):
        return None
    return float(v)


def _jsonable(data: Any) -> Any:
    """JSON without NaN/Infinity tokens (which JSON does not have): as strings."""
    if isinstance(data, float) and (data != data or data in (float("inf"), float("-inf"))):
        return str(data)
    if isinstance(data, dict):
        return {str(k): _jsonable(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_jsonable(v) for v in data]
    return data
