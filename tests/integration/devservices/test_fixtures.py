"""The pytest plugin's session fixtures and the env > Docker > local selection order."""

from __future__ import annotations

import asyncio

import pytest

from metricflow.devservices import S3Credentials, docker_available, resolve_kafka, resolve_s3


def test_kafka_bootstrap_fixture_round_trip(kafka_bootstrap: str, kafka_topic_prefix: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"{kafka_topic_prefix}fixture"

    async def roundtrip() -> bytes | None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), 30)
            return bytes(message.value) if message.value is not None else None
        finally:
            await consumer.stop()

    assert kafka_topic_prefix.startswith("mftest-")
    assert asyncio.run(roundtrip()) == b"hello"


def test_postgres_url_fixture_is_a_fresh_database(
    postgres_url: str, devservices_run_id: str, make_postgres_database: object
) -> None:
    import sqlalchemy as sa
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == (
            f"mftest_{devservices_run_id}"
        )
    engine.dispose()
    other = make_postgres_database()  # type: ignore[operator]
    assert other != postgres_url


def test_s3_fixtures_round_trip(s3_endpoint: str, s3_bucket: str) -> None:
    import boto3

    # The plugin exported dummy AWS keys, so a plain client works.
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"v")
    assert client.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"v"


def test_env_url_wins_without_starting_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_TEST_KAFKA", "kafka://10.0.0.1:9092")
    monkeypatch.setenv("METRICFLOW_TEST_S3_ENDPOINT", "http://minio.test:9000/")
    monkeypatch.setenv("METRICFLOW_TEST_S3_ACCESS_KEY", "ak")
    monkeypatch.setenv("METRICFLOW_TEST_S3_SECRET_KEY", "sk")
    with resolve_kafka() as kafka:
        assert (kafka.url, kafka.source) == ("10.0.0.1:9092", "env")
    with resolve_s3() as s3:
        assert (s3.url, s3.source) == ("http://minio.test:9000", "env")
        assert s3.credentials is not None
        assert s3.credentials == S3Credentials("ak", "sk", s3.credentials.region)


def test_docker_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    docker_available.cache_clear()
    monkeypatch.setenv("METRICFLOW_TEST_DOCKER", "0")
    try:
        assert docker_available() is False
    finally:
        docker_available.cache_clear()
