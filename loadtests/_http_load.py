"""A light HTTP/1.1 load generator on asyncio protocols (keep-alive, one request in flight
per connection), so a 2-core machine spends little CPU on the client side.

`closed_loop` keeps `conns` connections busy for `duration_s`; `open_loop` sends at a
fixed rate on a pool of connections and measures latency from each request's
scheduled start (so queueing shows up, as for a real caller).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


def request_bytes(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    h = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{h}\r\n").encode() + body


@dataclass
class LoadResult:
    latencies_ms: array = field(default_factory=lambda: array("d"))
    statuses: Counter = field(default_factory=Counter)
    headers: Counter = field(default_factory=Counter)
    """Counts of the watched response header's values."""
    conn_errors: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != 200) + self.conn_errors

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def pct(self, q: float) -> float:
        import numpy as np

        return float(np.percentile(np.frombuffer(self.latencies_ms, dtype=np.float64), q)) \
            if len(self.latencies_ms) else 0.0


class _Conn(asyncio.Protocol):
    def __init__(self, res: LoadResult, watch: bytes | None,
                 on_done: Callable[[_Conn], None]) -> None:
        self.res = res
        self.watch = watch
        self.on_done = on_done
        self.buf = bytearray()
        self.t0 = 0.0
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self.busy = False

    def connection_made(self, t: asyncio.BaseTransport) -> None:
        self.transport = t  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.res.conn_errors += 1
            self.busy = False
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self, req: bytes, t0: float) -> None:
        self.t0 = t0
        self.busy = True
        assert self.transport is not None
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end])
        low = head.lower()
        i = low.find(b"content-length:")
        eol = low.find(b"\r\n", i)
        n = int(low[i + 15:eol if eol >= 0 else len(low)].strip()) if i >= 0 else 0
        if len(self.buf) < end + 4 + n:
            return
        del self.buf[:end + 4 + n]
        res = self.res
        res.latencies_ms.append((time.perf_counter() - self.t0) * 1000.0)
        res.statuses[int(head[9:12])] += 1
        if self.watch is not None:
            j = low.find(self.watch)
            if j >= 0:
                eol = head.find(b"\r\n", j)
                value = head[j + len(self.watch):eol if eol >= 0 else len(head)]
                res.headers[value.strip().decode()] += 1
        self.busy = False
        self.on_done(self)


async def _connect(host: str, port: int, res: LoadResult, watch: bytes | None,
                   on_done: Callable[[_Conn], None]) -> _Conn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: _Conn(res, watch, on_done), host, port)
    return proto


async def closed_loop(host: str, port: int, make_req: Callable[[int], bytes], *, conns: int,
                      duration_s: float, watch_header: str | None = None) -> LoadResult:
    """`conns` connections, each sending its next request as soon as the answer arrives."""
    res = LoadResult()
    watch = None if watch_header is None else watch_header.lower().encode() + b":"
    counter = [0]
    deadline = [0.0]
    done = asyncio.get_running_loop().create_future()
    active = [conns]

    def next_req(c: _Conn) -> None:
        if time.perf_counter() >= deadline[0] or c.transport is None:
            active[0] -= 1
            if not active[0] and not done.done():
                done.set_result(None)
            return
        counter[0] += 1
        c.send(make_req(counter[0]), time.perf_counter())

    cs = [await _connect(host, port, res, watch, next_req) for _ in range(conns)]
    t0 = time.perf_counter()
    deadline[0] = t0 + duration_s
    for c in cs:
        next_req(c)
    try:
        await asyncio.wait_for(done, duration_s + 60)
    finally:
        res.elapsed_s = time.perf_counter() - t0
        for c in cs:
            if c.transport is not None:
                c.transport.close()
    return res


async def open_loop(host: str, port: int, make_req: Callable[[int], bytes], *, rate: float,
                    n: int, pool: int = 64) -> LoadResult:
    """`n` requests at `rate`/s; latency counts from each request's scheduled time."""
    res = LoadResult()
    idle: list[_Conn] = []
    waiting: list[tuple[bytes, float]] = []

    def on_done(c: _Conn) -> None:
        if waiting:
            req, t = waiting.pop(0)
            c.send(req, t)
        else:
            idle.append(c)

    for _ in range(pool):
        idle.append(await _connect(host, port, res, None, on_done))
    t0 = time.perf_counter()
    for i in range(n):
        at = t0 + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        req = make_req(i + 1)
        if idle:
            idle.pop().send(req, at)
        else:
            waiting.append((req, at))
    while len(res.latencies_ms) + res.conn_errors < n:
        await asyncio.sleep(0.01)
    res.elapsed_s = time.perf_counter() - t0
    for c in idle:
        if c.transport is not None:
            c.transport.close()
    return res
