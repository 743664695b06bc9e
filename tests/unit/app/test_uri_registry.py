"""The URI registry is the one place that maps a scheme to a backend, and the adapters
and startup checks agree with it."""

from __future__ import annotations

import pytest

from metricflow.app import BACKENDS, BLOBS, CONTROL, DATA, SINK, backend_key
from metricflow.server import StartupError
from metricflow.server._preflight import chdb_path, check_metadata
from metricflow.store.metadata import create_metadata_engine


@pytest.mark.parametrize(("plane", "uri", "key"), [
    (DATA, "chdb:///tmp/x", "chdb"), (DATA, "https://h:8443", "http"),
    (DATA, "clickhouse://h", "http"), (DATA, "sqlite:///x.db", None),
    (CONTROL, "sqlite:////tmp/x.db", "sqlite"), (CONTROL, "postgres://u@h/db", "postgresql"),
    (CONTROL, "postgresql+psycopg://u@h/db", "postgresql"), (CONTROL, "mysql://h", None),
    (BLOBS, "/tmp/a", "file"), (BLOBS, "s3://b/p", "s3"), (SINK, "kafka://h:9092/t", "kafka"),
    (SINK, "inproc:", "inproc"),
])
def test_backend_key(plane: str, uri: str, key: str | None) -> None:
    assert backend_key(plane, uri) == key


@pytest.mark.parametrize("uri", ["postgres://u:p@127.0.0.1:1/db",
                                 "postgresql://u:p@127.0.0.1:1/db",
                                 "postgres+psycopg://u:p@127.0.0.1:1/db"])
def test_every_control_scheme_the_registry_accepts_opens(uri: str) -> None:
    """postgres:// passed the registry but the metadata engine refused it."""
    engine = create_metadata_engine(uri, pool_size=1)
    try:
        assert engine.url.get_backend_name() == "postgresql"
        assert engine.url.get_driver_name() == "psycopg"
    finally:
        engine.dispose()


def test_preflight_checks_postgres_scheme_like_postgresql() -> None:
    # Port 1 answers nothing: the check must say so for both spellings.
    for uri in ("postgres://u:p@127.0.0.1:1/db", "postgresql://u:p@127.0.0.1:1/db"):
        with pytest.raises(StartupError, match="unreachable"):
            check_metadata(uri, role=True)


def test_chdb_path_uses_the_registry() -> None:
    assert chdb_path("chdb:///tmp/d?x=1") == "/tmp/d"
    assert chdb_path("http://h:8123") is None


def test_every_plane_has_a_backend() -> None:
    assert {b.plane for b in BACKENDS} == {DATA, CONTROL, BLOBS, SINK}


def _role_args(argv: list[str]) -> object:
    from metricflow.server.cli import build_parser

    return build_parser().parse_args(argv)


@pytest.mark.parametrize(("argv", "metadata", "kafka"), [
    (["ingest"], True, True),
    (["writer", "--clickhouse", "http://h:1"], False, True),
    (["writer", "--clickhouse", "http://h:1", "--serve-query"], True, True),
    (["query", "--clickhouse", "http://h:1"], True, True),
    (["query", "--clickhouse", "http://h:1", "--no-mlflow"], True, False),
    (["registry"], True, False),
    (["server"], True, False),
])
def test_preflight_follows_the_roles_services(argv: list[str], metadata: bool,
                                               kafka: bool) -> None:
    """What preflight checks comes from app's ROLES and the settings, not a list of its own."""
    from metricflow.app import settings_from_args, uses_kafka, uses_metadata

    s = settings_from_args(_role_args([*argv, "--grpc-port", "0", "--http-port", "0"]))
    assert (uses_metadata(s), uses_kafka(s)) == (metadata, kafka)


def test_a_new_role_gets_its_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Role(...) line with Kafka-writing services gets the Kafka reachability check."""
    import dataclasses

    from metricflow.app import ROLES, settings_from_args, uses_kafka
    from metricflow.server import INGEST
    from metricflow.server._preflight import check_command

    args = _role_args(["registry", "--grpc-port", "0", "--http-port", "0"])
    assert not uses_kafka(settings_from_args(args))
    # The registry role has no --kafka flag; a role that mounts ingest (and takes --kafka)
    # must be checked: give the registry role ingest and Kafka settings.
    monkeypatch.setitem(ROLES, "registry", dataclasses.replace(
        ROLES["registry"], services=ROLES["registry"].services | {INGEST}))
    args = _role_args(["ingest", "--kafka", "127.0.0.1:1", "--metadata",
                       "sqlite:////tmp/f-arch-unused.db", "--grpc-port", "0",
                       "--http-port", "0"])
    vars(args)["command"] = "registry"
    with pytest.raises(StartupError, match="127.0.0.1:1"):
        check_command(args)


def test_every_entry_names_an_opener_that_exists() -> None:
    """The registry's entries are what opens a URI (app.open_* call them)."""
    for b in BACKENDS:
        assert callable(b.open()), b


def test_open_blobs_goes_through_the_entry(tmp_path: object) -> None:
    from metricflow.app import open_blobs
    from metricflow.artifacts import LocalBlobStore

    assert isinstance(open_blobs(str(tmp_path)), LocalBlobStore)
    assert isinstance(open_blobs(f"file://{tmp_path}"), LocalBlobStore)
    from metricflow.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="--artifacts 'gs://b': unsupported scheme"):
        open_blobs("gs://b")
