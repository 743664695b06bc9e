"""The announcement path's shortcuts keep its guarantees: a sender wakes the outbox poller
only when something is left to send, the evaluator's claimed deliveries go out without a
poll (and the ones behind them right after), the reused HTTP session delivers to a
receiver that restarted, and the environment's proxy settings still apply."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from metricflow._events import Event
from metricflow.alerts import AlertStore, Webhook, rule_from_dict
from metricflow.alerts._store import AlertState
from metricflow.alerts._webhooks import Dispatcher, DispatcherConfig


class _Receiver:
    def __init__(self, port: int = 0) -> None:
        self.got: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.cond:
                    outer.got.append(json.loads(body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.srv = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while len(self.got) < n and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.got)

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def _rule(store: AlertStore) -> int:
    return store.create_rule(rule_from_dict({"name": "r", "experiment_ids": ["0"],
                                             "condition": {"type": "failed"}})).rule_id


def test_finish_says_whether_the_outbox_has_more(store: AlertStore) -> None:
    rid = _rule(store)
    store.create_webhook(Webhook("h", "http://127.0.0.1:9/x", ("alert.firing",
                                                               "alert.resolved")))
    claimed: list = []
    queued: list[int] = []
    done = store.transitions([
        (AlertState(rid, "r", "firing"), Event("alert.firing", "alert:1:r", {}), (), ""),
        (AlertState(rid, "r", "resolved"), Event("alert.resolved", "alert:1:r", {}), (), "")],
        claim=claimed, queued=queued)
    assert done == [True, True] and queued == [1, 1]
    assert [d.event for d in claimed] == ["alert.firing"]  # the resolved waits behind it
    assert store.finish(claimed[0], True, 200, None, None) is True  # the resolved is left
    nxt = store.claim_due()
    assert [d.event for d in nxt] == ["alert.resolved"]
    # a retry later is something left to send; delivering it leaves nothing
    assert store.finish(nxt[0], False, 500, "boom", 0) is True
    again = store.claim_due()
    assert [d.delivery_id for d in again] == [nxt[0].delivery_id]
    assert store.finish(again[0], True, 200, None, None) is False


def test_claimed_deliveries_and_those_behind_go_out_without_a_poll(store: AlertStore) -> None:
    rcv = _Receiver()
    # a poll interval far beyond the test's waits: only the wakes deliver in time
    disp = Dispatcher(store, DispatcherConfig(poll_s=60.0))
    try:
        store.create_webhook(Webhook("h", f"http://127.0.0.1:{rcv.port}/x",
                                     ("alert.firing", "alert.resolved"), secret="s" * 16))
        rid = _rule(store)
        disp.start()
        time.sleep(0.2)  # the poller's first look is done: it sleeps poll_s now
        for i in range(3):  # back to back, as the evaluator announces fire + resolve
            claimed: list = []
            store.transitions([
                (AlertState(rid, "r", "firing", step=i), Event(
                    "alert.firing", "alert:1:r", {"step": i}), (), ""),
                (AlertState(rid, "r", "resolved", step=i), Event(
                    "alert.resolved", "alert:1:r", {"step": i}), (), "")], claim=claimed)
            disp.send_now(claimed)
            if len(claimed) < 2:
                disp.notify()  # what the evaluator does when some wait behind
            got = rcv.wait(2 * (i + 1))
            assert [(g["event"], g["data"]["step"]) for g in got[2 * i:]] == [
                ("alert.firing", i), ("alert.resolved", i)]
        # the receiver restarts on the same port: the senders' reused sessions deliver
        port = rcv.port
        rcv.close()
        rcv = _Receiver(port)
        disp.on_event(Event("alert.firing", "alert:2:r", {"step": 9}))
        got = rcv.wait(1)
        assert [(g["event"], g["data"]["step"]) for g in got] == [("alert.firing", 9)]
        assert disp.failed == 0
    finally:
        disp.stop()
        rcv.close()


def test_environment_proxy_settings_still_apply(store: AlertStore,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    disp = Dispatcher(store)
    try:
        far = disp._environment("http://hooks.example.com/x")
        assert far["proxies"].get("http") == "http://proxy.invalid:3128"
        assert far["verify"] == "/etc/ssl/bundle.pem"
        assert "http" not in disp._environment("http://127.0.0.1:9/x")["proxies"]
    finally:
        disp.stop()
