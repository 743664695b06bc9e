"""Session fixtures that start (or find) real Kafka, PostgreSQL and S3 for a test run.

Register from the top-level conftest:
    pytest_plugins = ["metricflow.devservices.pytest_plugin"]

Nothing starts until a test asks for a fixture. Each session uses fresh names: a
random Kafka topic prefix, a new database, a new bucket.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from metricflow.devservices._common import random_suffix
from metricflow.devservices._resolve import (
    ServiceEndpoint,
    create_database,
    drop_database,
    resolve_kafka,
    resolve_postgres,
    resolve_s3,
)
from metricflow.devservices._s3 import S3Credentials, create_bucket

if TYPE_CHECKING:
    from metricflow.devservices._kafka_cluster import KafkaCluster


@pytest.fixture(scope="session")
def devservices_run_id() -> str:
    """Random hex id of this test session, used in every fresh name."""
    return random_suffix()


# --- Kafka -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_endpoint() -> Iterator[ServiceEndpoint]:
    """The Kafka service for this session (env URL, Docker, or a local broker)."""
    with resolve_kafka() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_endpoint: ServiceEndpoint) -> str:
    """Bootstrap servers string, e.g. "127.0.0.1:40123"."""
    return kafka_endpoint.url


@pytest.fixture(scope="session")
def kafka_topic_prefix(devservices_run_id: str) -> str:
    """Prefix for this session's topics, e.g. "mftest-1a2b3c4d-"; a shared broker
    (METRICFLOW_TEST_KAFKA) then never sees two sessions use the same topic."""
    return f"mftest-{devservices_run_id}-"


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """A local three-node KRaft cluster (replication 3, min.insync.replicas 2), started
    once per session, for fault tests that stop and restart its nodes.

    Always local, whatever METRICFLOW_TEST_KAFKA says: the tests kill its processes.
    Its GATEWAY listener advertises `GATEWAY_ADDRESS`, reachable only through a
    `NetnsLink` a test makes. A test that stops a node must start it again (and wait
    for `wait_healthy()`) before it ends, so the next test gets a whole cluster.
    """
    from metricflow.devservices._kafka_cluster import KafkaCluster
    from metricflow.devservices._netns import GATEWAY_ADDRESS

    with KafkaCluster(gateway_host=GATEWAY_ADDRESS) as cluster:
        yield cluster


# --- PostgreSQL --------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_endpoint() -> Iterator[ServiceEndpoint]:
    """The PostgreSQL server for this session; `.url` is an admin URL."""
    with resolve_postgres() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres_url(postgres_endpoint: ServiceEndpoint, devservices_run_id: str) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://...) of a database made for this session."""
    name = f"mftest_{devservices_run_id}"
    url = create_database(postgres_endpoint.url, name)
    yield url
    drop_database(postgres_endpoint.url, name)


@pytest.fixture
def make_postgres_database(
    postgres_endpoint: ServiceEndpoint,
) -> Iterator[Callable[[], str]]:
    """Factory for per-test fresh databases: `url = make_postgres_database()`.
    They are dropped when the test ends."""
    names: list[str] = []

    def make() -> str:
        name = f"mftest_{random_suffix()}"
        names.append(name)
        return create_database(postgres_endpoint.url, name)

    yield make
    for name in names:
        drop_database(postgres_endpoint.url, name)


# --- S3 ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_service() -> Iterator[ServiceEndpoint]:
    """The S3 endpoint for this session, with credentials.

    Also sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION for the
    session when they are unset, so a plain `boto3.client("s3", endpoint_url=...)`
    works; they are restored afterwards.
    """
    with resolve_s3() as endpoint, pytest.MonkeyPatch.context() as patch:
        assert endpoint.credentials is not None
        for key, value in endpoint.credentials.as_env().items():
            if not os.environ.get(key):
                patch.setenv(key, value)
        yield endpoint


@pytest.fixture(scope="session")
def s3_endpoint(s3_service: ServiceEndpoint) -> str:
    """S3 endpoint URL for boto3's `endpoint_url`, e.g. "http://127.0.0.1:40125"."""
    return s3_service.url


@pytest.fixture(scope="session")
def s3_credentials(s3_service: ServiceEndpoint) -> S3Credentials:
    """Access key, secret key and region for `s3_endpoint`."""
    assert s3_service.credentials is not None
    return s3_service.credentials


@pytest.fixture(scope="session")
def s3_bucket(s3_service: ServiceEndpoint, devservices_run_id: str) -> str:
    """Name of a bucket created for this session."""
    return create_bucket(s3_service.url, f"mftest-{devservices_run_id}", s3_service.credentials)
