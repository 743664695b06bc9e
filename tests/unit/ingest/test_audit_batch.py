"""AuditBatcher: the run lifecycle's audit entries of concurrent calls share a write."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from metricflow.errors import Unavailable
from metricflow.ingest._audit_batch import AuditBatcher


class SlowLog:
    """A write_many that holds each write until released, recording what it got; a
    transaction holding entity id "bad" fails, as does the next one after `fail_next`."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.gate = threading.Event()
        self.fail_next = False

    def __call__(self, entries: list[dict[str, Any]]) -> None:
        self.gate.wait(5)
        ids = [e["entity_id"] for e in entries]
        if self.fail_next or "bad" in ids:
            self.fail_next = False
            raise OSError(f"disk full writing {ids}")
        self.writes.append(ids)


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


def test_a_failed_shared_write_is_retried_one_entry_at_a_time() -> None:
    log = SlowLog()
    b = AuditBatcher(log)

    async def main() -> list[BaseException | None]:
        first = asyncio.create_task(b.record(action="a", entity_type="run", entity_id="r0"))
        await asyncio.sleep(0.05)
        rest = asyncio.create_task(_record_all(b, ["r1", "bad", "r2"]))
        await asyncio.sleep(0.05)
        log.gate.set()
        await first
        return await rest

    res = asyncio.run(main())
    # Only the entry that cannot be written fails, with its own error; the others are
    # stored in call order.
    assert res[0] is None and res[2] is None
    assert isinstance(res[1], OSError) and "'bad'" in str(res[1])
    assert log.writes == [["r0"], ["r1"], ["r2"]]


def test_a_failed_write_of_one_entry_fails_that_call_and_later_calls_are_written() -> None:
    log = SlowLog()
    log.gate.set()
    log.fail_next = True
    b = AuditBatcher(log)

    async def main() -> None:
        assert isinstance((await _record_all(b, ["a"]))[0], OSError)
        assert await _record_all(b, ["c"]) == [None]

    asyncio.run(main())
    assert log.writes == [["c"]]


def test_a_cancelled_drain_fails_every_waiting_call() -> None:
    log = SlowLog()
    b = AuditBatcher(log)

    async def main() -> list[BaseException | None]:
        calls = asyncio.create_task(_record_all(b, ["r0"]))
        await asyncio.sleep(0.05)  # r0 in flight
        later = asyncio.create_task(_record_all(b, ["r1", "r2"]))
        await asyncio.sleep(0.05)
        q = next(iter(b._queues.values()))
        assert q.task is not None
        q.task.cancel()  # the loop is stopping
        got = await asyncio.wait_for(asyncio.gather(calls, later), 5)
        log.gate.set()
        return got[0] + got[1]

    res = asyncio.run(main())
    assert all(isinstance(e, Unavailable) for e in res), res


def test_the_drain_runs_in_no_callers_context() -> None:
    import contextvars

    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    seen: list[str] = []
    b = AuditBatcher(lambda entries: None)

    async def main() -> None:
        async def call() -> None:
            who.set("first caller")
            await b.record(action="a", entity_type="run", entity_id="x")
        orig = b._drain

        async def spy(q: Any) -> None:
            seen.append(who.get())
            await orig(q)
        b._drain = spy  # type: ignore[method-assign]
        await call()

    asyncio.run(main())
    assert seen == ["nobody"]


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
