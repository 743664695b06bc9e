"""The webhook watchdog (alerts/_cutoff.py) on sockets of its own: it cuts an attempt at
its deadline, leaves one that is done alone, reaches the socket beneath TLS-in-TLS, and
outlives a connection it cannot shut."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

from metricflow.alerts._cutoff import Watchdog, _current


def _reads_eof(peer: socket.socket, within_s: float) -> bool:
    peer.settimeout(within_s)
    try:
        return peer.recv(1) == b""
    except TimeoutError:
        return False


def test_cuts_at_the_deadline_and_spares_what_is_done() -> None:
    w = Watchdog()
    a, peer_a = socket.socketpair()
    b, peer_b = socket.socketpair()
    with w.within(0.2) as cut:
        _current.attempt.uses(SimpleNamespace(sock=a))
        assert _reads_eof(peer_a, 2.0)  # shut at 0.2 s while still in use
    assert cut.cut
    with w.within(0.2) as spared:
        _current.attempt.uses(SimpleNamespace(sock=b))
        spared.done()  # back to the pool: another attempt may use it now
    time.sleep(0.4)
    assert not _reads_eof(peer_b, 0.2)  # its deadline passed and left it alone
    for s in (a, b, peer_a, peer_b):
        s.close()


def test_reaches_the_socket_beneath_and_outlives_what_it_cannot_shut() -> None:
    class Unshuttable:
        def shutdown(self, how: int) -> None:
            raise RuntimeError("not a socket")

    w = Watchdog()
    inner, peer = socket.socketpair()
    with w.within(0.1):  # shutting this one fails: the watchdog must go on
        _current.attempt.uses(SimpleNamespace(sock=Unshuttable()))
        time.sleep(0.3)
    # urllib3's SSLTransport (TLS inside TLS) has no shutdown; its `socket` has
    with w.within(0.1):
        _current.attempt.uses(SimpleNamespace(sock=SimpleNamespace(socket=inner)))
        assert _reads_eof(peer, 2.0)
    inner.close()
    peer.close()
