"""Alert rules on a real `metricflow server` process: every condition fires and resolves,
`for` holds, run filters scope, restarts neither lose nor repeat a notification.

Each test gets its own experiment, webhook and local receiver, so tests share one
server process without seeing each other's alerts.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alerts_support import Proc, Receiver, wait_for

import metricflow as mf
from metricflow.alerts import verify

SECRET = "test-secret-0123456789"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(METRICFLOW_WEBHOOK_BACKOFF_S="0.1", METRICFLOW_WEBHOOK_MAX_ATTEMPTS="3",
               METRICFLOW_WEBHOOK_TIMEOUT_S="2")
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp("alerts")
    p = Proc("server", ["--data-dir", str(tmp / "data")], tmp / "server.log", _env())
    yield p
    p.stop()


@pytest.fixture()
def client(server: Proc) -> Iterator[mf.Client]:
    c = mf.Client(server.uri, linger_ms=10)
    yield c
    c.close()


class Scope:
    """An experiment, a receiver and a webhook for one test."""

    def __init__(self, server: Proc, client: mf.Client,
                 events: tuple[str, ...] = ("alert.firing", "alert.resolved")) -> None:
        self.server, self.client = server, client
        self.exp = client.get_or_create_experiment(f"alerts-{uuid.uuid4().hex[:8]}")
        self.rcv = Receiver()
        self.hook = server.api("POST", "/webhooks/create", {
            "url": self.rcv.url, "events": list(events), "secret": SECRET,
            "experiment_ids": [self.exp]})["webhook"]

    def rule(self, condition: dict[str, Any], **kw: Any) -> dict[str, Any]:
        body = {"name": f"r-{condition['type']}", "experiment_ids": [self.exp],
                "condition": condition, **kw}
        return self.server.api("POST", "/alerts/rules/create", body)["rule"]

    def run(self, **kw: Any) -> str:
        return self.client.create_run(self.exp, **kw).info.run_id

    def log(self, run_id: str, step: int, **values: float) -> None:
        self.client.log_metrics(run_id, values, step=step)
        self.client.flush()

    def states(self, run_id: str) -> list[str]:
        return [g["data"]["state"] for g in self.rcv.events()
                if g["data"].get("run_id") == run_id]


@pytest.fixture()
def scope(server: Proc, client: mf.Client) -> Iterator[Scope]:
    s = Scope(server, client)
    yield s
    s.rcv.close()


def test_threshold_fires_then_resolves_signed(scope: Scope) -> None:
    scope.rule({"type": "threshold", "metric": "loss", "op": ">", "value": 10})
    run = scope.run()
    scope.log(run, 0, loss=1.0)
    scope.log(run, 1, loss=20.0)
    fired = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "alert.firing")
    d = fired[0]["data"]
    assert (d["run_id"], d["value"], d["step"], d["condition"]) == (run, 20.0, 1, "threshold")
    scope.log(run, 2, loss=3.0)
    wait_for(lambda: scope.rcv.events("alert.resolved"), 20, "alert.resolved")
    assert scope.states(run) == ["firing", "resolved"]
    import requests

    prom = requests.get(scope.server.base + "/metrics", timeout=10).text
    assert 'metricflow_alerts_transitions_total{state="firing"}' in prom
    assert "metricflow_alerts_evaluated_points_total" in prom
    for g in scope.rcv.got:  # every delivery is signed with the webhook's secret
        assert verify(SECRET, g["headers"], g["body"])
        assert not verify("another-secret", g["headers"], g["body"])
    # a replayed request (same body and signature, old timestamp) is refused by verify
    g = scope.rcv.got[0]
    assert not verify(SECRET, g["headers"], g["body"], now=time.time() + 3600)


def test_nonfinite_fires_then_resolves(scope: Scope) -> None:
    scope.rule({"type": "nonfinite", "metric": "loss"})
    run = scope.run()
    scope.log(run, 0, loss=1.0)
    assert not scope.rcv.events()
    scope.log(run, 1, loss=math.nan)
    wait_for(lambda: scope.rcv.events("alert.firing"), 20, "alert.firing on NaN")
    scope.log(run, 2, loss=0.5)
    wait_for(lambda: scope.rcv.events("alert.resolved"), 20, "resolved on a finite point")
    run2 = scope.run()
    scope.log(run2, 0, loss=-math.inf)
    wait_for(lambda: len(scope.rcv.events("alert.firing")) == 2, 20, "alert.firing on -Inf")


def test_relative_change_over_window_fires_then_resolves(scope: Scope) -> None:
    scope.rule({"type": "change", "metric": "loss", "op": ">", "value": 0.5,
                "window_steps": 10})
    run = scope.run()
    for s in range(0, 12):
        scope.client.log_metrics(run, {"loss": 1.0}, step=s)
    scope.client.flush()
    for s in range(12, 16):  # up 100% over 10 steps
        scope.client.log_metrics(run, {"loss": 2.0}, step=s)
    scope.client.flush()
    fired = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "change firing")
    assert fired[0]["data"]["value"] == pytest.approx(1.0)
    for s in range(16, 40):  # flat again: no change over the window
        scope.client.log_metrics(run, {"loss": 2.0}, step=s)
    scope.client.flush()
    wait_for(lambda: scope.rcv.events("alert.resolved"), 20, "change resolved")


def test_stalled_run_fires_on_the_timer_then_resolves(scope: Scope) -> None:
    scope.rule({"type": "stalled", "seconds": 1.5})
    run = scope.run()
    t0 = time.monotonic()
    scope.log(run, 0, loss=1.0)
    wait_for(lambda: scope.rcv.events("alert.firing"), 20, "stalled firing")
    detected = time.monotonic() - t0
    assert 1.5 <= detected <= 1.5 + 5.0, detected  # T + the timer tick + delivery
    scope.log(run, 1, loss=1.0)
    wait_for(lambda: scope.rcv.events("alert.resolved"), 20, "resolved by a new point")
    scope.client.set_terminated(run, "FINISHED")
    time.sleep(2.5)  # a window in which a finished run must not be called stalled
    assert len(scope.rcv.events("alert.firing")) == 1


def test_run_failed_fires(scope: Scope) -> None:
    scope.rule({"type": "failed"}, severity="critical")
    ok, bad = scope.run(), scope.run()
    scope.client.set_terminated(ok, "FINISHED")
    scope.client.set_terminated(bad, "FAILED")
    fired = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "failed firing")
    assert [f["data"]["run_id"] for f in fired] == [bad]
    assert fired[0]["data"]["severity"] == "critical"
    scope.client.update_run(bad, status="RUNNING")  # resumed: no longer failed
    wait_for(lambda: scope.rcv.events("alert.resolved"), 20, "resolved on resume")
    assert scope.states(bad) == ["firing", "resolved"]


def test_for_duration_holds(scope: Scope) -> None:
    scope.rule({"type": "threshold", "metric": "gpu", "op": "<", "value": 10}, for_s=2.0)
    blip, low = scope.run(), scope.run()
    t0 = time.monotonic()
    scope.log(blip, 0, gpu=5.0)
    scope.log(low, 0, gpu=5.0)
    scope.log(blip, 1, gpu=90.0)  # recovers before `for` elapsed: never fires
    fired = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "firing after for")
    assert time.monotonic() - t0 >= 2.0
    assert [f["data"]["run_id"] for f in fired] == [low]
    time.sleep(1.0)  # the blip's `for` would have ended by now: still one alert
    assert [f["data"]["run_id"] for f in scope.rcv.events("alert.firing")] == [low]


def test_run_filter_scopes_the_rule(scope: Scope) -> None:
    scope.rule({"type": "threshold", "metric": "loss", "op": ">", "value": 10},
               run_filter="tags.team = 'nlp'")
    nlp = scope.run(tags={"team": "nlp"})
    cv = scope.run(tags={"team": "cv"})
    scope.log(cv, 0, loss=50.0)
    scope.log(nlp, 0, loss=50.0)
    fired = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "firing for nlp")
    time.sleep(1.0)  # the cv run's point was evaluated too: it must not fire
    assert [f["data"]["run_id"] for f in scope.rcv.events("alert.firing")] == [nlp]
    assert fired[0]["data"]["experiment_id"] == scope.exp


def test_muted_rule_tracks_but_does_not_notify(scope: Scope) -> None:
    rule = scope.rule({"type": "threshold", "metric": "loss", "op": ">", "value": 10})
    scope.server.api("POST", "/alerts/rules/mute", {"rule_id": rule["rule_id"]})
    run = scope.run()
    scope.log(run, 0, loss=50.0)
    wait_for(lambda: scope.server.api("GET", "/alerts/list", rule_id=rule["rule_id"],
                                      state="firing")["alerts"], 20, "firing state")
    time.sleep(0.5)  # deliveries would have been queued in the same transaction
    assert scope.rcv.events() == []


def test_code_alert_goes_through_the_same_channels_rate_limited(scope: Scope) -> None:
    run = scope.run()
    out = scope.server.api("POST", "/alerts/notify", {"run_id": run, "title": "diverged",
                                                      "text": "loss 1e9", "level": "error"})
    assert out["sent"] is True
    again = scope.server.api("POST", "/alerts/notify", {"run_id": run, "title": "diverged"})
    assert again["sent"] is False  # the same title within 60 s
    sent = [scope.server.api("POST", "/alerts/notify", {"run_id": run, "title": f"t{i}"})
            ["sent"] for i in range(10)]
    assert sent == [True] * 9 + [False]  # 10 a minute per run, answered at once
    got = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "code alert")
    d = got[0]["data"]
    assert (d["title"], d["text"], d["severity"], d["source"]) == (
        "diverged", "loss 1e9", "error", "code")


def test_rules_and_alerts_refuse_bad_input(server: Proc) -> None:
    import requests

    r = requests.post(server.base + "/api/v1/alerts/rules/create", json={
        "name": "x", "condition": {"type": "threshold", "metric": "loss", "op": "!=",
                                   "value": 1}}, timeout=10)
    assert r.status_code == 400 and "condition.op" in r.json()["message"]
    r = requests.post(server.base + "/api/v1/alerts/rules/create", json={
        "name": "x", "experiment_ids": ["0"], "run_filter": "tags.x ==== 1",
        "condition": {"type": "failed"}}, timeout=10)
    assert r.status_code == 400, r.text
    assert "attributes.run_id" not in r.json()["message"]  # only the filter as given
    r = requests.post(server.base + "/api/v1/alerts/rules/create", json={
        "name": "x", "experiment_ids": ["99999"], "condition": {"type": "failed"}}, timeout=10)
    assert r.status_code == 404 and "99999" in r.json()["message"]
    r = requests.post(server.base + "/api/v1/alerts/rules/create", json={
        "name": "x", "condition": {"type": "threshold", "metric": "a", "value": "NaN"}},
        timeout=10)
    assert r.status_code == 400 and "condition.value" in r.json()["message"]
    r = requests.post(server.base + "/api/v1/webhooks/create", json={
        "url": "ftp://x", "events": ["run.created"]}, timeout=10)
    assert r.status_code == 400 and "url" in r.json()["message"]
    r = requests.post(server.base + "/api/v1/webhooks/create", json={
        "url": "http://127.0.0.1:9/x", "events": ["run.created"], "secret": "shh"}, timeout=10)
    assert r.status_code == 400, r.text
    msg = r.json()["message"]  # the field, the minimum and the length received; no secret
    assert msg.startswith("secret: ") and "16" in msg and "got 3 " in msg and "shh" not in msg
    # A secret of the wrong type, or under a misspelt name, is refused without echoing it.
    for extra in ({"secret": 918273645546372819}, {"secret": ["a-real-secret-value-1"]},
                  {"Secret": "a-real-secret-value-1"}):
        r = requests.post(server.base + "/api/v1/webhooks/create", json={
            "url": "http://127.0.0.1:9/x", "events": ["run.created"], **extra}, timeout=10)
        assert r.status_code == 400, r.text
        msg = r.json()["message"]
        assert "not shown" in msg and "918273645546372819" not in msg, msg
        assert "a-real-secret-value-1" not in msg, msg


def test_restart_neither_loses_nor_repeats(tmp_path: Path) -> None:
    rcv = Receiver()
    data = tmp_path / "data"
    p = Proc("server", ["--data-dir", str(data)], tmp_path / "a.log", _env())
    try:
        p.api("POST", "/webhooks/create", {"url": rcv.url, "events": [
            "alert.firing", "alert.resolved"], "secret": SECRET})
        p.api("POST", "/alerts/rules/create", {"name": "hot", "experiment_ids": ["0"],
              "condition": {"type": "threshold", "metric": "t", "op": ">", "value": 1}})
        stall_exp = str(p.api("POST", "/experiments/create", {"name": "stall"})
                        ["experiment_id"])
        p.api("POST", "/alerts/rules/create", {"name": "quiet", "experiment_ids": [stall_exp],
              "condition": {"type": "stalled", "seconds": 4}})
        with mf.Client(p.uri, linger_ms=10) as c:
            run = c.create_run("0").info.run_id
            c.log_metrics(run, {"t": 5.0}, step=0)
            c.flush()
            quiet = c.create_run(stall_exp).info.run_id  # logs once, then never again
            c.log_metrics(quiet, {"x": 1.0}, step=0)
            c.flush()
        wait_for(lambda: rcv.events("alert.firing"), 20, "firing before restart")
    finally:
        p.stop()
    p = Proc("server", ["--data-dir", str(data)], tmp_path / "b.log", _env())
    try:
        with mf.Client(p.uri, linger_ms=10) as c:
            c.log_metrics(run, {"t": 7.0}, step=1)  # still breaching: no new notification
            c.flush()
            time.sleep(1.5)  # the evaluator has seen it; a repeat would arrive now
            assert len([g for g in rcv.events("alert.firing")
                        if g["data"]["run_id"] == run]) == 1
            c.log_metrics(run, {"t": 0.0}, step=2)
            c.flush()
        wait_for(lambda: rcv.events("alert.resolved"), 20, "resolved after restart")
        # The quiet run stalls whether or not the first process lived 4 s more: the
        # restarted one watches the RUNNING runs it finds. Announced exactly once.
        wait_for(lambda: [g for g in rcv.events("alert.firing")
                          if g["data"]["run_id"] == quiet], 30, "the stall")
        time.sleep(1.0)  # a repeat would come within the evaluator's tick
        mine = [g["event"] for g in rcv.events() if g["data"]["run_id"] == run]
        assert mine == ["alert.firing", "alert.resolved"]
        assert len([g for g in rcv.events() if g["data"]["run_id"] == quiet]) == 1
    finally:
        p.stop()
        rcv.close()


def test_mf_alert_and_rules_over_grpc(scope: Scope) -> None:
    import grpc

    from metricflow._proto.metricflow.alerts.v1 import alerts_pb2 as apb
    from metricflow._proto.metricflow.alerts.v1 import alerts_pb2_grpc as apb_grpc

    mf.set_tracking_uri(scope.server.uri)
    try:
        with mf.start_run(experiment_id=scope.exp) as active:
            run = active.info.run_id
            assert mf.alert("NaN loss", "at step 7", level="ERROR") is True
            assert mf.alert("NaN loss", "again") is False  # the same title within a minute
    finally:
        mf.get_client().close()
    got = wait_for(lambda: scope.rcv.events("alert.firing"), 20, "mf.alert delivery")
    assert [(g["data"]["title"], g["data"]["run_id"], g["data"]["severity"]) for g in got] == [
        ("NaN loss", run, "error")]
    with grpc.insecure_channel(f"127.0.0.1:{scope.server.grpc_port}") as ch:
        stub = apb_grpc.AlertServiceStub(ch)
        made = stub.CreateRule(apb.CreateRuleRequest(rule=apb.Rule(
            name="g", experiment_ids=[scope.exp], severity="info",
            condition=apb.Condition(type="threshold", metric="acc", op="<", value=0.1))))
        assert made.rule.rule_id and made.rule.condition.op == "<"
        listed = stub.ListRules(apb.ListRulesRequest(experiment_id=scope.exp))
        assert made.rule.rule_id in [r.rule_id for r in listed.rules]
        muted = stub.MuteRule(apb.MuteRuleRequest(rule_id=made.rule.rule_id, duration_s=60))
        assert muted.rule.muted_until > 0
        stub.DeleteRule(apb.RuleRef(rule_id=made.rule.rule_id))
        try:
            stub.DeleteRule(apb.RuleRef(rule_id=made.rule.rule_id))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("deleting a deleted rule succeeded")
        try:
            stub.CreateRule(apb.CreateRuleRequest(rule=apb.Rule(
                name="bad", condition=apb.Condition(type="threshold", metric="a", op="~"))))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "op" in e.details()
        else:
            raise AssertionError("a bad op was accepted")


def test_cli_create_list_mute_delete(scope: Scope) -> None:
    import json
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "metricflow.server.cli", "alerts", *args,
                               "--url", scope.server.base], capture_output=True, text=True,
                              timeout=120)

    made = cli("create", "cli rule", "--experiment", scope.exp, "--when", "metrics.loss > 3",
               "--for", "0", "--severity", "error", "--channel", scope.hook["webhook_id"],
               "--json")
    assert made.returncode == 0, made.stderr
    rid = json.loads(made.stdout)["rule"]["rule_id"]
    listed = cli("list", "--experiment", scope.exp)
    assert listed.returncode == 0 and "cli rule" in listed.stdout and "error" in listed.stdout
    run = scope.run()
    scope.log(run, 0, loss=9.0)
    wait_for(lambda: scope.rcv.events("alert.firing"), 20, "the CLI's rule firing")
    assert cli("mute", rid).returncode == 0
    assert "muted" in cli("list", "--experiment", scope.exp).stdout
    bad = cli("create", "x", "--experiment", scope.exp, "--when", "loss >> 3")
    assert bad.returncode != 0 and "--when" in bad.stderr
    assert cli("delete", rid).returncode == 0
    gone = cli("delete", rid)
    assert gone.returncode != 0 and "does not exist" in gone.stderr
    # webhook-create's URL is the receiver's, never the server's --url (nor the reverse)
    rcv = Receiver()
    try:
        made = cli("webhook-create", rcv.url, "--event", "alert.firing", "--secret",
                   "cli-secret-0123456789", "--json")
        assert made.returncode == 0, made.stderr
        wid = json.loads(made.stdout)["webhook"]["webhook_id"]
        hooks = scope.server.api("GET", "/webhooks/list")["webhooks"]
        assert [h["url"] for h in hooks if h["webhook_id"] == wid] == [rcv.url]
        assert rcv.got == []  # the CLI's own API call went to the server
        assert cli("test-webhook", wid).returncode == 0
        assert [g["json"]["event"] for g in rcv.got] == ["webhook.test"]
        assert "Authorization" not in rcv.got[0]["headers"]
    finally:
        rcv.close()
