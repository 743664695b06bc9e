"""ServeState with an in-memory control plane and stub models: switches, failed loads,
draining, guardrails (latency and errors), and trips reported by other processes."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np

from metricflow.entities import (
    Deployment,
    Guardrails,
    Variant,
    VariantStatus,
)
from metricflow.serving._serve_app import ServeConfig, ServeState
from metricflow.serving._serve_payload import Rows


class _Model:
    """A pyfunc stand-in: answers its version number for every row; may fail to load."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.calls = 0

    def predict(self, df: Any) -> Any:
        self.calls += 1
        return np.full(len(df), int(self.version))


class _Source:
    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.reports: list[VariantStatus] = []

    def get(self, name: str) -> Deployment:
        return self.dep

    def report(self, name: str, status: VariantStatus) -> None:
        self.reports.append(status)


def _loader(broken: set[str]) -> Any:
    def load(uri: str) -> _Model:
        v = uri.rsplit("/", 1)[1]
        if v in broken:
            raise RuntimeError(f"version {v} cannot be loaded")
        return _Model(v)
    return load


def _dep(champ: str, canary: str, **g: Any) -> Deployment:
    return Deployment("d", "m", (Variant("champion", alias="champion", weight=90,
                                         resolved_version=champ),
                                 Variant("canary", alias="challenger", weight=10,
                                         resolved_version=canary)),
                      guardrails=Guardrails(**g), last_updated_timestamp=1000)


def _rows() -> Rows:
    return Rows(("x",), [[1.0]])


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_switch_loads_beside_drains_and_a_failed_load_keeps_the_old_version():
    async def go() -> None:
        src = _Source(_dep("1", "2"))
        st = ServeState(ServeConfig("d", "http://x", drain_timeout_s=5), src,
                        loader=_loader({"9"}))
        await st.sync_once()
        old = st.table.slot("champion").model
        # A request in flight on the old version while the alias moves.
        pending = asyncio.ensure_future(old.answer(_rows()))
        src.dep = _dep("3", "2")
        await st.sync_once()
        assert st.table.slot("champion").version == "3"
        assert await pending == [1]  # the old model finished its request
        await asyncio.sleep(0.05)
        assert old.closed  # then it was unloaded
        assert await st.table.slot("champion").model.answer(_rows()) == [3]
        # A version that cannot load: the old one keeps serving, the failure is reported.
        src.dep = _dep("9", "2")
        await st.sync_once()
        await asyncio.sleep(0.05)
        assert st.table.slot("champion").version == "3"
        failed = [r for r in src.reports if r.state == "load_failed"]
        assert failed and failed[-1].version == "9" and "cannot be loaded" in failed[-1].reason
        # Not retried on every poll.
        n = len(failed)
        await st.sync_once()
        await asyncio.sleep(0.05)
        assert len([r for r in src.reports if r.state == "load_failed"]) == n
    _run(go())


def test_latency_guardrail_takes_the_canary_out_and_a_change_brings_it_back():
    async def go() -> None:
        src = _Source(_dep("1", "2", max_latency_p99_ms=50.0, window_s=10, min_requests=20))
        st = ServeState(ServeConfig("d", "http://x"), src, loader=_loader(set()))
        await st.sync_once()
        w = st.window("canary", "2")
        for _ in range(30):
            w.add(200.0, False)
        st.window("champion", "1").add(500.0, False)  # the fallback is never tripped
        for _ in range(30):
            st.window("champion", "1").add(500.0, True)
        st.check_guardrails()
        assert st.table.out == frozenset({"canary"})
        assert {st.table.pick(None).name for _ in range(500)} == {"champion"}
        await asyncio.sleep(0.05)
        rep = [r for r in src.reports if r.state == "out_of_rotation"]
        assert rep[-1].variant == "canary" and "p99" in rep[-1].reason
        await st.sync_once()  # nothing changed: it stays out
        assert "canary" in st.table.out
        # `deploy restore`: the control plane's report goes back to serving, after the trip.
        restored = VariantStatus("canary", "serving", "2", "restored", "op", 1 << 62)
        src.dep = dataclasses.replace(src.dep, statuses=(restored,))
        await st.sync_once()
        assert st.table.out == frozenset()
        st.check_guardrails()  # judged on a fresh window: stays in
        assert st.table.out == frozenset()
        for _ in range(30):
            st.window("canary", "2").add(200.0, False)
        st.check_guardrails()
        assert st.table.out == frozenset({"canary"})  # and can trip again
        src.dep = dataclasses.replace(src.dep, statuses=())
        src.dep = _dep("1", "4", max_latency_p99_ms=50.0, window_s=10, min_requests=20)
        await st.sync_once()  # a new version of the canary: back in rotation, fresh window
        assert st.table.out == frozenset()
        assert st.window("canary", "4").stats().requests == 0
    _run(go())


