"""A rule's channels, its experiment ids and the ids and durations the alert routes take
(a security tester's findings): channels only within a webhook's scope, at creation and
at delivery; a deleted webhook's id leaves every rule's channels; experiment ids stored
canonical; out-of-range ids and mute durations answered 400, never a 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metricflow._events import Event
from metricflow.alerts import AlertStore, Webhook, rule_from_dict
from metricflow.alerts._store import AlertState
from metricflow.errors import InvalidArgument
from metricflow.store.metadata import open_metadata_store

HUGE = "99999999999999999999"
MAX_MUTE_S = 366 * 24 * 3600.0  # the documented bound (alerts._model.MAX_MUTE_S)


@pytest.fixture
def md(tmp_path: Path) -> Iterator[Any]:
    m = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    try:
        yield m
    finally:
        m.close()


def _exps(md: Any, n: int = 2) -> list[str]:
    return [str(md.create_experiment(f"e{i}")) for i in range(n)]


def _rule(exps: list[str], channels: list[Any] = (), **kw: Any) -> Any:  # type: ignore[assignment]
    return rule_from_dict({"name": "r", "experiment_ids": exps, "channels": list(channels),
                           "condition": {"type": "failed"}, **kw})


def _hook(s: AlertStore, exps: tuple[str, ...] = (), events: tuple[str, ...] = (
        "run.created",)) -> Webhook:
    return s.create_webhook(Webhook("h", "http://127.0.0.1:9/x", events, experiment_ids=exps))


def _fire(s: AlertStore, rule: Any, experiment_id: str, run: str = "r1") -> list[int]:
    """Fire `rule` for a run of `experiment_id` with the rule's channels as given; the
    webhook ids that got a delivery."""
    ev = Event("alert.firing", f"alert:{rule.rule_id}:{run}", {"experiment_id": experiment_id})
    s.transition(AlertState(rule.rule_id, run, "firing"), ev, rule.channels, experiment_id)
    return sorted(d.webhook_id for d in s.list_deliveries())


# ------------------------------------------------------------------ finding 1
def test_channels_must_be_webhooks_whose_scope_covers_the_rule(md: Any) -> None:
    s = AlertStore(md.engine)
    a, b = _exps(md)
    only_b = _hook(s, (b,))
    both = _hook(s, (a, b))
    every = _hook(s)
    # in scope: an unscoped webhook, one scoped to (a superset of) the rule's experiments
    s.create_rule(_rule([a], [every.webhook_id, both.webhook_id]))
    s.create_rule(_rule([a, b], [both.webhook_id]))
    s.create_rule(_rule([b], [only_b.webhook_id]))
    s.create_rule(_rule([], [every.webhook_id]))
    errors = []
    for rule in (_rule([a], [only_b.webhook_id]), _rule([a, b], [only_b.webhook_id]),
                 _rule([], [both.webhook_id]), _rule([a], [12345])):
        with pytest.raises(InvalidArgument) as e:
            s.create_rule(rule)
        assert e.value.http_status == 400
        assert e.value.message.startswith(f"channels: webhook {rule.channels[0]} ")
        errors.append(e.value.message.replace(str(rule.channels[0]), "N"))
    # a webhook outside the rule's scope and a missing one answer alike (no oracle of
    # which webhook ids exist for a creator who is not an admin)
    assert len(set(errors)) == 1, errors
    assert len(s.list_rules()) == 4


def test_a_channel_gets_no_alert_outside_its_scope_even_if_its_scope_changed(md: Any) -> None:
    s = AlertStore(md.engine)
    a, b = _exps(md)
    hook = _hook(s, (a,))
    rule = s.create_rule(_rule([a, b], [], run_filter=""))  # no channel yet
    # a rule named the webhook while it covered the rule (then the webhook's scope
    # narrowed; the rule was written before the check existed, or by an import)
    with md.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alert_rules SET channels = :c WHERE rule_id = :r"),
                     {"c": json.dumps([hook.webhook_id]), "r": rule.rule_id})
    rule = s.get_rule(rule.rule_id)
    assert rule.channels == (hook.webhook_id,)
    assert _fire(s, rule, b, "in-b") == []  # experiment b: not the webhook's
    assert _fire(s, rule, "", "no-exp") == []  # unknown experiment: not provably its
    assert _fire(s, rule, a, "in-a") == [hook.webhook_id]


# ------------------------------------------------------------------ finding 2
def test_a_deleted_webhooks_id_leaves_every_rules_channels(md: Any) -> None:
    s = AlertStore(md.engine)
    (a,) = _exps(md, 1)
    keep = _hook(s)
    gone = _hook(s)
    rule = s.create_rule(_rule([a], [keep.webhook_id, gone.webhook_id]))
    other = s.create_rule(_rule([a], [gone.webhook_id]))
    stale = s.get_rule(other.rule_id)  # an evaluator's copy from before the delete
    before = s.rules_stamp()
    s.delete_webhook(gone.webhook_id, "admin")
    assert s.get_rule(rule.rule_id).channels == (keep.webhook_id,)
    assert s.get_rule(other.rule_id).channels == ()
    assert s.rules_stamp() != before  # evaluators reload the rules
    # SQLite hands the largest id out again once its row is gone
    new = _hook(s, events=("run.created",))
    assert new.webhook_id == gone.webhook_id
    assert _fire(s, s.get_rule(other.rule_id), a, "x") == []
    assert _fire(s, stale, a, "y") == []  # not even through a stale copy of the rule
    with md.engine.connect() as conn:
        after = conn.execute(sa.text(
            "SELECT after_json FROM audit_log WHERE action = 'delete_webhook'")).scalar()
    assert sorted(json.loads(after)["removed_from_rule_channels"]) == sorted(
        [str(rule.rule_id), str(other.rule_id)])


# ------------------------------------------------------------------ finding 3
def test_rule_experiment_ids_are_stored_canonical(md: Any) -> None:
    s = AlertStore(md.engine)
    (a,) = _exps(md, 1)
    rule = s.create_rule(_rule([f"0{a}", f" {a}", a]))
    assert rule.experiment_ids == (a,)
    assert s.get_rule(rule.rule_id).experiment_ids == (a,)
    assert [r.rule_id for r in s.list_rules([a])] == [rule.rule_id]
    assert [r.rule_id for r in s.list_rules([f"0{a}"])] == [rule.rule_id]
    with pytest.raises(InvalidArgument) as e:
        _rule(["abc"])
    assert e.value.http_status == 400 and "experiment_ids" in e.value.message
    # a row written before (as "01") reads as the canonical id
    with md.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alert_rules SET experiment_ids = :e"),
                     {"e": json.dumps([f"0{a}"])})
    assert s.get_rule(rule.rule_id).experiment_ids == (a,)
    assert [r.rule_id for r in s.list_rules([a])] == [rule.rule_id]


# ------------------------------------------------------------- findings 4 and 5
@pytest.fixture
def http(md: Any) -> Iterator[tuple[TestClient, list[str]]]:
    from metricflow.alerts import AlertsService, alerts_router

    svc = AlertsService(md)
    exps = _exps(md)

    def run_experiment(run_id: str) -> str:
        return md.get_run(run_id).info.experiment_id

    app = FastAPI()
    app.include_router(alerts_router(svc, run_experiment))
    with TestClient(app) as c:
        yield c, exps


def _bad(r: Any, field: str, received: str = "") -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert field in body["message"], body
    assert received in body["message"], body


def test_http_out_of_range_ids_and_durations_are_400s(
        http: tuple[TestClient, list[str]]) -> None:
    c, (a, _) = http
    limit = str(2**31 - 1)
    _bad(c.post("/api/v1/webhooks/delete", json={"webhook_id": HUGE}), "webhook_id", limit)
    _bad(c.post("/api/v1/webhooks/test", json={"webhook_id": HUGE}), "webhook_id", limit)
    _bad(c.post("/api/v1/webhooks/redeliver", json={"webhook_id": HUGE}), "webhook_id")
    _bad(c.get("/api/v1/webhooks/deliveries", params={"webhook_id": HUGE}), "webhook_id",
         limit)
    _bad(c.get("/api/v1/alerts/list", params={"rule_id": HUGE}), "rule_id", limit)
    _bad(c.post("/api/v1/alerts/rules/delete", json={"rule_id": HUGE}), "rule_id", limit)
    _bad(c.post("/api/v1/alerts/rules/mute", json={"rule_id": HUGE}), "rule_id", limit)
    _bad(c.post("/api/v1/alerts/rules/create", json={
        "name": "r", "experiment_ids": [a], "condition": {"type": "failed"},
        "channels": [HUGE]}), "channels", limit)
    made = c.post("/api/v1/alerts/rules/create", json={
        "name": "r", "experiment_ids": [a], "condition": {"type": "failed"}})
    assert made.status_code == 200, made.text
    rid = made.json()["rule"]["rule_id"]
    for d in (1e308, 99999999999999999999, "Infinity", 9.3e15, -1, MAX_MUTE_S + 1):
        r = c.post("/api/v1/alerts/rules/mute", content=json.dumps(
            {"rule_id": rid, "duration_s": d}), headers={"content-type": "application/json"})
        _bad(r, "duration_s", "31622400")
    ok = c.post("/api/v1/alerts/rules/mute", json={"rule_id": rid, "duration_s": MAX_MUTE_S})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rule"]["muted_until"] > 0


def test_http_notify_without_run_id_is_a_400(http: tuple[TestClient, list[str]]) -> None:
    c, _ = http
    for body in ({"title": "t"}, {"run_id": "", "title": "t"}):
        r = c.post("/api/v1/alerts/notify", json=body)
        _bad(r, "run_id")
        assert "required" in r.json()["message"]


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _Ctx:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, md: Any) -> None:
        pass

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        raise _Aborted(code, message)


def test_grpc_mute_out_of_range_is_invalid_argument(md: Any) -> None:
    from metricflow._proto.metricflow.alerts.v1 import alerts_pb2 as pb
    from metricflow.alerts import AlertsService
    from metricflow.alerts._grpc import AlertServicer

    svc = AlertsService(md)
    (a,) = _exps(md, 1)
    rid = str(svc.store.create_rule(_rule([a])).rule_id)
    servicer = AlertServicer(svc, lambda run_id: a)

    def call(method: str, req: Any) -> _Aborted:
        with pytest.raises(_Aborted) as e:
            asyncio.run(getattr(servicer, method)(req, _Ctx()))
        return e.value

    for req, field in ((pb.MuteRuleRequest(rule_id=rid, duration_s=1e308), "duration_s"),
                       (pb.MuteRuleRequest(rule_id=rid, duration_s=float("inf")),
                        "duration_s"),
                       (pb.MuteRuleRequest(rule_id=rid, duration_s=1e20), "duration_s"),
                       (pb.MuteRuleRequest(rule_id=HUGE, duration_s=60), "rule_id")):
        got = call("MuteRule", req)
        assert got.code == grpc.StatusCode.INVALID_ARGUMENT, (req, got.message)
        assert field in got.message
    got = call("DeleteRule", pb.RuleRef(rule_id=HUGE))
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT and "rule_id" in got.message
    got = call("Notify", pb.NotifyRequest(title="t"))
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT and "run_id is required" in got.message
    out = asyncio.run(servicer.MuteRule(pb.MuteRuleRequest(rule_id=rid, duration_s=60),
                                        _Ctx()))
    assert out.rule.muted_until > 0
