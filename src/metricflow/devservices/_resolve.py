"""Pick each service: explicit env URL, else testcontainers (Docker), else a local launcher."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from metricflow.devservices._common import random_suffix
from metricflow.devservices._s3 import S3Credentials

ENV_KAFKA = "METRICFLOW_TEST_KAFKA"
ENV_POSTGRES = "METRICFLOW_TEST_POSTGRES_URL"
ENV_S3 = "METRICFLOW_TEST_S3_ENDPOINT"

Source = Literal["env", "docker", "local"]


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where a running service answers, and how it was obtained."""

    service: Literal["kafka", "postgres", "s3"]
    """Which service this is."""
    url: str
    """Kafka: "host:port" bootstrap; Postgres: SQLAlchemy URL; S3: endpoint URL."""
    source: Source
    """"env" (given URL), "docker" (testcontainers) or "local" (launcher here)."""
    credentials: S3Credentials | None = field(default=None)
    """S3 keys; None for the other services."""


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _strip_scheme(bootstrap: str) -> str:
    # Accept "kafka://h:p,h2:p2" as well as the plain Kafka bootstrap list.
    return bootstrap.removeprefix("kafka://").rstrip("/")


def _env_s3_credentials() -> S3Credentials:
    env = os.environ
    return S3Credentials(
        access_key=env.get("METRICFLOW_TEST_S3_ACCESS_KEY")
        or env.get("AWS_ACCESS_KEY_ID", "testing"),
        secret_key=env.get("METRICFLOW_TEST_S3_SECRET_KEY")
        or env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


@contextlib.contextmanager
def resolve_kafka(**launcher_kwargs: object) -> Iterator[ServiceEndpoint]:
    """Yield a Kafka bootstrap from `METRICFLOW_TEST_KAFKA`, Docker, or a local broker."""
    from metricflow.devservices._docker import docker_available, docker_kafka

    given = _env(ENV_KAFKA)
    if given:
        yield ServiceEndpoint("kafka", _strip_scheme(given), "env")
    elif docker_available():
        with docker_kafka() as bootstrap:
            yield ServiceEndpoint("kafka", bootstrap, "docker")
    else:
        from metricflow.devservices._kafka import KafkaBroker

        with KafkaBroker(**launcher_kwargs) as broker:  # type: ignore[arg-type]
            yield ServiceEndpoint("kafka", broker.bootstrap, "local")


@contextlib.contextmanager
def resolve_postgres(**launcher_kwargs: object) -> Iterator[ServiceEndpoint]:
    """Yield a PostgreSQL admin URL from `METRICFLOW_TEST_POSTGRES_URL`, Docker, or local.

    Use `create_database(endpoint.url)` for a fresh database on any of them.
    """
    from metricflow.devservices._docker import docker_available, docker_postgres

    given = _env(ENV_POSTGRES)
    if given:
        yield ServiceEndpoint("postgres", given, "env")
    elif docker_available():
        with docker_postgres() as url:
            yield ServiceEndpoint("postgres", url, "docker")
    else:
        from metricflow.devservices._postgres import PostgresServer

        with PostgresServer(**launcher_kwargs) as server:  # type: ignore[arg-type]
            yield ServiceEndpoint("postgres", server.url, "local")


@contextlib.contextmanager
def resolve_s3(**launcher_kwargs: object) -> Iterator[ServiceEndpoint]:
    """Yield an S3 endpoint from `METRICFLOW_TEST_S3_ENDPOINT`, Docker (MinIO), or moto."""
    from metricflow.devservices._docker import docker_available, docker_minio

    given = _env(ENV_S3)
    if given:
        yield ServiceEndpoint("s3", given.rstrip("/"), "env", _env_s3_credentials())
    elif docker_available():
        with docker_minio() as (url, creds):
            yield ServiceEndpoint("s3", url, "docker", creds)
    else:
        from metricflow.devservices._s3 import S3Server

        with S3Server(**launcher_kwargs) as server:  # type: ignore[arg-type]
            yield ServiceEndpoint("s3", server.endpoint_url, "local", server.credentials)


def create_database(admin_url: str, name: str | None = None) -> str:
    """Create a database on the server behind `admin_url`; return a URL to it.

    Works for every source (env, Docker, local) since it only needs CREATE DATABASE
    rights. The name is random (`test_<hex>`) when None.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from metricflow.devservices._postgres import check_db_name

    name = check_db_name(name or f"test_{random_suffix()}")
    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database created by `create_database`, disconnecting its sessions."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from metricflow.devservices._postgres import check_db_name

    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(check_db_name(name))
            )
        )
