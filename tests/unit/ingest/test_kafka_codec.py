"""The producer's lz4 level: aiokafka's builders use it, and batches still decode."""

from __future__ import annotations

import numpy as np
import pytest
from aiokafka import codec
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from metricflow.errors import InvalidArgument
from metricflow.ingest._kafka_codec import use_lz4_level
from metricflow.ingest._kafka_config import KafkaSinkConfig

LZ4 = 0x03  # record-batch attribute bits of the codec


def _batch(payloads: list[bytes]) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=LZ4, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=64 * 1024 * 1024)
    for i, p in enumerate(payloads):
        b.append(i, timestamp=None, key=b"run", value=p, headers=[])
    return bytes(b.build())


@pytest.fixture
def restore_level():
    yield
    use_lz4_level(9)  # aiokafka's own default, for other tests in this process


def test_builders_use_the_level_and_batches_decode(restore_level) -> None:
    rng = np.random.default_rng(1)
    payloads = [np.repeat(np.arange(20_000), 3).astype(np.int64).tobytes()
                + rng.random(20_000).tobytes() for _ in range(3)]
    use_lz4_level(9)
    slow = _batch(payloads)
    use_lz4_level(1)
    fast = _batch(payloads)
    assert fast != slow  # another encoding: the level reached the builder
    for raw in (fast, slow):
        batch = DefaultRecordBatch(raw)
        assert [bytes(r.value) for r in batch] == payloads
    whole = b"".join(payloads)
    assert codec.lz4_decode(codec.lz4_encode(whole, level=1)) == whole


def test_bad_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="lz4 level"):
        use_lz4_level(0)
    with pytest.raises(InvalidArgument, match="lz4_level"):
        KafkaSinkConfig(lz4_level=17)


def test_the_sink_sets_the_level_of_its_producer(monkeypatch, restore_level) -> None:
    import asyncio

    from metricflow.ingest import _kafka

    levels = []
    monkeypatch.setattr(_kafka, "use_lz4_level", levels.append)

    async def make() -> None:
        for comp in ("lz4", "zstd"):
            sink = _kafka.KafkaSink(KafkaSinkConfig(compression=comp, lz4_level=3))
            await sink._new_producer().stop()  # never started

    asyncio.run(make())
    assert levels == [3]
