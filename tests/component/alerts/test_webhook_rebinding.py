"""A webhook's host is checked before the POST (`forbidden_destination`) and resolved
again when the connection opens. A name that answers a harmless address to the check and
a metadata address to the connection (DNS rebinding) must not get the POST: the address
the socket connected to is judged too (alerts/_cutoff.py `_PeerChecked`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3.util.connection
from post_receiver import PostReceiver

from metricflow.alerts import AlertStore, Webhook
from metricflow.alerts._webhooks import Dispatcher, DispatcherConfig

HOST = "rebind.example.test"


@pytest.fixture
def receiver() -> Iterator[PostReceiver]:
    r = PostReceiver()
    yield r
    r.close()


def _peer_seen_as(address: str) -> type[socket.socket]:
    class Seen(socket.socket):
        def getpeername(self) -> Any:
            return (address, 80)
    return Seen


@pytest.fixture
def rebinding(monkeypatch: Any, receiver: PostReceiver) -> dict[str, str]:
    """HOST resolves to 127.0.0.1 (what the check sees); the connection goes to the
    receiver but reports the peer that `peer["as"]` names (what a rebound name gives)."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = urllib3.util.connection.create_connection
    peer: dict[str, str] = {"as": ""}

    def getaddrinfo(host: Any, *a: Any, **k: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == HOST else host, *a, **k)

    def create_connection(address: Any, *a: Any, **k: Any) -> socket.socket:
        host, port = address
        sock = real_connect(("127.0.0.1" if host == HOST else host, port), *a, **k)
        if host != HOST or not peer["as"]:
            return sock
        return _peer_seen_as(peer["as"])(sock.family, sock.type, sock.proto, sock.detach())

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return peer


@pytest.fixture
def dispatcher(store: AlertStore) -> Iterator[Dispatcher]:
    d = Dispatcher(store, DispatcherConfig(timeout_s=2.0))
    yield d
    d.stop()


@pytest.mark.parametrize("address,why", [
    ("169.254.169.254", "a link-local address"),
    ("::ffff:169.254.169.254", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("0.0.0.0", "the unspecified address"),
])
def test_a_rebound_name_does_not_get_the_post(dispatcher: Dispatcher, receiver: PostReceiver,
                                              rebinding: dict[str, str], address: str,
                                              why: str) -> None:
    hook = Webhook("rebind", f"http://{HOST}:{receiver.port}/hook", ("alert.firing",),
                   webhook_id=21)
    rebinding["as"] = address
    got = dispatcher.test(hook)
    assert got["delivered"] is False and got["status_code"] is None
    assert f"connected to {address}, {why}" in got["error"], got
    assert receiver.posts == 0


def test_the_same_name_is_posted_to_when_it_connects_where_it_was_checked(
        dispatcher: Dispatcher, receiver: PostReceiver, rebinding: dict[str, str]) -> None:
    hook = Webhook("plain", f"http://{HOST}:{receiver.port}/hook", ("alert.firing",),
                   webhook_id=22)
    got = dispatcher.test(hook)
    assert got == {"status_code": 204, "delivered": True, "error": None}
    assert receiver.posts == 1
