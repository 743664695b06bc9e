"""The embedded sink's record log: run lifecycle calls are acknowledged once durable in
the log and applied right after, in groups (ingest/_direct.py, docs/ingest.md).

Every guarantee of the synchronous path holds: a call returns only once its write is
durable, the run is readable right after create returns, params stay immutable, and a
retried create is applied once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics, encode_metrics
from metricflow.errors import AlreadyExists, InvalidArgument
from metricflow.ingest._core import TrackingCore
from metricflow.ingest._direct import DirectSink, DirectSinkConfig
from metricflow.store._metric_store import MetricStore


@dataclass
class _Experiment:
    experiment_id: str
    lifecycle_stage: str = "active"
    artifact_location: str = "file:///tmp/artifacts"


class _Metadata:
    def get_experiment(self, exp_id: str) -> _Experiment:
        return _Experiment(str(int(exp_id)))


@pytest.fixture
def store(chdb_dsn: str):
    s = MetricStore(chdb_dsn, f"rl_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    yield s
    s.set_read_barrier(None)
    s.client.command(f"DROP DATABASE IF EXISTS {s.db}")


async def _core(store: MetricStore, log_dir: str, **config: Any
                ) -> tuple[DirectSink, TrackingCore]:
    sink = DirectSink(store, DirectSinkConfig(linger_s=0.005, record_log_dir=log_dir, **config))
    await sink.start()
    assert sink.acks_before_apply
    return sink, TrackingCore(sink, store, _Metadata())


def _create(exp: str = "1", run_id: str = "", name: str = "") -> pb.CreateRunRequest:
    return pb.CreateRunRequest(experiment_id=exp, run_id=run_id, run_name=name)


def _points(n: int) -> pb.MetricColumns:
    cols = pb.MetricColumns()
    encode_metrics(cols, ["loss"], np.zeros(n, np.int32), np.arange(n, dtype=np.int64),
                   np.full(n, 1_700_000_000_000, np.int64), np.arange(n, dtype=np.float64))
    return cols


def test_concurrent_creates_are_each_durable_and_readable(store, tmp_path) -> None:
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        try:
            async def one(i: int) -> str:
                info = await core.create_run(_create(name=f"r{i}"))
                # Readable right after create returned (the read waits for the apply).
                seen = await asyncio.to_thread(store.get_run_infos, [info.run_id])
                assert seen[info.run_id].run_name == f"r{i}"
                await core.log_batch(pb.LogBatchRequest(
                    run_id=info.run_id, params=[pb.Param(key="i", value=str(i))],
                    tags=[pb.Tag(key="t", value=f"v{i}")], metrics=_points(20)))
                done = await core.update_run(pb.UpdateRunRequest(
                    run_id=info.run_id, status=pb.RunStatus.Value("FINISHED")))
                assert done is not None and done.status == "FINISHED" and done.end_time > 0
                return info.run_id

            ids = await asyncio.gather(*(one(i) for i in range(40)))
            infos = await asyncio.to_thread(store.get_run_infos, ids)
            params = await asyncio.to_thread(store.get_params, ids)
            tags = await asyncio.to_thread(store.get_tags, ids)
            points = await asyncio.to_thread(store.count_points, ids)
        finally:
            await sink.close()
        assert len(set(ids)) == 40 and len(infos) == 40
        assert all(infos[r].status == "FINISHED" for r in ids)
        for i, r in enumerate(ids):
            assert params[r] == {"i": str(i)}
            assert tags[r]["t"] == f"v{i}" and tags[r]["mlflow.runName"] == f"r{i}"
        assert points[0] == 40 * 20
        assert sink.record_errors == 0
    asyncio.run(main())


def test_a_retried_create_is_applied_once(store, tmp_path) -> None:
    run_id = uuid.uuid4().hex

    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        try:
            await core.create_run(_create(run_id=run_id, name="first"))
            await core.log_batch(pb.LogBatchRequest(
                run_id=run_id, params=[pb.Param(key="lr", value="0.1")]))
            await core.create_run(_create(run_id=run_id, name="retry"))  # the same call again
            with pytest.raises(AlreadyExists):  # refused at the call, not after the ack
                await core.create_run(_create(exp="2", run_id=run_id))
            info = (await asyncio.to_thread(store.get_run_infos, [run_id]))[run_id]
            params = (await asyncio.to_thread(store.get_params, [run_id]))[run_id]
            count = await asyncio.to_thread(lambda: store.client.query(
                f"SELECT count() FROM {store.db}.runs FINAL WHERE run_id = {{r:String}}",
                parameters={"r": run_id}).result_rows[0][0])
        finally:
            await sink.close()
        assert (info.run_name, info.experiment_id, count) == ("first", "1", 1)
        assert params == {"lr": "0.1"}
    asyncio.run(main())


def test_params_stay_immutable_under_concurrency(store, tmp_path) -> None:
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        try:
            run_id = (await core.create_run(_create())).run_id

            async def log(i: int) -> str | None:
                try:
                    await core.log_batch(pb.LogBatchRequest(
                        run_id=run_id, params=[pb.Param(key="lr", value=f"v{i}")]))
                    return f"v{i}"
                except InvalidArgument as e:
                    assert "immutable" in str(e)
                    return None

            won = [v for v in await asyncio.gather(*(log(i) for i in range(20))) if v]
            # Logging the accepted value again is fine; another value is refused.
            await core.log_batch(pb.LogBatchRequest(
                run_id=run_id, params=[pb.Param(key="lr", value=won[0])]))
            with pytest.raises(InvalidArgument):
                await core.log_batch(pb.LogBatchRequest(
                    run_id=run_id, params=[pb.Param(key="lr", value="other")]))
            stored = (await asyncio.to_thread(store.get_params, [run_id]))[run_id]
        finally:
            await sink.close()
        assert len(won) == 1 and stored == {"lr": won[0]}
        assert sink.record_errors == 0
    asyncio.run(main())


def test_acknowledged_records_survive_a_store_outage_and_a_restart(store, tmp_path) -> None:
    """Acknowledged = in the log: a store that fails every insert loses nothing, and the
    next process applies the log at start."""
    async def main() -> tuple[str, str]:
        sink, core = await _core(store, str(tmp_path))

        def down(*_a: Any, **_k: Any) -> Any:
            raise ConnectionError("store down")

        sink.applier.apply = down  # type: ignore[method-assign]
        try:
            info = await core.create_run(_create(name="survivor"))
            await core.log_batch(pb.LogBatchRequest(
                run_id=info.run_id, params=[pb.Param(key="p", value="1")]))
            # A short run's points go through the log too: acknowledged, not yet stored.
            await core.log_batch(pb.LogBatchRequest(run_id=info.run_id, metrics=_points(3)))
        finally:
            await sink.close()  # the process stops with the records unapplied
        assert sink.record_log.segments()  # type: ignore[union-attr]
        # The next process: its sink replays the log before it serves.
        sink2, _ = await _core(store, str(tmp_path))
        try:
            got = await asyncio.to_thread(store.get_run_infos, [info.run_id])
            params = await asyncio.to_thread(store.get_params, [info.run_id])
            points = (await asyncio.to_thread(store.count_points, [info.run_id]))[0]
        finally:
            await sink2.close()
        assert sink2.record_log.segments() == []  # type: ignore[union-attr]
        return got[info.run_id].run_name, params[info.run_id].get("p", ""), points
    assert asyncio.run(main()) == ("survivor", "1", 3)


def test_a_call_returns_at_the_log_append_and_reads_wait_for_the_apply(store, tmp_path) -> None:
    async def main() -> tuple[float, bool]:
        sink, core = await _core(store, str(tmp_path))
        real = sink.applier.apply

        def slow(*a: Any, **k: Any) -> Any:
            time.sleep(0.5)
            return real(*a, **k)

        sink.applier.apply = slow  # type: ignore[method-assign]
        try:
            t = time.perf_counter()
            info = await core.create_run(_create(name="slow"))
            took = time.perf_counter() - t
            seen = await asyncio.to_thread(store.get_run_infos, [info.run_id])
        finally:
            await sink.close()
        return took, info.run_id in seen
    took, seen = asyncio.run(main())
    assert took < 0.4 and seen


def test_readiness_is_false_while_commits_fail_and_comes_back(store, tmp_path,
                                                               monkeypatch) -> None:
    """The embedded server's /ready (an operator's probe filled its disk: every commit
    failed with NOT_ENOUGH_SPACE while /ready said true)."""
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        real = sink.applier.apply

        def down(*_a: Any, **_k: Any) -> Any:
            raise ConnectionError("store down (NOT_ENOUGH_SPACE)")

        try:
            info = await core.create_run(_create(name="r"))
            assert sink.ready
            sink.applier.apply = down  # type: ignore[method-assign]
            # logged points are acknowledged; their apply keeps failing
            await core.log_batch(pb.LogBatchRequest(run_id=info.run_id, metrics=_points(3)))
            deadline = time.monotonic() + 10
            while sink.ready and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not sink.ready
            sink.applier.apply = real  # type: ignore[method-assign]
            while not sink.ready and time.monotonic() < deadline + 10:
                await asyncio.sleep(0.02)
            assert sink.ready  # the retried apply went through
            # a full disk under the log: appends fail, nothing is acknowledged
            log_append = sink.record_log.append  # type: ignore[union-attr]

            def full(*_a: Any, **_k: Any) -> Any:
                raise OSError(28, "No space left on device")

            sink.record_log.append = full  # type: ignore[union-attr]
            with pytest.raises(Exception, match="ingest log append failed"):
                await core.create_run(_create(name="r2"))
            assert not sink.ready
            sink.record_log.append = log_append  # type: ignore[union-attr]
            await core.create_run(_create(name="r3"))
            assert sink.ready
            # a failure with nothing after it counts only for FAILING_S
            monkeypatch.setattr(DirectSink, "FAILING_S", 0.2)
            sink._health["apply"][0] = time.monotonic()
            assert not sink.ready
            await asyncio.sleep(0.3)
            assert sink.ready
        finally:
            sink.applier.apply = real  # type: ignore[method-assign]
            await sink.close()
        assert (await asyncio.to_thread(store.count_points, [info.run_id]))[0] == 3
    asyncio.run(main())


async def _lingering(store: MetricStore, log_dir: str, **config: Any
                     ) -> tuple[DirectSink, TrackingCore, list[int]]:
    """A sink whose applies may linger 60 s, and the record count of each apply."""
    sink, core = await _core(store, log_dir, apply_linger_s=60.0, **config)
    sizes: list[int] = []
    real = sink.applier.apply

    def counted(batches: Any, records: Any, *a: Any, **k: Any) -> Any:
        sizes.append(len(records))
        return real(batches, records, *a, **k)

    sink.applier.apply = counted  # type: ignore[method-assign]
    return sink, core, sizes


async def _until(cond: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_acknowledged_work_lingers_into_one_insert_until_a_read_needs_it(store,
                                                                        tmp_path) -> None:
    """apply_linger_s: while writes keep coming, calls acknowledged at the log append
    share one apply; a read at the barrier ends the linger (it would otherwise wait
    the whole 60 s). The first write after a quiet spell is applied at once."""
    async def main() -> tuple[list[int], set[str], set[str]]:
        sink, core, sizes = await _lingering(store, str(tmp_path))
        try:
            await core.create_run(_create(name="first"))
            await _until(lambda: len(sizes) == 1)  # at once, though nothing read it
            infos = [await core.create_run(_create(name=f"r{i}")) for i in range(5)]
            for info in infos:  # each returned at its log append: nothing applied yet
                await core.log_batch(pb.LogBatchRequest(
                    run_id=info.run_id, params=[pb.Param(key="p", value="1")]))
            await asyncio.sleep(0.3)
            assert len(sizes) == 1
            ids = [i.run_id for i in infos]
            seen = await asyncio.wait_for(asyncio.to_thread(store.get_run_infos, ids), 20)
            params = await asyncio.to_thread(store.get_params, ids)
        finally:
            await sink.close()
        return sizes[1:], set(seen), {r for r, p in params.items() if p == {"p": "1"}}
    sizes, seen, with_params = asyncio.run(main())
    # 5 creates and 5 log_batch calls (a create is one or two records), applied at the
    # read: in one apply, or two when the last call's group reached the apply queue
    # just after the read arrived (it is acknowledged before it is queued)
    assert 1 <= len(sizes) <= 2 and sum(sizes) >= 10, sizes
    assert seen == with_params and len(seen) == 5


def test_a_caller_waiting_for_its_insert_is_not_kept_by_the_linger(store, tmp_path) -> None:
    """A batch above log_batch_points is acknowledged at its insert: a group that holds
    it beside acknowledged records does not linger, nor does one that holds it alone."""
    async def main() -> None:
        sink, core, sizes = await _lingering(store, str(tmp_path), log_batch_points=10)
        try:
            info = await core.create_run(_create(name="big"))
            await _until(lambda: len(sizes) == 1)  # from here on, applies may linger
            steps = np.arange(50, dtype=np.int64)
            big = DecodedMetrics(info.run_id, ("loss",), np.zeros(50, np.int32), steps,
                                 np.full(50, 1_700_000_000_000, np.int64),
                                 steps.astype(np.float64))  # the points _points(50) sends
            rec = pb.LogRecord(params_tags=pb.LogBatchRequest(
                run_id=info.run_id, params=[pb.Param(key="p", value="1")]))
            with sink._cond:  # both in the log thread's next group
                futs = [sink.submit_metrics(big, b"", ("big", 1)),
                        *sink.submit_records([rec])]
            await asyncio.wait_for(asyncio.gather(*futs), 20)
            await asyncio.wait_for(core.log_batch(pb.LogBatchRequest(
                run_id=info.run_id, metrics=_points(50))), 20)  # alone in its group (again)
        finally:
            await sink.close()
        assert (await asyncio.to_thread(store.count_points, [info.run_id]))[0] == 50
    asyncio.run(main())


def test_many_records_end_the_linger(store, tmp_path) -> None:
    async def main() -> None:
        sink, core, sizes = await _lingering(store, str(tmp_path), apply_linger_records=6)
        try:
            await core.create_run(_create(name="first"))
            await _until(lambda: len(sizes) == 1)
            for i in range(6):
                await core.create_run(_create(name=f"r{i}"))
            await _until(lambda: len(sizes) >= 2)  # without a read
        finally:
            await sink.close()
    asyncio.run(main())
