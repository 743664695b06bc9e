"""Services through testcontainers, used only when a Docker engine really answers."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from metricflow.devservices._common import DevServiceError
from metricflow.devservices._s3 import S3Credentials

# Images can be pinned per machine; the defaults are the versions the project targets.
KAFKA_IMAGE = os.environ.get("METRICFLOW_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.0")
POSTGRES_IMAGE = os.environ.get("METRICFLOW_TEST_POSTGRES_IMAGE", "postgres:16-alpine")
MINIO_IMAGE = os.environ.get(
    "METRICFLOW_TEST_MINIO_IMAGE", "minio/minio:RELEASE.2025-04-22T22-12-26Z"
)


@functools.cache
def docker_available() -> bool:
    """True when `docker info` succeeds and testcontainers is importable.

    The docker CLI alone is not enough (CI machines have the CLI but no engine).
    `METRICFLOW_TEST_DOCKER=0` forces the local launchers.
    """
    if os.environ.get("METRICFLOW_TEST_DOCKER", "") == "0":
        return False
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if result.returncode != 0 or not result.stdout.strip():
        return False
    try:
        import testcontainers.core.container  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def docker_kafka() -> Iterator[str]:
    """Run Kafka (KRaft) in a container; yield its bootstrap servers."""
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
        yield str(container.get_bootstrap_server())


@contextlib.contextmanager
def docker_postgres() -> Iterator[str]:
    """Run PostgreSQL in a container; yield a psycopg 3 SQLAlchemy URL."""
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver="psycopg") as container:
        yield str(container.get_connection_url())


@contextlib.contextmanager
def docker_minio() -> Iterator[tuple[str, S3Credentials]]:
    """Run MinIO in a container; yield (endpoint_url, credentials)."""
    from testcontainers.core.container import DockerContainer

    creds = S3Credentials(access_key="minioadmin", secret_key="minioadmin")
    container = (
        DockerContainer(MINIO_IMAGE)
        .with_exposed_ports(9000)
        .with_env("MINIO_ROOT_USER", creds.access_key)
        .with_env("MINIO_ROOT_PASSWORD", creds.secret_key)
        .with_command("server /data --address :9000")
    )
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9000)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/minio/health/live", timeout=1):
                    break
            except (urllib.error.URLError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise DevServiceError(f"MinIO at {url} not ready") from exc
                time.sleep(0.2)
        yield url, creds
