"""The embedded sink's commit hook (DirectSink.add_commit_listener): every committed
batch and run record reaches the listener exactly once: a small batch when its log
append made it durable, a large one after its insert."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics, encode_metrics
from metricflow.ingest import DirectSink, DirectSinkConfig, TrackingCore
from metricflow.store import MetricStore


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
    s = MetricStore(chdb_dsn, f"hook_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    yield s
    s.set_read_barrier(None)
    s.client.command(f"DROP DATABASE IF EXISTS {s.db}")


def _points(n: int) -> pb.MetricColumns:
    cols = pb.MetricColumns()
    encode_metrics(cols, ["loss"], np.zeros(n, np.int32), np.arange(n, dtype=np.int64),
                   np.full(n, 1_700_000_000_000, np.int64), np.arange(n, dtype=np.float64))
    return cols


def test_each_batch_and_record_reaches_the_listener_once(store: MetricStore, tmp_path) -> None:
    seen: list[tuple[str, int]] = []
    records: list[str] = []

    def listener(batches: list[DecodedMetrics], recs: list[pb.LogRecord]) -> None:
        seen.extend((b.run_id, b.n) for b in batches)
        records.extend(r.WhichOneof("body") or "" for r in recs)

    async def main() -> list[str]:
        sink = DirectSink(store, DirectSinkConfig(linger_s=0.005, record_log_dir=str(tmp_path),
                                                  log_batch_points=1000))
        sink.add_commit_listener(listener)
        await sink.start()
        core = TrackingCore(sink, store, _Metadata())
        ids = []
        try:
            for _ in range(5):
                info = await core.create_run(pb.CreateRunRequest(experiment_id="1"))
                ids.append(info.run_id)
                for n in (10, 5000):  # through the log, and after the insert
                    await core.log_batch(pb.LogBatchRequest(run_id=info.run_id,
                                                            metrics=_points(n)))
                await core.update_run(pb.UpdateRunRequest(
                    run_id=info.run_id, status=pb.RunStatus.Value("FAILED")))
        finally:
            await sink.close()
        return ids

    ids = asyncio.run(main())
    assert sorted(seen) == sorted((r, n) for r in ids for n in (10, 5000))
    assert records.count("run_create") == 5 and records.count("run_update") == 5