def test_a_trip_reported_by_another_process_is_honoured_until_the_next_change():
    async def go() -> None:
        dep = _dep("1", "2")
        tripped = VariantStatus("canary", "out_of_rotation", "2", "error rate", "other", 2000)
        src = _Source(dataclasses.replace(dep, statuses=(tripped,)))
        st = ServeState(ServeConfig("d", "http://x"), src, loader=_loader(set()))
        await st.sync_once()
        assert st.table.out == frozenset({"canary"})
        src.dep = dataclasses.replace(dep, statuses=(tripped,), last_updated_timestamp=3000)
        await st.sync_once()  # another part of the deployment changed: still out
        assert st.table.out == frozenset({"canary"})
        # The operator changes the canary: the control plane clears its report.
        canary = dataclasses.replace(dep.variants[1], weight=5)
        src.dep = dataclasses.replace(dep, variants=(dep.variants[0], canary), statuses=())
        await st.sync_once()
        assert st.table.out == frozenset()
    _run(go())


def test_batched_requests_get_their_own_rows_back():
    async def go() -> None:
        src = _Source(_dep("5", "2"))
        st = ServeState(ServeConfig("d", "http://x"), src, loader=_loader(set()))
        await st.sync_once()
        m = st.table.slot("champion").model
        outs = await asyncio.gather(*(m.answer(Rows(("x",), [[1.0]] * k)) for k in (1, 3, 2)))
        assert outs == [[5], [5, 5, 5], [5, 5]]
        assert m.batches == 1 and m.pyfunc.calls == 1  # one model call for all three
    _run(go())


def test_a_lingering_model_batches_mirrors_until_its_time_or_row_count():
    """A shadow's model (linger_s > 0) waits for more requests before one call, and calls at
    once when `linger_rows` rows are pending; its answers carry the call's own duration."""
    from metricflow.serving._serve_models import LocalModel

    async def go() -> None:
        loop = asyncio.get_running_loop()
        m = LocalModel(_Model("3"), "3", linger_s=0.2, linger_rows=8)
        t0 = loop.time()
        first = asyncio.ensure_future(m.answer_timed(Rows(("x",), [[1.0]])))
        await asyncio.sleep(0.05)
        assert not first.done() and m.batches == 0  # still lingering
        second = asyncio.ensure_future(m.answer(Rows(("x",), [[2.0]] * 2)))
        (part, took), part2 = await first, await second
        assert loop.time() - t0 >= 0.19 and (part, part2) == ([3], [3, 3])
        assert m.batches == 1 and m.pyfunc.calls == 1 and 0 <= took < 0.19
        t1 = loop.time()  # 8 rows pending: no waiting for the timer
        outs = await asyncio.gather(*(m.answer(Rows(("x",), [[1.0]] * 4)) for _ in range(2)))
        assert outs == [[3] * 4] * 2 and loop.time() - t1 < 0.1 and m.batches == 2
        plain = LocalModel(_Model("4"), "4")  # no linger: the next loop turn
        t2 = loop.time()
        assert await plain.answer(Rows(("x",), [[1.0]])) == [4] and loop.time() - t2 < 0.05
    _run(go())


def test_a_shadows_logged_latency_leaves_out_its_batch_wait_also_when_it_fails():
    """Through the routes: the caller's answer does not wait for the shadow; the shadow's
    mirrors are answered together after the linger, and their logged latency_ms is their
    own work (parse + model call), for good answers and for a model that raises."""
    from metricflow.serving._serve_http import Request
    from metricflow.serving._serve_log import RunLog
    from metricflow.serving._serve_server import Routes

    class Raising(_Model):
        def predict(self, df: Any) -> Any:
            self.calls += 1
            raise ValueError("shadow broke")

    class Log:
        def __init__(self) -> None:
            self.points: list[tuple[tuple[str, str], dict[str, float]]] = []

        def ensure(self, *a: Any) -> None:
            pass

        def runlog(self, variant: str, version: str) -> RunLog:
            return RunLog((variant, version), "x")

        def record(self, rl: RunLog, step: int, ts: int, m: dict[str, float]) -> bool:
            self.points.append((rl.key, m))
            return True

    def load(uri: str) -> _Model:
        v = uri.rsplit("/", 1)[1]
        return Raising(v) if v == "8" else _Model(v)

    async def go() -> None:
        dep = Deployment("d", "m", (
            Variant("champion", version="1", weight=1, resolved_version="1"),
            Variant("good", version="7", weight=1.0, shadow=True, resolved_version="7"),
            Variant("bad", version="8", weight=1.0, shadow=True, resolved_version="8")))
        pl = Log()
        st = ServeState(ServeConfig("d", "http://x", shadow_linger_s=0.3), _Source(dep),
                        predictions=pl, loader=load)  # type: ignore[arg-type]
        await st.sync_once()
        routes = Routes(st, "test")
        body = b'{"inputs": {"x": [1.0]}}'
        t0 = asyncio.get_running_loop().time()
        outs = await asyncio.gather(*(routes.handle(Request(
            "POST", "/invocations", "", {"content-type": "application/json"}, body))
            for _ in range(3)))
        assert [o.status for o in outs] == [200] * 3
        assert asyncio.get_running_loop().time() - t0 < 0.2  # nobody waited for a shadow
        await asyncio.sleep(0.5)
        by = {k: [m for key, m in pl.points if key[0] == k] for k in ("good", "bad")}
        assert [m["status"] for m in by["good"]] == [200.0] * 3
        assert [m["status"] for m in by["bad"]] == [500.0] * 3
        assert st.table.shadows[0].model.batches == 1  # three mirrors, one call
        for m in by["good"] + by["bad"]:
            assert m["latency_ms"] < 150, m  # the 300 ms linger is not in it
    _run(go())
