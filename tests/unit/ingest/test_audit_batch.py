"""AuditBatcher: the run lifecycle's audit entries of concurrent calls share a write."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from metricflow.ingest._audit_batch import AuditBatcher


class SlowLog:
    """A write_many that holds each write until released, recording what it got."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.gate = threading.Event()
        self.fail_next = False

    def __call__(self, entries: list[dict[str, Any]]) -> None:
        self.gate.wait(5)
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.writes.append([e["entity_id"] for e in entries])


async def _record_all(b: AuditBatcher, ids: list[str]) -> list[BaseException | None]:
    res = await asyncio.gather(*(b.record(action="create_run", entity_type="run",
                                          entity_id=i) for i in ids), return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in res]


def test_calls_during_a_write_share_the_next_one_in_order() -> None:
    log = SlowLog()
    b = AuditBatcher(log)

    async def main() -> None:
        first = asyncio.create_task(b.record(action="a", entity_type="run", entity_id="r0"))
        await asyncio.sleep(0.05)  # r0's write is in flight (held by the gate)
        rest = asyncio.create_task(_record_all(b, [f"r{i}" for i in range(1, 9)]))
        await asyncio.sleep(0.05)
        assert not first.done()  # nobody returns before their entry is written
        log.gate.set()
        await first
        assert await rest == [None] * 8

    asyncio.run(main())
    assert log.writes == [["r0"], [f"r{i}" for i in range(1, 9)]]


def test_a_failed_write_fails_its_callers_and_the_next_calls_are_written() -> None:
    log = SlowLog()
    log.gate.set()
    log.fail_next = True
    b = AuditBatcher(log)

    async def main() -> None:
        assert all(isinstance(e, OSError) for e in await _record_all(b, ["a", "b"]))
        assert await _record_all(b, ["c"]) == [None]

    asyncio.run(main())
    assert log.writes == [["c"]]


def test_a_new_event_loop_gets_its_own_drain() -> None:
    log = SlowLog()
    log.gate.set()
    b = AuditBatcher(log)
    for i in range(3):  # e.g. one loop per test or per CLI call
        asyncio.run(b.record(action="a", entity_type="run", entity_id=f"x{i}"))
    assert log.writes == [["x0"], ["x1"], ["x2"]]


def test_a_backlog_is_written_in_bounded_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    from metricflow.ingest import _audit_batch

    monkeypatch.setattr(_audit_batch, "MAX_ENTRIES", 3)
    log = SlowLog()
    b = AuditBatcher(log)

    async def main() -> None:
        first = asyncio.create_task(b.record(action="a", entity_type="run", entity_id="r0"))
        await asyncio.sleep(0.05)
        rest = asyncio.create_task(_record_all(b, [f"r{i}" for i in range(1, 8)]))
        await asyncio.sleep(0.05)
        log.gate.set()
        await first
        await rest

    asyncio.run(main())
    assert [len(w) for w in log.writes] == [1, 3, 3, 1]
    assert sum(log.writes, []) == [f"r{i}" for i in range(8)]
