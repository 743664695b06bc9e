"""A small HTTP/1.1 server on asyncio (uvloop) for the serve process's hot path.

Why not uvicorn: without httptools, uvicorn parses HTTP with h11 in pure Python,
and an ASGI app adds a scope dict, two message dicts and a task per request. The
scoring protocol needs none of that: a request line, a few headers, a body with a
Content-Length (or chunked), keep-alive, and in-order answers per connection.
Measured side by side in `loadtests/serve_bench.py` (docs/serving.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_PIPELINED = 64
"""Parsed requests waiting on one connection before it stops reading from it."""


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


def encode(resp: Response, keep_alive: bool) -> bytes:
    head = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}\r\n"
            f"Content-Length: {len(resp.body)}\r\n"]
    for k, v in resp.headers:
        head.append(f"{k}: {v}\r\n")
    if not keep_alive:
        head.append("Connection: close\r\n")
    return ("".join(head).encode("latin-1") + b"Content-Type: " + resp.content_type
            + b"\r\n\r\n" + resp.body)


class _Conn(asyncio.Protocol):
    """One connection: parse requests as bytes arrive, answer them in order."""

    __slots__ = ("_buf", "_closing", "_handler", "_max_body", "_queue", "_task", "_transport")

    def __init__(self, handler: Handler, max_body: int) -> None:
        self._handler = handler
        self._max_body = max_body
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._queue: list[tuple[Request, bool]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while not self._closing:
            parsed = self._parse()
            if parsed is None:
                break
            self._queue.append(parsed)
        if len(self._queue) > MAX_PIPELINED and self._transport is not None:
            self._transport.pause_reading()  # a client pipelining without reading answers
        if self._queue and self._task is None:
            self._task = asyncio.ensure_future(self._drain())

    def _fail(self, status: int, message: str) -> None:
        code = "REQUEST_TOO_LARGE" if status in (413, 431) else "BAD_REQUEST"
        body = ('{"error_code": "' + code + '", "message": ' + _json_str(message)
                + "}").encode()
        self._closing = True
        self._buf.clear()
        self._queue.append((Request("!", str(status), "", {}, body), False))

    def _parse(self) -> tuple[Request, bool] | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                self._fail(431, f"request headers exceed {MAX_HEADER_BYTES} bytes")
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._fail(400, f"malformed request line {lines[0][:100]!r}")
            return None
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                self._fail(400, f"malformed header line {line[:100]!r}")
                return None
            headers[k.strip().lower()] = v.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            got = _dechunk(buf, start, self._max_body)
            if got is None:
                return None
            if isinstance(got, str):
                self._fail(413 if "exceeds" in got else 400, got)
                return None
            body, consumed = got
        else:
            try:
                n = int(headers.get("content-length", "0"))
            except ValueError:
                self._fail(400, f"Content-Length must be an integer, got "
                                f"{headers['content-length'][:40]!r}")
                return None
            if n < 0 or n > self._max_body:
                self._fail(413, f"request body of {n} bytes exceeds the limit of "
                                f"{self._max_body} bytes (--max-body-bytes)")
                return None
            if len(buf) < start + n:
                return None
            body, consumed = bytes(buf[start:start + n]), start + n
        del buf[:consumed]
        conn = headers.get("connection", "").lower()
        keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body), keep

    async def _drain(self) -> None:
        try:
            while self._queue:
                req, keep = self._queue.pop(0)
                if req.method == "!":  # a parse error: answer it and close
                    resp, keep = Response(int(req.path), req.body), False
                else:
                    try:
                        resp = await self._handler(req)
                    except Exception:  # the handler's own bug: answer 500, keep serving
                        log.exception("unhandled error answering %s %s", req.method, req.path)
                        resp = Response(500, b'{"error_code": "INTERNAL_ERROR", '
                                             b'"message": "internal error"}')
                t = self._transport
                if t is None:
                    return
                t.write(encode(resp, keep))
                if len(self._queue) == MAX_PIPELINED // 2 and not self._closing:
                    t.resume_reading()
                if not keep:
                    t.close()
                    self._queue.clear()
                    return
        finally:
            self._task = None
            if self._queue and self._transport is not None:
                self._task = asyncio.ensure_future(self._drain())


def _dechunk(buf: bytearray, start: int, limit: int) -> tuple[bytes, int] | str | None:
    """Decode a chunked body from buf[start:]: (body, bytes consumed), an error, or None."""
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_s = bytes(buf[pos:eol]).split(b";")[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            return f"malformed chunk size {size_s[:20]!r}"
        if len(out) + size > limit:
            return f"chunked request body exceeds the limit of {limit} bytes (--max-body-bytes)"
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            if end < 0:
                return None if len(buf) - eol < MAX_HEADER_BYTES else "chunk trailer too long"
            return bytes(out), end + 4
        if len(buf) < eol + 2 + size + 2:
            return None
        out += buf[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def _json_str(s: str) -> str:
    import json

    return json.dumps(s)


async def start_http(handler: Handler, host: str, port: int, *, max_body: int,
                     backlog: int = 2048) -> Any:
    """Listen on host:port; returns the asyncio Server (its sockets name the bound port)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Conn(handler, max_body), host, port,
                                    backlog=backlog, reuse_address=True)
