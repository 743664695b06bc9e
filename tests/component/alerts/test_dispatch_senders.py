"""The senders share out fairly and never outlive a claim: the poller claims only what a
free sender takes at once (a claim left waiting for a sender would lose its lease and be
sent twice), a sender sends at most `chain` deliveries of one subject back to back, a
stopped dispatcher gives its next claim back, and a webhook the control plane cannot read
is retried, not given up. (A proxy without a scheme: test_announce_path.py.)"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from metricflow._events import Event
from metricflow.alerts import AlertStore, Webhook
from metricflow.alerts._webhooks import Dispatcher, DispatcherConfig


class _Slow:
    """A receiver that answers each POST after `delay_s`, recording (subject, step)."""

    def __init__(self, delay_s: float) -> None:
        self.got: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay_s)
                with outer.lock:
                    outer.got.append((body["subject"], body["data"]["step"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/x"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout_s: float = 20.0) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    break
            time.sleep(0.02)
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def _queue(store: AlertStore, subject: str, steps: range) -> None:
    for i in steps:
        store.queue_event(Event("alert.firing", subject, {"step": i}))


def _statuses(store: AlertStore, subject: str) -> list[str]:
    return [d.status for d in sorted(store.list_deliveries(), key=lambda d: d.seq)
            if d.subject == subject]


def test_a_claim_waits_for_no_sender_and_a_busy_subject_shares_its_sender(
        store: AlertStore) -> None:
    rcv = _Slow(0.1)
    store.create_webhook(Webhook("h", rcv.url, ("alert.firing",)))
    disp = Dispatcher(store, DispatcherConfig(workers=1, per_webhook=1, chain=3,
                                              poll_s=0.05))
    try:
        _queue(store, "a", range(2))
        _queue(store, "c", range(1))  # older than a's later deliveries
        _queue(store, "a", range(2, 8))
        disp.start()
        time.sleep(0.15)  # the one sender is on subject a
        # c is due, but no sender is free: it is not claimed meanwhile
        assert _statuses(store, "c") == ["pending"]
        got = rcv.wait(9)
        a = [s for subj, s in got if subj == "a"]
        assert a == list(range(8))  # in order
        # a's sender went on for one chain (3), then c, the oldest head, went first
        assert got.index(("c", 0)) == 3, got
    finally:
        disp.stop()
        rcv.close()


def test_a_stopped_dispatcher_gives_its_next_claim_back(store: AlertStore) -> None:
    rcv = _Slow(0.3)
    store.create_webhook(Webhook("h", rcv.url, ("alert.firing",)))
    disp = Dispatcher(store, DispatcherConfig(workers=1, chain=10, poll_s=0.05))
    try:
        _queue(store, "a", range(3))
        disp.start()
        time.sleep(0.15)  # the first POST is in flight
        disp.stop()
        rcv.wait(1)
        time.sleep(0.6)  # its sender records it and does not go on
        left = _statuses(store, "a")
        assert left[0] == "delivered" and "sending" not in left, left
        assert left[1:] == ["pending", "pending"]
        assert store.next_due_ms() is not None and store.next_due_ms() <= time.time() * 1000
    finally:
        rcv.close()


def test_an_unreadable_webhook_is_retried_not_dead(store: AlertStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store.create_webhook(Webhook("h", "http://127.0.0.1:9/x", ("alert.firing",)))
    _queue(store, "a", range(1))
    [d] = store.claim_due()
    disp = Dispatcher(store)

    def broken(webhook_id: int) -> Webhook:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(store, "get_webhook", broken)
    try:
        more, nxt = disp._attempt(d, True)
        [row] = store.list_deliveries()
        assert (row.status, row.attempts, nxt) == ("pending", 1, None)
        assert row.last_error == "webhook unreadable: RuntimeError"
    finally:
        disp.stop()
