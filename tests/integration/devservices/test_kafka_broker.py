"""A real Apache Kafka broker: round trip, clean restart and crash restart on the same logs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import aiokafka  # noqa: F401 - installed by the dev extra; missing must fail
import cramjam  # noqa: F401 - aiokafka needs it for lz4
import pytest

from metricflow.devservices import KafkaBroker, metadata_ready


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    # Its own broker, not the session one: these tests stop and restart it.
    with KafkaBroker() as kafka:
        yield kafka


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        compression_type="lz4",
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"run-1")
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [msg.value for msgs in batch.values() for msg in msgs if msg.value]
    finally:
        await consumer.stop()
    return got


def test_bootstrap_is_loopback_and_answers_metadata(broker: KafkaBroker) -> None:
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.running and broker.pid is not None
    assert metadata_ready(broker.bootstrap)
    assert broker.last_startup_seconds is not None and broker.last_startup_seconds < 60


def test_idempotent_lz4_round_trip(broker: KafkaBroker) -> None:
    values = [f"metric-{i}".encode() * 20 for i in range(50)]
    asyncio.run(_produce(broker.bootstrap, "roundtrip", values))
    assert asyncio.run(_consume_all(broker.bootstrap, "roundtrip", len(values))) == values


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["clean", "crash"])
def test_restart_on_same_logs_keeps_messages(broker: KafkaBroker, sig: int) -> None:
    topic = f"restart-{sig}"
    asyncio.run(_produce(broker.bootstrap, topic, [b"before-restart"]))
    port, old_pid = broker.port, broker.pid

    broker.stop(sig)
    assert not broker.running
    assert not metadata_ready(broker.bootstrap, timeout_ms=500)
    broker.start()

    assert broker.port == port and broker.pid != old_pid
    asyncio.run(_produce(broker.bootstrap, topic, [b"after-restart"]))
    got = asyncio.run(_consume_all(broker.bootstrap, topic, 2))
    assert got == [b"before-restart", b"after-restart"]


def test_close_kills_jvm_and_removes_temp_dir() -> None:
    kafka = KafkaBroker().start()
    pid, workdir = kafka.pid, kafka.workdir
    assert pid is not None and workdir.is_dir()
    kafka.close()
    assert not kafka.running
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
