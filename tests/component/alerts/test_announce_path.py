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
from metricflow.alerts._store import AlertState, Delivery, now_ms
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


def test_a_finished_delivery_hands_its_sender_the_next_of_its_subject(
        store: AlertStore) -> None:
    rid = _rule(store)
    store.create_webhook(Webhook("h", "http://127.0.0.1:9/x", ("alert.firing",
                                                               "alert.resolved")))

    def announce(subject: str, n: int) -> list:
        claimed: list = []
        store.transitions([(AlertState(rid, subject, "firing" if i % 2 == 0 else "resolved",
                                       step=i),
                            Event("alert.firing" if i % 2 == 0 else "alert.resolved",
                                  f"alert:1:{subject}", {"step": i}), (), "")
                           for i in range(n)], claim=claimed)
        return claimed

    head = announce("a", 3)
    assert len(head) == 1
    other = announce("b", 1)  # another subject: it stays for the poller
    # delivered: the next of its subject comes back claimed, in order
    more, nxt = store.finish_and_take_next(head[0], True, 200, None, None)
    assert more is True and nxt is not None and nxt.status == "sending"
    assert (nxt.subject, nxt.seq > head[0].seq) == ("alert:1:a", True)
    assert [d.seq for d in store.claim_due()] == []  # a and b's heads are both claimed
    # a retry keeps its place: nothing is handed over, the third waits behind it
    more, none = store.finish_and_take_next(nxt, False, 500, "boom", now_ms())
    assert (more, none) == (True, None)
    [again] = store.claim_due()  # the retry, due now (b's head is still claimed)
    assert again.seq == nxt.seq and again.attempts == 1
    # a sender whose lease is gone (the retry was claimed again since) records nothing
    assert store.finish_and_take_next(nxt, True, 200, None, None) == (True, None)
    # dead: the third is handed over
    more, third = store.finish_and_take_next(again, False, 500, "boom", None)
    assert third is not None and third.seq > nxt.seq and more is True  # b is still out
    assert store.finish_and_take_next(third, True, 200, None, None) == (True, None)
    assert store.finish_and_take_next(other[0], True, 200, None, None) == (False, None)
    statuses = [d.status for d in store.list_deliveries()]
    assert sorted(statuses) == ["dead", "delivered", "delivered", "delivered"]


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


_ONE = Delivery(1, "d1", 1, "e1", "alert.firing", "s", json.dumps({"data": {}}), "sending",
                0, 0, None, None, 0, None)
"""A delivery to POST directly (`Dispatcher.post`)."""


def _proxy(seen: list[tuple[str, str | None, str | None]]) -> ThreadingHTTPServer:
    """An HTTP proxy that answers every POST itself (204), recording (request target,
    Proxy-Authorization, Authorization)."""

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, self.headers.get("Proxy-Authorization"),
                         self.headers.get("Authorization")))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


def test_a_post_goes_through_the_environments_proxy_with_its_credentials(
        store: AlertStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The proxy (with the user and password in its URL) and ~/.netrc's credentials
    for the webhook's host reach the wire; a host in NO_PROXY is posted to directly."""
    seen: list[tuple[str, str | None, str | None]] = []
    proxy = _proxy(seen)
    rcv = _Receiver()
    netrc = tmp_path / "netrc"
    netrc.write_text("machine hooks.example.com login hu password hp\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", f"http://pu:pp@127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    disp = Dispatcher(store)
    d = _ONE
    try:
        far = Webhook("far", "http://hooks.example.com/x", ("alert.firing",))
        assert disp.post(far, d) == (204, None)
        assert seen == [("http://hooks.example.com/x", "Basic cHU6cHA=", "Basic aHU6aHA=")]
        near = Webhook("near", f"http://127.0.0.1:{rcv.port}/x", ("alert.firing",))
        assert disp.post(near, d) == (200, None)
        assert len(seen) == 1 and len(rcv.wait(1)) == 1
    finally:
        disp.stop()
        rcv.close()
        proxy.shutdown()
        proxy.server_close()


def test_an_error_answer_is_recorded_with_the_start_of_its_text(store: AlertStore) -> None:
    class Boom(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = ("no such channel " * 10_000).encode()
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Boom)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    disp = Dispatcher(store)
    d = _ONE
    try:
        hook = Webhook("h", f"http://127.0.0.1:{srv.server_address[1]}/x", ("alert.firing",))
        for _ in range(2):  # the long answer's connection is not reused half-read
            code, err = disp.post(hook, d)
            assert code == 404 and err is not None
            assert err.startswith("no such channel no such") and len(err) == 500
        code, err = disp.post(Webhook("h", "http://127.0.0.1:9/x", ("alert.firing",)), d)
        assert code is None and err is not None and "refused" in err.lower()
    finally:
        disp.stop()
        srv.shutdown()
        srv.server_close()


def test_a_proxy_without_a_scheme_is_taken_as_http(store: AlertStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str | None, str | None]] = []
    proxy = _proxy(seen)
    monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    disp = Dispatcher(store)
    d = _ONE
    try:
        hook = Webhook("far", "http://hooks.example.com/x", ("alert.firing",))
        assert disp.post(hook, d) == (204, None)
        assert [x[0] for x in seen] == ["http://hooks.example.com/x"]
    finally:
        disp.stop()
        proxy.shutdown()
        proxy.server_close()
