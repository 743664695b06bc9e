"""The serve process's HTTP/1.1 server on loopback: keep-alive, pipelining, chunked
bodies, limits and malformed requests (raw sockets, so nothing is smoothed over)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from metricflow.serving._serve_http import Request, Response, start_http


@pytest.fixture
def port() -> Iterator[int]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def handler(req: Request) -> Response:
        if req.path == "/boom":
            raise RuntimeError("handler bug")
        if req.path == "/slow":
            await asyncio.sleep(0.05)
        return Response(200, f"{req.method} {req.path} {len(req.body)} {req.body[:20]!r}"
                        .encode(), b"text/plain")

    async def main() -> None:
        srv = await start_http(handler, "127.0.0.1", 0, max_body=1000)
        box["port"] = srv.sockets[0].getsockname()[1]
        box["srv"] = srv
        ready.set()

    t = threading.Thread(target=lambda: (loop.run_until_complete(main()), loop.run_forever()),
                         daemon=True)
    t.start()
    ready.wait(10)
    yield int(box["port"])  # type: ignore[call-overload]
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def _exchange(port: int, data: bytes, *, answers: int = 1, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while got.count(b"HTTP/1.1 ") < answers or not _complete(got, answers):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def _complete(buf: bytes, answers: int) -> bool:
    pos = 0
    for _ in range(answers):
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return False
        head = buf[pos:end].lower()
        i = head.find(b"content-length:")
        n = int(head[i + 15:].split(b"\r\n")[0]) if i >= 0 else 0
        if len(buf) < end + 4 + n:
            return False
        pos = end + 4 + n
    return True


def test_keep_alive_and_pipelined_requests_answer_in_order(port):
    reqs = (b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nde"
            b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    got = _exchange(port, reqs, answers=3)
    bodies = [b.split(b"\r\n\r\n", 1)[1] for b in got.split(b"HTTP/1.1 ")[1:]]
    assert [b.split(b" ")[1] for b in bodies] == [b"/slow", b"/fast", b"/ping"]
    assert b"Connection: close" not in got


def test_a_chunked_body_is_decoded(port):
    got = _exchange(port, b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and b"/c 9 b'wikipedia'" in got


@pytest.mark.parametrize(("raw", "status", "words"), [
    (b"POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413, b"limit of 1000 bytes"),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n", 413, b"1000 bytes"),
    (b"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, b"Content-Length"),
    (b"NONSENSE\r\n\r\n", 400, b"malformed request line"),
    (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", 400, b"malformed header"),
    (b"GET /x HTTP/1.1\r\nX: " + b"a" * 70_000, 431, b"65536 bytes"),
])
def test_malformed_or_oversized_requests_get_a_clear_error_and_close(port, raw, status, words):
    got = _exchange(port, raw)
    assert got.startswith(f"HTTP/1.1 {status}".encode()), got[:200]
    assert words in got and b"Connection: close" in got


def test_a_handler_bug_is_a_500_and_the_server_keeps_serving(port):
    got = _exchange(port, b"GET /boom HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n", answers=2)
    assert got.startswith(b"HTTP/1.1 500") and b"GET /ok 0" in got


def test_http_1_0_closes_after_the_answer(port):
    got = _exchange(port, b"GET /old HTTP/1.0\r\n\r\n")
    assert b"Connection: close" in got and b"GET /old 0" in got


def test_a_deep_pipeline_pauses_reading_and_still_answers_everything_in_order(port):
    reqs = b"".join(f"GET /r{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(300))
    got = _exchange(port, reqs, answers=300, timeout=20)
    paths = [b.split(b"\r\n\r\n", 1)[1].split(b" ")[1] for b in got.split(b"HTTP/1.1 ")[1:]]
    assert paths == [f"/r{i}".encode() for i in range(300)]
