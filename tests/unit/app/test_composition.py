"""The composition root: flags and env -> settings, URIs -> backends, roles -> services."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from metricflow.app import (
    ROLES,
    SecurityConfig,
    ServerConfig,
    add_role_parsers,
    backend_for,
    services,
    settings_from_args,
)
from metricflow.app._settings import KafkaSettings
from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument
from metricflow.ingest._direct import DirectSinkConfig
from metricflow.ingest._kafka_config import KafkaSinkConfig, WriterConfig


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_role_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(("uri", "plane", "name"), [
    ("chdb:///tmp/x", "data", "chDB (ClickHouse in this process)"),
    ("http://ch:8123", "data", "ClickHouse server"),
    ("https://ch:8443", "data", "ClickHouse server"),
    ("sqlite:////tmp/m.db", "control", "SQLite"),
    ("postgresql+psycopg://u@h/db", "control", "PostgreSQL"),
    ("file:///tmp/a", "blobs", "local directory"),
    ("/tmp/a", "blobs", "local directory"),
    ("s3://bucket/prefix", "blobs", "S3"),
    ("inproc:", "sink", "in-process writer"),
    ("kafka://k:9092/topic", "sink", "Kafka"),
])
def test_one_registry_picks_every_backend_by_scheme(uri: str, plane: str, name: str) -> None:
    assert backend_for(plane, uri).name == name


def test_an_unknown_scheme_names_the_flag_the_schemes_and_what_was_received() -> None:
    with pytest.raises(InvalidArgument) as ei:
        backend_for("control", "mysql://u@h/db")
    msg = str(ei.value)
    assert "--metadata" in msg and "sqlite://" in msg and "postgresql://" in msg
    assert ei.value.details["received"] == "mysql://u@h/db"
    with pytest.raises(InvalidArgument, match="--clickhouse"):
        backend_for("data", "sqlite:///x.db")


def test_roles_are_sets_of_services() -> None:
    server = ROLES["server"].services
    for name in ("ingest", "writer", "query", "registry"):
        assert ROLES[name].services - {"writer"} <= server, name
    assert services(ServerConfig(role="query", kafka=KafkaSettings())) == server - {"ingest"}
    assert "mlflow" not in services(ServerConfig(role="query", kafka=KafkaSettings(),
                                                 mlflow=False))
    writer = ServerConfig(role="writer", kafka=KafkaSettings(), serve_query=True)
    assert services(writer) == ROLES["query"].services | {"writer"}


def test_server_settings_compose_security_and_default_into_the_data_dir(tmp_path) -> None:
    cfg = settings_from_args(_parse("server", "--data-dir", str(tmp_path), "--host", "0.0.0.0",
                                    "--auth", "on", "--rate-limit", "5"))
    assert cfg.security == SecurityConfig(host="0.0.0.0", auth_mode="on",
                                          auth=AuthConfig(enabled=True, rate_limit_per_s=5.0))
    assert cfg.host == "0.0.0.0" and cfg.kafka is None and cfg.sink_uri == "inproc:"
    assert cfg.clickhouse_dsn == f"chdb://{tmp_path}/clickhouse"
    assert cfg.metadata_uri == f"sqlite:///{tmp_path}/metadata.db"
    assert cfg.artifact_root == f"file://{tmp_path}/artifacts"
    assert not [f.name for f in dataclasses.fields(ServerConfig)
                if f.name in {f.name for f in dataclasses.fields(SecurityConfig)}]


def test_cli_defaults_are_the_dataclass_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("METRICFLOW_KAFKA_COMPRESSION", "METRICFLOW_WRITER_MAX_ROWS",
                "METRICFLOW_CLICKHOUSE_DSN"):
        monkeypatch.delenv(var, raising=False)
    server = settings_from_args(_parse("server"))
    assert server.sink == DirectSinkConfig() and server.grpc_port == ROLES["server"].grpc_port
    assert server.security == SecurityConfig()
    ingest = settings_from_args(_parse("ingest"))
    assert ingest.kafka is not None and ingest.kafka.producer == KafkaSinkConfig()
    assert ingest.security.run_wait_s == SecurityConfig().run_wait_s
    assert (ingest.grpc_port, ingest.http_port) == (50051, 9100)
    writer = settings_from_args(_parse("writer", "--clickhouse", "chdb:///tmp/unused"))
    assert writer.kafka is not None and writer.kafka.writer == WriterConfig()
    assert writer.clickhouse_dsn == "chdb:///tmp/unused" and not writer.serve_query


def test_env_variables_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICFLOW_CLICKHOUSE_DSN", "http://ch:8123")
    monkeypatch.setenv("METRICFLOW_METADATA_URI", "postgresql+psycopg://u@pg/mf")
    monkeypatch.setenv("METRICFLOW_KAFKA_TOPIC", "t1")
    monkeypatch.setenv("METRICFLOW_WRITER_MAX_MB", "8")
    monkeypatch.setenv("METRICFLOW_PARAM_MEMORY_S", "12.5")
    monkeypatch.setenv("METRICFLOW_TAIL_MAX_STREAMS", "3")
    cfg = settings_from_args(_parse("writer"))  # --clickhouse not required: the env sets it
    assert cfg.clickhouse_dsn == "http://ch:8123"
    assert cfg.metadata_uri == "postgresql+psycopg://u@pg/mf"
    assert cfg.kafka is not None and cfg.kafka.topic.topic == "t1"
    assert cfg.kafka.writer.max_bytes == 8 * 2**20
    assert cfg.sink_uri == "kafka://127.0.0.1:9092/t1" and cfg.param_memory_s == 12.5
    assert cfg.tail.max_streams == 3 and cfg.tail.max_streams_per_user == 8


def test_upstream_flags_and_roles() -> None:
    cfg = settings_from_args(_parse("ingest", "--query-upstream", "q:1", "--upstream-ca", "c"))
    assert (cfg.upstreams.query, cfg.upstreams.ingest, cfg.upstreams.ca) == ("q:1", "", "c")
    with pytest.raises(SystemExit):  # only the registry forwards both ways
        _parse("ingest", "--ingest-upstream", "i:1")
    reg = settings_from_args(_parse("registry", "--query-upstream", "q:1",
                                    "--ingest-upstream", "i:1"))
    assert reg.kafka is None and reg.clickhouse_dsn == "" and reg.artifact_root == ""


def test_bad_values_fail_when_the_settings_are_built() -> None:
    with pytest.raises(InvalidArgument, match="grpc_port"):
        ServerConfig(grpc_port=70000)
    with pytest.raises(InvalidArgument, match="compression"):
        settings_from_args(_parse("ingest", "--compression", "brotli"))
    with pytest.raises(InvalidArgument, match="run_wait_s"):
        settings_from_args(_parse("query", "--clickhouse", "chdb:///x",
                                  "--auth-run-wait-s", "500"))


def test_env_defaults_agree_with_the_settings_they_stand_for() -> None:
    # A METRICFLOW_* variable without a value leaves the dataclass default in place.
    from metricflow import _env
    from metricflow.ingest import TopicConfig
    from metricflow.query import TailLimits

    topic, producer, writer, tail = TopicConfig(), KafkaSinkConfig(), WriterConfig(), TailLimits()
    pairs = [(_env.KAFKA_BOOTSTRAP, topic.bootstrap), (_env.KAFKA_TOPIC, topic.topic),
             (_env.KAFKA_PARTITIONS, topic.partitions),
             (_env.KAFKA_REPLICATION, topic.replication),
             (_env.KAFKA_COMPRESSION, producer.compression),
             (_env.KAFKA_LZ4_LEVEL, producer.lz4_level),
             (_env.KAFKA_INFLIGHT_MB, producer.max_inflight_bytes // 2**20),
             (_env.WRITER_GROUP, writer.group_id), (_env.WRITER_MAX_ROWS, writer.max_rows),
             (_env.WRITER_MAX_MB, writer.max_bytes // 2**20),
             (_env.WRITER_LINGER_MS, writer.linger_ms),
             (_env.TAIL_MAX_STREAMS, tail.max_streams),
             (_env.TAIL_MAX_STREAMS_PER_USER, tail.max_streams_per_user),
             (_env.TAIL_BUFFER_BYTES, tail.buffer_bytes), (_env.TAIL_STALL_S, tail.stall_s),
             (_env.TAIL_MIN_POLL_MS, tail.min_poll_ms), (_env.TAIL_POLL_SHARE, tail.poll_share),
             (_env.PARAM_MEMORY_S, ServerConfig.param_memory_s),
             (_env.DATA_DIR, ServerConfig.data_dir)]
    assert [(v.name, v.default) for v, _ in pairs] == [(v.name, d) for v, d in pairs]


def test_apply_linger_flag() -> None:
    assert settings_from_args(_parse("server")).sink.apply_linger_s == 0.2
    cfg = settings_from_args(_parse("server", "--apply-linger-ms", "0"))
    assert cfg.sink.apply_linger_s == 0.0
    assert settings_from_args(_parse("server", "--apply-linger-ms", "50")).sink.apply_linger_s \
        == 0.05
    for bad in ("-1", "10001", "nan"):
        with pytest.raises(SystemExit, match="apply-linger-ms must be in"):
            settings_from_args(_parse("server", "--apply-linger-ms", bad))


def test_sink_flags_out_of_range_name_the_flag() -> None:
    for flag, bad in (("--linger-ms", "-1"), ("--linger-ms", "nan"), ("--group-points", "0")):
        with pytest.raises(SystemExit, match=f"{flag} must be in"):
            settings_from_args(_parse("server", flag, bad))
    cfg = settings_from_args(_parse("server", "--linger-ms", "20", "--group-points", "5000"))
    assert (cfg.sink.linger_s, cfg.sink.max_group_points) == (0.02, 5000)


def test_direct_sink_config_refuses_values_out_of_range() -> None:
    import dataclasses

    from metricflow.ingest import DirectSinkConfig

    ok = DirectSinkConfig()
    for name, bad in (("linger_s", -0.1), ("apply_linger_s", float("nan")),
                      ("max_insert_points", 0), ("read_barrier_timeout_s", 0.0),
                      ("dedup_window", -1), ("apply_linger_records", "10"),
                      ("max_group_points", True)):
        with pytest.raises(ValueError, match=f"DirectSinkConfig.{name} must be a number in"):
            dataclasses.replace(ok, **{name: bad})
    assert dataclasses.replace(ok, apply_linger_s=0.0, dedup_window=0).dedup_window == 0
