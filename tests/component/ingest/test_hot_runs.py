"""Runs held whole in memory by the embedded sink (ingest/_hot_runs.py): a read of a run
created here sees every acknowledged write without waiting for the apply, and shows
exactly what the store shows once the apply is done."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import encode_metrics
from metricflow.errors import InvalidArgument
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
    s = MetricStore(chdb_dsn, f"hot_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    yield s
    s.set_read_barrier(None)
    s.client.command(f"DROP DATABASE IF EXISTS {s.db}")


async def _core(store: MetricStore, log_dir: str, **cfg: Any) -> tuple[DirectSink, TrackingCore]:
    sink = DirectSink(store, DirectSinkConfig(linger_s=0.005, record_log_dir=log_dir, **cfg))
    await sink.start()
    return sink, TrackingCore(sink, store, _Metadata())


def _cols(keys: list[str], key_index: list[int], steps: list[int], ts: list[int],
          values: list[float]) -> pb.MetricColumns:
    cols = pb.MetricColumns()
    encode_metrics(cols, keys, np.array(key_index, np.int32), np.array(steps, np.int64),
                   np.array(ts, np.int64), np.array(values, np.float64))
    return cols


def _stored(store: MetricStore, run_id: str) -> tuple[Any, dict, dict, dict]:
    info = store.get_run_infos([run_id])[run_id]
    params = store.get_params([run_id])[run_id]
    tags = store.get_tags([run_id])[run_id]
    summ = store.get_summaries([run_id], False, {})[run_id]
    return info, params, tags, summ


def _summ(d: dict) -> dict:
    # NaN != NaN: compare their text
    return {k: (repr(s.last_value), s.last_step, s.last_timestamp, repr(s.min_value),
                repr(s.max_value)) for k, s in d.items()}


def test_a_hot_run_shows_what_the_store_shows_after_the_apply(store, tmp_path) -> None:
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        try:
            info = await core.create_run(pb.CreateRunRequest(
                experiment_id="1", run_name="hot", tags=[pb.Tag(key="a", value="1")]))
            rid = info.run_id
            await core.log_batch(pb.LogBatchRequest(
                run_id=rid, params=[pb.Param(key="lr", value="0.1")],
                tags=[pb.Tag(key="b", value="2"), pb.Tag(key="a", value="3")]))
            await core.log_batch(pb.LogBatchRequest(
                run_id=rid, params=[pb.Param(key="lr", value="0.1"),  # same value: fine
                                    pb.Param(key="bs", value="32")],
                tags=[pb.Tag(key="b", deleted=True)]))
            # Two batches: out of order, a tie at one (step, timestamp), NaN, negatives.
            await core.log_batch(pb.LogBatchRequest(run_id=rid, metrics=_cols(
                ["loss", "acc", "nan"], [0, 0, 1, 2, 0], [5, 1, 3, 2, 5],
                [10, 10, 10, 10, 10], [0.5, 2.0, 0.7, float("nan"), 0.9])))
            await core.log_batch(pb.LogBatchRequest(run_id=rid, metrics=_cols(
                ["loss", "acc", "nan"], [0, 1, 2], [4, 3, 2], [99, 11, 10],
                [-1.0, 0.6, 1.0])))
            await core.update_run(pb.UpdateRunRequest(
                run_id=rid, status=pb.RunStatus.Value("FINISHED"), run_name="renamed"))
            hot = sink.hot_run(rid)
            assert hot is not None
            stored = await asyncio.to_thread(_stored, store, rid)  # waits for the apply
        finally:
            await sink.close()
        s_info, s_params, s_tags, s_summ = stored
        assert hot.info == s_info
        assert hot.info.status == "FINISHED" and hot.info.run_name == "renamed"
        assert hot.params == s_params == {"lr": "0.1", "bs": "32"}
        assert hot.tags == s_tags
        assert "b" not in hot.tags and hot.tags["a"] == "3"
        assert hot.tags["mlflow.runName"] == "renamed"
        assert _summ(hot.metrics) == _summ(s_summ)
        assert hot.metrics["loss"].last_value == 0.9  # (5, 10): the larger value of the tie
        assert hot.metrics["acc"].last_value == 0.6 and hot.metrics["acc"].last_timestamp == 11
        assert hot.metrics["loss"].min_value == -1.0
    asyncio.run(main())


def test_reads_of_a_hot_run_see_acknowledged_writes_while_the_apply_is_held(
        store, tmp_path) -> None:
    """Read-your-writes without the store: the applier is held back the whole time."""
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        gate = threading.Event()
        real = sink.applier.apply

        def held(*a: Any, **k: Any) -> Any:
            gate.wait(30)
            return real(*a, **k)

        sink.applier.apply = held  # type: ignore[method-assign]
        try:
            info = await core.create_run(pb.CreateRunRequest(experiment_id="1", run_name="h"))
            rid = info.run_id
            hot = sink.hot_run(rid)
            assert hot is not None and hot.info.run_name == "h" and hot.params == {}
            await core.log_batch(pb.LogBatchRequest(
                run_id=rid, params=[pb.Param(key="p", value="1")],
                tags=[pb.Tag(key="t", value="x")],
                metrics=_cols(["m"], [0, 0], [0, 1], [1, 2], [3.0, 4.0])))
            hot = sink.hot_run(rid)
            assert hot is not None
            assert hot.params == {"p": "1"} and hot.tags["t"] == "x"
            assert hot.metrics["m"].last_value == 4.0 and hot.metrics["m"].last_step == 1
            # Params stay immutable: the second value is refused at the call, and the
            # hot picture keeps the first.
            with pytest.raises(InvalidArgument):
                await core.log_batch(pb.LogBatchRequest(
                    run_id=rid, params=[pb.Param(key="p", value="2")]))
            assert sink.hot_run(rid).params == {"p": "1"}  # type: ignore[union-attr]
            await core.update_run(pb.UpdateRunRequest(
                run_id=rid, status=pb.RunStatus.Value("FAILED")))
            hot = sink.hot_run(rid)
            assert hot is not None and hot.info.status == "FAILED" and hot.info.end_time
            assert sink._applied_seq < sink._logged_seq  # nothing was applied meanwhile
            gate.set()
            stored = await asyncio.to_thread(_stored, store, rid)
        finally:
            gate.set()
            await sink.close()
        assert stored[0] == hot.info and stored[1] == {"p": "1"}
    asyncio.run(main())


def test_only_runs_known_whole_are_held(store, tmp_path) -> None:
    """A client-chosen id (it may exist already), a fork (its history is its parent's)
    and a resumed run (re-logged steps replace points) are read from the store."""
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        try:
            chosen = uuid.uuid4().hex
            await core.create_run(pb.CreateRunRequest(experiment_id="1", run_id=chosen))
            assert sink.hot_run(chosen) is None
            parent = await core.create_run(pb.CreateRunRequest(experiment_id="1"))
            assert sink.hot_run(parent.run_id) is not None
            await core.log_batch(pb.LogBatchRequest(run_id=parent.run_id, metrics=_cols(
                ["m"], [0, 0], [0, 1], [1, 2], [1.0, 2.0])))
            fork = await core.create_run(pb.CreateRunRequest(
                experiment_id="1", fork_from=parent.run_id, fork_step=0))
            assert sink.hot_run(fork.run_id) is None
            await core.update_run(pb.UpdateRunRequest(
                run_id=parent.run_id, status=pb.RunStatus.Value("KILLED")))
            assert sink.hot_run(parent.run_id) is not None
            await core.update_run(pb.UpdateRunRequest(run_id=parent.run_id, resume=True))
            assert sink.hot_run(parent.run_id) is None
        finally:
            await sink.close()
    asyncio.run(main())


def test_the_held_runs_are_bounded(store, tmp_path) -> None:
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path))
        assert sink.hot is not None
        sink.hot.max_runs = 3
        sink.hot.max_entries = 4
        try:
            ids = [(await core.create_run(pb.CreateRunRequest(experiment_id="1"))).run_id
                   for _ in range(5)]
            assert [sink.hot_run(r) is not None for r in ids] == [False] * 2 + [True] * 3
            # 2 system tags + 4 tags > 4 entries: the run is read from the store
            await core.log_batch(pb.LogBatchRequest(
                run_id=ids[-1], tags=[pb.Tag(key=f"t{i}", value="v") for i in range(4)]))
            assert sink.hot_run(ids[-1]) is None
            tags = await asyncio.to_thread(store.get_tags, [ids[-1]])
            assert len(tags[ids[-1]]) == 6
        finally:
            await sink.close()
    asyncio.run(main())


def test_a_large_batch_acknowledged_after_its_insert_reaches_the_hot_run(
        store, tmp_path) -> None:
    async def main() -> None:
        sink, core = await _core(store, str(tmp_path), log_batch_points=10)
        try:
            info = await core.create_run(pb.CreateRunRequest(experiment_id="1"))
            n = 100  # > log_batch_points: not logged, acknowledged after its insert
            await core.log_batch(pb.LogBatchRequest(run_id=info.run_id, metrics=_cols(
                ["m"], [0] * n, list(range(n)), [5] * n, [float(i) for i in range(n)])))
            hot = sink.hot_run(info.run_id)
        finally:
            await sink.close()
        assert hot is not None and hot.metrics["m"].last_step == n - 1
        assert hot.metrics["m"].max_value == n - 1 and hot.metrics["m"].min_value == 0
    asyncio.run(main())
