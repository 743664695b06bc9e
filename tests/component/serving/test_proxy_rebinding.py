"""A deployment's endpoint is checked when its variant loads (`check_endpoint`), but the
proxy's session resolves the name again as its DNS cache expires. A name that later
answers an address the serve process must not reach (DNS rebinding) gets no request:
the session's resolver drops such addresses (serving/_serve_models.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from post_receiver import PostReceiver

from metricflow.serving._serve_models import ProxyModel, check_endpoint

HOST = "rebind.example.test"


@pytest.fixture
def receiver() -> Iterator[PostReceiver]:
    # on every address: on Linux a connection to 0.0.0.0 reaches this host
    r = PostReceiver(200, b'{"predictions": [1.0]}', host="0.0.0.0")
    yield r
    r.close()


@pytest.fixture
def answers(monkeypatch: Any) -> dict[str, str]:
    """HOST resolves to `answers["ip"]`, whatever that is at the time."""
    real = socket.getaddrinfo
    got = {"ip": "127.0.0.1"}

    def getaddrinfo(host: Any, port: Any, *a: Any, **k: Any) -> Any:
        if host == HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (got["ip"], int(port or 0)))]
        return real(host, port, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return got


def _forward(model: ProxyModel) -> Any:
    async def go() -> Any:
        try:
            return await model.forward(b'{"inputs": [[1]]}', "application/json")
        finally:
            if model._session is not None:
                await model._session.close()
    return asyncio.run(go())


def test_a_name_that_rebinds_to_the_unspecified_address_gets_no_request(
        receiver: PostReceiver, answers: dict[str, str], caplog: Any) -> None:
    url = f"http://{HOST}:{receiver.port}/invocations"
    check_endpoint(url, allow_private=True)  # 127.0.0.1 when the variant loads
    answers["ip"] = "0.0.0.0"  # later: an address never to be reached (here: this host)
    with pytest.raises(OSError, match="its address is refused") as e:
        _forward(ProxyModel(url, allow_private=True))
    assert receiver.posts == 0
    # the caller is told it was refused; only the serve log says where and why
    assert "0.0.0.0" not in str(e.value)
    assert "0.0.0.0 refused: the unspecified address" in caplog.text


def test_an_ip_literal_in_unicode_digits_is_judged_at_connect_time(
        receiver: PostReceiver) -> None:
    # U+1CCF7 (OUTLINED DIGIT SEVEN) is "7" to aiohttp's URL parser, not to Python's: a
    # literal 127.0.0.1 for the session, a name for urlsplit. Both checks now see 127.0.0.1.
    url = f"http://12\U0001CCF7.0.0.1:{receiver.port}/invocations"
    with pytest.raises(ValueError, match="127.0.0.1, a loopback or private address"):
        check_endpoint(url, allow_private=False)
    with pytest.raises(OSError, match="its address is refused"):
        _forward(ProxyModel(url))  # (a literal: no resolver; the socket factory refuses)
    assert receiver.posts == 0


def test_a_private_answer_needs_the_flag_at_connect_time_too(
        receiver: PostReceiver, answers: dict[str, str]) -> None:
    url = f"http://{HOST}:{receiver.port}/invocations"
    with pytest.raises(OSError, match="its address is refused"):
        _forward(ProxyModel(url))  # 127.0.0.1 without --allow-private-endpoints
    assert receiver.posts == 0
    answer = _forward(ProxyModel(url, allow_private=True))
    assert answer.status == 200 and receiver.posts == 1
