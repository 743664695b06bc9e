"""A receiver that trickles its answer holds a sender for `timeout_s` at most, not for
as long as it keeps sending a byte now and then (urllib3's timeouts are per read)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from metricflow.alerts import AlertStore, Webhook
from metricflow.alerts._webhooks import Dispatcher, DispatcherConfig

BYTE_EVERY_S = 0.25


class Trickler:
    """Reads each request's head and body, then sends `answer`: its first `at_once`
    bytes at once, the rest one byte every `pace` seconds (0: at once), on one kept-alive
    connection until the sender hangs up."""

    def __init__(self, answer: bytes, pace: float = BYTE_EVERY_S, at_once: int = 0,
                 tls: ssl.SSLContext | None = None, wait_s: float = 0.0) -> None:
        self.answer, self.pace, self.at_once, self.tls = answer, pace, at_once, tls
        self.wait_s = wait_s  # before each answer
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        self.connections += 1
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                return
        with conn:
            got = b""
            while True:
                while b"\r\n\r\n" not in got:
                    more = conn.recv(65536)
                    if not more:
                        return
                    got += more
                head, _, got = got.partition(b"\r\n\r\n")
                length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n")
                                   if ln.lower().startswith(b"content-length")), 0))
                while len(got) < length:
                    got += conn.recv(65536)
                got = got[length:]
                time.sleep(self.wait_s)
                try:
                    if not self.pace:
                        conn.sendall(self.answer)
                        self.sent += len(self.answer)
                        continue
                    conn.sendall(self.answer[:self.at_once])
                    self.sent += self.at_once
                    for i in range(self.at_once, len(self.answer)):
                        conn.sendall(self.answer[i:i + 1])
                        self.sent += 1
                        time.sleep(self.pace)
                except OSError:
                    return  # the sender hung up

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dispatcher(store: AlertStore) -> Iterator[Dispatcher]:
    d = Dispatcher(store, DispatcherConfig(timeout_s=1.0))
    yield d
    d.stop()


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
OOPS_HEAD = b"HTTP/1.1 500 Oops\r\nContent-Length: 40\r\n\r\n"


CUT = "no complete answer within 1 s (timeout_s)"


@pytest.mark.parametrize("answer,at_once,want", [
    # the head trickled (~38 bytes: 9.5 s at this pace): no status in time
    (OK_HEAD.replace(b"40", b"0"), 0, {"status_code": None, "delivered": False, "error": CUT}),
    # a 500's head in one go, its explanation trickled: the status stands
    (OOPS_HEAD + b"b" * 40, len(OOPS_HEAD),
     {"status_code": 500, "delivered": False, "error": CUT}),
    # a 2xx's body trickled: the receiver took the payload, only its text was slow
    (OK_HEAD + b"c" * 40, len(OK_HEAD), {"status_code": 200, "delivered": True, "error": None}),
], ids=["head", "error-text", "2xx-body"])
def test_a_trickled_answer_is_cut_at_the_deadline(dispatcher: Dispatcher, answer: bytes,
                                                  at_once: int, want: dict[str, Any]) -> None:
    rcv = Trickler(answer, at_once=at_once)
    try:
        t0 = time.monotonic()
        got = dispatcher.test(Webhook("slow", rcv.url, ("alert.firing",), webhook_id=7))
        assert time.monotonic() - t0 < 3.0  # timeout_s 1.0, with room for a loaded machine
        assert rcv.sent < len(answer)  # cut before the receiver was done
        assert got == want
    finally:
        rcv.close()


def test_a_prompt_receiver_on_a_kept_connection_is_not_cut(dispatcher: Dispatcher) -> None:
    """Deadlines of finished attempts never touch the connection the next one reuses."""
    rcv = Trickler(b"HTTP/1.1 204 No Content\r\n\r\n", pace=0)
    try:
        hook = Webhook("prompt", rcv.url, ("alert.firing",), webhook_id=10)
        codes = []
        for _ in range(4):
            codes.append(dispatcher.test(hook)["status_code"])
            time.sleep(0.4)  # the first attempts' deadlines (1 s) pass meanwhile
        assert codes == [204] * 4
        assert rcv.connections == 1  # one connection, kept: none was shut by a deadline
    finally:
        rcv.close()


def test_over_tls_too(dispatcher: Dispatcher, tmp_path: Any, monkeypatch: Any) -> None:
    """The TLS connections report to their attempt as the plain ones do."""
    from certs import issue_pki

    pki = issue_pki(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki["ca_file"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    prompt = Trickler(b"HTTP/1.1 204 No Content\r\n\r\n", pace=0, tls=ctx)
    slow = Trickler(OK_HEAD.replace(b"40", b"0"), tls=ctx)
    try:
        assert dispatcher.test(Webhook("tls", prompt.url, ("alert.firing",),
                                       webhook_id=11))["status_code"] == 204
        t0 = time.monotonic()
        got = dispatcher.test(Webhook("tls-slow", slow.url, ("alert.firing",), webhook_id=12))
        assert time.monotonic() - t0 < 3.0
        assert got["error"] == "no complete answer within 1 s (timeout_s)"
    finally:
        prompt.close()
        slow.close()


def test_a_proxy_trickling_its_connect_answer_is_cut(dispatcher: Dispatcher,
                                                     monkeypatch: Any) -> None:
    """An HTTPS target through an HTTP proxy: the tunnel's CONNECT answer is read while
    the connection connects, before any request; the deadline covers it too."""
    proxy = Trickler(b"HTTP/1.1 200 Connection established\r\n\r\n")
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("/hook", ""))
    for k in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(k, raising=False)
    try:
        t0 = time.monotonic()
        got = dispatcher.test(Webhook("via", "https://127.0.0.1:9/hook", ("alert.firing",),
                                      webhook_id=13))
        assert time.monotonic() - t0 < 3.0
        assert got["error"] == "no complete answer within 1 s (timeout_s)"
    finally:
        proxy.close()


def test_a_finished_attempts_deadline_spares_its_connection_in_another_hand(
        dispatcher: Dispatcher, monkeypatch: Any) -> None:
    """urllib3 puts a connection back in its pool as soon as the answer's body is read.
    Another sender may take it while the first attempt's deadline has yet to pass: that
    deadline must not cut the second attempt."""
    import urllib3.response

    rcv = Trickler(b"HTTP/1.1 204 No Content\r\n\r\n", pace=0, wait_s=0.6)
    release = urllib3.response.HTTPResponse.release_conn

    def slow_release(self: Any) -> None:  # the first sender, preempted after giving it back
        release(self)
        if threading.current_thread().name == "first":
            time.sleep(0.8)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "release_conn", slow_release)
    hook = Webhook("kept", rcv.url, ("alert.firing",), webhook_id=14)
    got: dict[str, Any] = {}
    first = threading.Thread(target=lambda: got.__setitem__("first", dispatcher.test(hook)),
                             name="first")
    try:
        first.start()
        time.sleep(0.7)  # the first answer is in (0.6 s); its deadline (1 s) is not past
        got["second"] = dispatcher.test(hook)  # answered at ~1.3 s, on the same connection
        first.join()
        assert got["first"]["status_code"] == got["second"]["status_code"] == 204, got
        assert rcv.connections == 1
    finally:
        first.join()
        rcv.close()
