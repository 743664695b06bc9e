"""A write that finds its stream already finished reports the call's own status."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from metricflow.client._sender import _describe, _raise_final_status


class _Call:
    def __init__(self, done: bool, code: grpc.StatusCode, details: str) -> None:
        self._done, self._code, self._details = done, code, details

    def done(self) -> bool:
        return self._done

    async def code(self) -> grpc.StatusCode:
        return self._code

    async def details(self) -> str:
        return self._details


@pytest.mark.parametrize("code, details, want", [
    (grpc.StatusCode.OK, "", "UNAVAILABLE: the server ended the stream (OK: no details)"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "too big",
     "RESOURCE_EXHAUSTED: the server ended the stream (RESOURCE_EXHAUSTED: too big)"),
])
def test_a_finished_call_raises_its_status(code: grpc.StatusCode, details: str,
                                           want: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        asyncio.run(_raise_final_status(_Call(True, code, details)))
    assert _describe(e.value).startswith(want), _describe(e.value)


def test_a_call_not_finished_raises_nothing_of_its_own() -> None:
    assert asyncio.run(_raise_final_status(_Call(False, grpc.StatusCode.OK, ""))) is None
