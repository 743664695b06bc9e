"""Real local services for tests, benchmarks and development: Kafka, PostgreSQL, S3.

Each service is chosen in this order (see shared SERVICES.md):
1. an explicit URL in `METRICFLOW_TEST_KAFKA`, `METRICFLOW_TEST_POSTGRES_URL`,
   `METRICFLOW_TEST_S3_ENDPOINT`;
2. testcontainers, when a Docker engine answers `docker info`;
3. a launcher on this machine: `KafkaBroker` (Apache Kafka 4 jars from Maven Central),
   `PostgresServer` (Debian's postgresql, apt-installed if missing), `S3Server` (moto).

Fault tests need processes they can kill, so they always use launchers here:
`KafkaCluster` (three KRaft nodes, replication 3, min.insync.replicas 2) and
`NetnsLink` (two test-made network namespaces joined by a veth pair that can be cut),
`PostgresStandby` (a synchronous streaming standby of a `PostgresServer`, promotable).

Everything here is imported lazily, so `import metricflow` pays nothing for it.
Pytest fixtures: `pytest_plugins = ["metricflow.devservices.pytest_plugin"]`.
CLI: `python -m metricflow.devservices kafka postgres s3`.

A checkout-only tool: pyproject.toml excludes this package from the wheel, and the
editable install (`make install`) imports it from src/ (CONTRIBUTING.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metricflow.devservices._common import DevServiceError
    from metricflow.devservices._docker import docker_available
    from metricflow.devservices._kafka import KafkaBroker, metadata_ready
    from metricflow.devservices._kafka_cluster import (
        ClusterView,
        KafkaCluster,
        PartitionState,
        describe_node,
    )
    from metricflow.devservices._kafka_install import ensure_kafka_libs
    from metricflow.devservices._netns import GATEWAY_ADDRESS, NetnsLink
    from metricflow.devservices._pg_install import ensure_postgres
    from metricflow.devservices._pg_standby import (
        REPLICATION_SETTINGS,
        PostgresStandby,
        failover_url,
        set_sync_standbys,
        wait_for_sync_standby,
    )
    from metricflow.devservices._postgres import PostgresServer
    from metricflow.devservices._resolve import (
        ServiceEndpoint,
        create_database,
        drop_database,
        resolve_kafka,
        resolve_postgres,
        resolve_s3,
    )
    from metricflow.devservices._s3 import S3Credentials, S3Server, create_bucket, s3_client

_EXPORTS: dict[str, str] = {
    "DevServiceError": "_common",
    "docker_available": "_docker",
    "KafkaBroker": "_kafka",
    "metadata_ready": "_kafka",
    "ClusterView": "_kafka_cluster",
    "KafkaCluster": "_kafka_cluster",
    "PartitionState": "_kafka_cluster",
    "describe_node": "_kafka_cluster",
    "ensure_kafka_libs": "_kafka_install",
    "GATEWAY_ADDRESS": "_netns",
    "NetnsLink": "_netns",
    "ensure_postgres": "_pg_install",
    "REPLICATION_SETTINGS": "_pg_standby",
    "PostgresStandby": "_pg_standby",
    "failover_url": "_pg_standby",
    "set_sync_standbys": "_pg_standby",
    "wait_for_sync_standby": "_pg_standby",
    "PostgresServer": "_postgres",
    "ServiceEndpoint": "_resolve",
    "create_database": "_resolve",
    "drop_database": "_resolve",
    "resolve_kafka": "_resolve",
    "resolve_postgres": "_resolve",
    "resolve_s3": "_resolve",
    "S3Credentials": "_s3",
    "S3Server": "_s3",
    "create_bucket": "_s3",
    "s3_client": "_s3",
}

__all__ = [
    "GATEWAY_ADDRESS",
    "ClusterView",
    "DevServiceError",
    "KafkaBroker",
    "KafkaCluster",
    "NetnsLink",
    "PartitionState",
    "PostgresServer",
    "PostgresStandby",
    "REPLICATION_SETTINGS",
    "S3Credentials",
    "S3Server",
    "ServiceEndpoint",
    "create_bucket",
    "create_database",
    "describe_node",
    "docker_available",
    "drop_database",
    "ensure_kafka_libs",
    "ensure_postgres",
    "failover_url",
    "metadata_ready",
    "resolve_kafka",
    "resolve_postgres",
    "resolve_s3",
    "s3_client",
    "set_sync_standbys",
    "wait_for_sync_standby",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
