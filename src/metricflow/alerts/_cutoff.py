"""A whole webhook attempt within one deadline, however the receiver trickles its answer.

urllib3's timeouts bound each socket operation, not the attempt: a receiver that sends
one byte of its answer every few seconds keeps a sender for minutes (urllib3 says so of
its own `total`). Here the pools' connections tell the attempt running on their thread
which socket they use, and one watchdog thread shuts that socket down when the attempt's
deadline passes: the blocked read returns, and the attempt fails like any other.

The same connections refuse a peer the server must never reach (`_PeerChecked`): the
webhook's host is checked before the POST (`forbidden_destination`), but resolved again
when a connection opens, and a name that answers differently the second time (DNS
rebinding) would otherwise reach a cloud metadata address.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from metricflow._netguard import literal_address, never_reach

log = logging.getLogger(__name__)

_current = threading.local()  # .attempt: the _Attempt running on this thread

LONGEST_S = 86_400.0
"""A deadline further off than this is taken as this (an infinite one would stop the
watchdog's wait)."""


class _Attempt:
    """One attempt's connection, and whether its deadline has passed."""

    def __init__(self) -> None:
        self.cut = False
        self._conn: Any = None
        self._lock = threading.Lock()

    def uses(self, conn: Any) -> None:
        """`conn` carries this attempt (shut at once if the deadline has passed)."""
        with self._lock:
            self._conn = conn
            conn.mf_attempt = self
            if self.cut:
                _shut(conn)

    def released(self, conn: Any) -> None:
        """`conn` goes back to its pool (urllib3 may do so as soon as a body is read),
        where another thread's attempt may take it: it is no longer this attempt's."""
        with self._lock:
            if self._conn is conn:
                self._conn = None

    def done(self) -> None:
        """The attempt no longer uses its connection: call before the connection goes back
        to its pool, where another thread's attempt may take it."""
        with self._lock:
            self._conn = None

    def expire(self) -> None:
        with self._lock:
            self.cut = True
            if self._conn is not None:
                _shut(self._conn)


def _shut(conn: Any) -> None:
    """Shut the connection's socket down (a blocked read then returns). TLS inside TLS
    (an HTTPS target through an HTTPS proxy) is urllib3's SSLTransport, whose socket is
    the one beneath it."""
    sock = getattr(conn, "sock", None)
    for s in (sock, getattr(sock, "socket", None)):
        shutdown = getattr(s, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown(socket.SHUT_RDWR)
            except Exception:  # closed already, or not a socket after all
                continue
            return


class _Noted:
    """Mixin of the pools' connections: the running attempt learns which one it uses,
    when a request starts (a reused connection) and when a new one connects (before, so
    a proxy's CONNECT answer is bounded too once the socket exists; and after, in case
    the deadline passed while it did not)."""

    def connect(self) -> None:
        attempt = getattr(_current, "attempt", None)
        if attempt is not None:
            attempt.uses(self)
        super().connect()  # type: ignore[misc]
        if attempt is not None:
            attempt.uses(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        attempt = getattr(_current, "attempt", None)
        if attempt is not None:
            attempt.uses(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _PeerChecked:
    """Mixin of the pools' connections: a new socket whose peer is an address no request
    may go to (metricflow._netguard.never_reach) is closed before anything is sent. The
    address judged is the one connected to, so no later answer of the name can differ
    from it. Through a proxy the peer is the proxy (the target's name is the proxy's to
    resolve; `forbidden_destination` checked it before the POST)."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        try:
            peer = str(sock.getpeername()[0])
        except OSError as e:  # not connected after all
            peer = f"? ({type(e).__name__})"
        ip = literal_address(peer)
        why = "an unknown peer" if ip is None else never_reach(ip)
        if why:
            sock.close()
            raise NewConnectionError(
                cast(HTTPConnection, self),
                f"refused: {getattr(self, 'host', '')} connected to {peer}, {why}")
        return sock


class _NotedHTTPConnection(_Noted, _PeerChecked, HTTPConnection):
    pass


class _NotedHTTPSConnection(_Noted, _PeerChecked, HTTPSConnection):
    pass


class _Releasing:
    """Mixin of the pools: a connection put back is no longer its attempt's."""

    def _put_conn(self, conn: Any) -> None:
        attempt = getattr(conn, "mf_attempt", None)
        if attempt is not None:
            attempt.released(conn)
            conn.mf_attempt = None
        super()._put_conn(conn)  # type: ignore[misc]


class _NotedHTTPPool(_Releasing, HTTPConnectionPool):
    ConnectionCls = _NotedHTTPConnection


class _NotedHTTPSPool(_Releasing, HTTPSConnectionPool):
    ConnectionCls = _NotedHTTPSConnection


def note_connections(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """`manager`, whose pools' connections report to the attempt on their thread."""
    manager.pool_classes_by_scheme = {"http": _NotedHTTPPool, "https": _NotedHTTPSPool}
    return manager


class Watchdog:
    """One thread that expires attempts at their deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Attempt]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def within(self, seconds: float) -> Iterator[_Attempt]:
        """Run an attempt on this thread: its connection is shut after `seconds`. The
        attempt's `cut` says afterwards whether that happened."""
        attempt = _Attempt()
        at = time.monotonic() + min(seconds, LONGEST_S)
        with self._cond:
            heapq.heappush(self._heap, (at, next(self._seq), attempt))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="metricflow-webhook-deadlines")
                self._thread.start()
            self._cond.notify()
        _current.attempt = attempt
        try:
            yield attempt
        finally:
            _current.attempt = None
            attempt.done()  # nothing left to shut (the heap entry stays until its time)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, attempt = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            try:
                attempt.expire()
            except Exception:  # (never: _shut catches) the thread must outlive any one
                log.exception("webhook deadline: an attempt could not be cut")
