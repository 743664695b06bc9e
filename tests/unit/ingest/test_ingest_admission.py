"""The ingest node holds a batch briefly while its sink is full instead of pushing it back."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from metricflow.errors import ResourceExhausted
from metricflow.ingest._service import IngestServicer


class _FullFor:
    """A core whose sink refuses the first `refusals` submits."""

    def __init__(self, refusals: int, hint: float = 0.02) -> None:
        self.refusals, self.hint, self.calls = refusals, hint, 0

    async def write_metrics(self, decoded, raw, batch_id) -> None:
        self.calls += 1
        if self.calls <= self.refusals:
            raise ResourceExhausted("full", retry_after_s=self.hint, field="pending_points")


def _servicer(core: _FullFor, wait_s: float, max_bytes: int = 1 << 20) -> IngestServicer:
    s = IngestServicer.__new__(IngestServicer)  # only the admission state, no real sink
    s.core = core  # type: ignore[assignment]
    s.admission_wait_s, s.max_waiting_bytes, s.waiting_bytes = wait_s, max_bytes, 0
    return s


def _admit(s: IngestServicer, nbytes: int = 1000) -> None:
    asyncio.run(s._admit(SimpleNamespace(n=1), b"x" * nbytes, ("c", 1)))


def test_a_batch_waits_until_the_sink_has_room() -> None:
    core = _FullFor(refusals=3)
    s = _servicer(core, wait_s=30.0)
    _admit(s)
    assert core.calls == 4 and s.waiting_bytes == 0


def test_still_full_after_the_wait_is_pushed_back_with_the_hint() -> None:
    core = _FullFor(refusals=10**9, hint=0.05)
    s = _servicer(core, wait_s=0.2)
    t0 = time.monotonic()
    with pytest.raises(ResourceExhausted) as ei:
        _admit(s)
    assert time.monotonic() - t0 >= 0.2
    assert ei.value.retry_after_s == 0.05 and s.waiting_bytes == 0


def test_waiting_bytes_are_bounded() -> None:
    core = _FullFor(refusals=10**9)
    s = _servicer(core, wait_s=30.0, max_bytes=10_000)
    s.waiting_bytes = 9_500  # other batches already wait
    with pytest.raises(ResourceExhausted):
        _admit(s, nbytes=1000)
    assert core.calls == 1  # pushed back at once, no wait


def test_no_wait_configured_pushes_back_at_once() -> None:
    core = _FullFor(refusals=1)
    with pytest.raises(ResourceExhausted):
        _admit(_servicer(core, wait_s=0.0))
    assert core.calls == 1
