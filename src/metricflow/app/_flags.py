"""The command-line flags of every role, and the one place they become settings.

Flag defaults come from the settings dataclasses, or from the `METRICFLOW_*`
variable (`metricflow._env`) that stands for them. `settings_from_args` reads
nothing else: after it, a process sees only its frozen `ServerConfig`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import TYPE_CHECKING

from metricflow import _env
from metricflow.app._roles import ROLES, Role
from metricflow.app._settings import (
    KafkaSettings,
    SecurityConfig,
    ServerConfig,
    Upstreams,
)
from metricflow.auth import AuthConfig
from metricflow.ingest import KafkaSinkConfig, TopicConfig, WriterConfig

if TYPE_CHECKING:
    from metricflow.query import TailLimits

MIB = 2**20
# The defaults every flag below takes (unless a METRICFLOW_* variable stands for it).
_SEC = SecurityConfig()
_AUTH = AuthConfig()
_PRODUCER = KafkaSinkConfig()


# ------------------------------------------------------------------ flag groups
def _listen(p: argparse.ArgumentParser, role: Role) -> None:
    p.add_argument("--host", default=_SEC.host,
                   help="interface to bind (0.0.0.0 in pods)")
    p.add_argument("--grpc-port", type=int, default=role.grpc_port, help="0 picks a free port")
    p.add_argument("--http-port", type=int, default=role.http_port,
                   help="-1 disables HTTP" if role.name == "server" else
                   "/metrics, /health, /ready; 0 picks a free port")
    p.add_argument("--no-uvloop", action="store_true")


def _embedded_stores(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=_env.DATA_DIR.get(), help=_env.DATA_DIR.help)
    p.add_argument("--clickhouse", help="data plane DSN (default chdb://<data-dir>/clickhouse)")
    p.add_argument("--database", default=ServerConfig.database)
    p.add_argument("--metadata",
                   help="control plane URI (default sqlite:///<data-dir>/metadata.db)")
    p.add_argument("--artifacts", help="artifact store URI (default file://<data-dir>/artifacts)")
    # None: DirectSinkConfig's default (100 ms, 100,000 points), applied in settings_from_args
    p.add_argument("--linger-ms", type=float, help="group commit linger (default 100)")
    p.add_argument("--group-points", type=int, help="group commit size (default 100000)")
    p.add_argument("--apply-linger-ms", type=float,
                   help="longest acknowledged run records and points wait to be inserted "
                        "with what follows them (default 200; 0: at once)")


def _data_plane(p: argparse.ArgumentParser, required: bool) -> None:
    env = _env.CLICKHOUSE_DSN.get()
    p.add_argument("--clickhouse", default=env or None, required=required and not env,
                   help=_env.CLICKHOUSE_DSN.help)
    p.add_argument("--database", default=ServerConfig.database)


def _control_plane(p: argparse.ArgumentParser) -> None:
    data_dir = os.path.abspath(_env.DATA_DIR.get())
    p.add_argument("--metadata",
                   default=_env.METADATA_URI.get() or f"sqlite:///{data_dir}/metadata.db",
                   help=_env.METADATA_URI.help)


def _kafka(p: argparse.ArgumentParser) -> None:
    for flag, var, kind in (("--kafka", _env.KAFKA_BOOTSTRAP, str),
                            ("--topic", _env.KAFKA_TOPIC, str),
                            ("--partitions", _env.KAFKA_PARTITIONS, int),
                            ("--replication", _env.KAFKA_REPLICATION, int)):
        p.add_argument(flag, type=kind, default=var.get(), help=var.help)


def _producer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compression", default=_env.KAFKA_COMPRESSION.get(),
                   help=_env.KAFKA_COMPRESSION.help)
    p.add_argument("--lz4-level", type=int, default=_env.KAFKA_LZ4_LEVEL.get(),
                   help=_env.KAFKA_LZ4_LEVEL.help)
    p.add_argument("--inflight-mb", type=int, default=_env.KAFKA_INFLIGHT_MB.get(),
                   help=_env.KAFKA_INFLIGHT_MB.help)
    p.add_argument("--produce-timeout-ms", type=int,
                   default=_PRODUCER.request_timeout_ms,
                   help="a produce not acked by then fails back to the client, which retries")


def _consumer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", default=_env.WRITER_GROUP.get(), help=_env.WRITER_GROUP.help)
    p.add_argument("--max-rows", type=int, default=_env.WRITER_MAX_ROWS.get(),
                   help=_env.WRITER_MAX_ROWS.help)
    p.add_argument("--max-mb", type=int, default=_env.WRITER_MAX_MB.get(),
                   help=_env.WRITER_MAX_MB.help)
    p.add_argument("--linger-ms", type=int, default=_env.WRITER_LINGER_MS.get(),
                   help=_env.WRITER_LINGER_MS.help)
    p.add_argument("--serve-query", action="store_true",
                   help="also serve the query API (and the MLflow REST API) from this "
                        "process (chDB: one process per data dir); the security flags "
                        "apply to it")


SECURITY_FLAGS: tuple[tuple[str, str, object], ...] = (
    ("auth", "--auth", _SEC.auth_mode),
    ("default_permission", "--default-permission", _AUTH.default_permission),
    ("rate_limit", "--rate-limit", _AUTH.rate_limit_per_s),
    ("tls_cert", "--tls-cert", None), ("tls_key", "--tls-key", None),
    ("tls_client_ca", "--tls-client-ca", None),
    ("auth_run_wait_s", "--auth-run-wait-s", _SEC.run_wait_s),
    ("cert_admin_user", "--cert-admin-user", None),
    ("ingest_upstream", "--ingest-upstream", None), ("upstream_ca", "--upstream-ca", None))
"""(dest, flag, default) of the flags that only apply where clients are served."""


def _security(p: argparse.ArgumentParser, role: Role) -> None:
    p.add_argument("--auth", choices=("auto", "on", "off"), default=_SEC.auth_mode,
                   help="auto: required on non-loopback binds; off must be explicit")
    p.add_argument("--default-permission", default=_AUTH.default_permission,
                   help="permission without an explicit grant: NO_PERMISSIONS/READ/EDIT/MANAGE")
    p.add_argument("--rate-limit", type=float, default=_AUTH.rate_limit_per_s,
                   help="requests/s per token; 0 = off")
    p.add_argument("--tls-cert", help="PEM certificate (enables TLS on gRPC and HTTP)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca",
                   help="PEM CA: gRPC and HTTPS clients must present a certificate it signed")
    if role.name != "server":  # the Kafka path: runs the writer has not applied yet
        p.add_argument("--auth-run-wait-s", type=float,
                       default=_SEC.run_wait_s,
                       help="how long authorization, run lifecycle calls and a child's "
                            "parent wait for a run not yet in ClickHouse")
    p.add_argument("--cert-admin-user", action="append", default=None, metavar="USER",
                   help="with --tls-client-ca: a client certificate naming USER carries the "
                        "admin scope (repeatable; otherwise certificates never do)")


def _mlflow(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", default=_env.ARTIFACT_ROOT.get() or None,
                   help=_env.ARTIFACT_ROOT.help)
    p.add_argument("--no-mlflow", action="store_true",
                   help="do not serve the MLflow REST API (it needs Kafka for its writes)")


def _upstreams(p: argparse.ArgumentParser, role: Role) -> None:
    what = {"query": "query reads and artifacts (the query role or a writer with "
                     "--serve-query)",
            "ingest": "ingest writes (an ingest node)"}
    for kind in role.upstreams:
        p.add_argument(f"--{kind}-upstream", metavar="URI",
                       help=f"forward gRPC {what[kind]} to grpc://HOST:PORT or "
                            "grpcs://HOST:PORT, so clients need one tracking URI")
    p.add_argument("--upstream-ca", metavar="PEM",
                   help="CA of the upstream roles' TLS certificates (grpcs://; default: "
                        "the system roots)")


def add_role_flags(p: argparse.ArgumentParser, role: Role) -> None:
    """Every flag of `metricflow ROLE` (the order is the order of `--help`)."""
    _listen(p, role)
    if role.name == "server":
        _embedded_stores(p)
        _security(p, role)
        return
    if role.name in ("ingest", "writer", "alerts"):
        _kafka(p)
    _data_plane(p, required=role.name in ("writer", "query"))
    _control_plane(p)
    if role.name == "query":
        p.add_argument("--metadata-read", metavar="URI", default=_env.METADATA_READ_URI.get(),
                       help=_env.METADATA_READ_URI.help)
        _kafka(p)
    if role.name == "ingest":
        _producer(p)
    if role.name == "writer":
        _consumer(p)
    if role.name == "alerts":
        # a string default goes through `type` too: a bad METRICFLOW_ALERTS_NICE is
        # refused as the flag would be, before anything starts
        p.add_argument("--nice", type=_nice, default=str(_env.ALERTS_NICE.get()),
                       help=_env.ALERTS_NICE.help + " (default: %(default)s)")
    _security(p, role)
    if role.name in ("writer", "query"):
        _mlflow(p)
    _upstreams(p, role)


def _nice(text: str) -> int:
    from metricflow.app._priority import NICE_MAX

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= NICE_MAX:
        raise argparse.ArgumentTypeError(
            f"must be an integer in [0, {NICE_MAX}] (--nice or {_env.ALERTS_NICE.name}), "
            f"got {text!r}")
    return value


# ------------------------------------------------------------------- settings
def writer_flag_errors(args: argparse.Namespace) -> str:
    """Why the writer's security flags cannot apply ("" if they can).

    Without --serve-query the writer serves no client API; a security flag would
    be silently ignored and its ops port (/metrics, /stats) left plaintext and open.
    """
    if args.serve_query:
        return ""
    given = [flag for attr, flag, dflt in SECURITY_FLAGS if getattr(args, attr, dflt) != dflt]
    if not given:
        return ""
    verb = "applies" if len(given) == 1 else "apply"
    return (f"metricflow writer: {', '.join(given)} only {verb} with --serve-query; without "
            "it the writer serves no client API and its ops port (/health, /ready, /metrics, "
            "/stats) has no auth or TLS: bind it to a private network instead")


def tail_limits_from_env() -> TailLimits:
    """The live-tail bounds the METRICFLOW_TAIL_* variables set (they have no flags)."""
    from metricflow.query import TailLimits

    return TailLimits(max_streams=_env.TAIL_MAX_STREAMS.get(),
                      max_streams_per_user=_env.TAIL_MAX_STREAMS_PER_USER.get(),
                      buffer_bytes=_env.TAIL_BUFFER_BYTES.get(),
                      stall_s=_env.TAIL_STALL_S.get(), min_poll_ms=_env.TAIL_MIN_POLL_MS.get(),
                      poll_share=_env.TAIL_POLL_SHARE.get())


def settings_from_args(args: argparse.Namespace) -> ServerConfig:
    """The settings of `metricflow ROLE ...` (validated: bad values fail here, at start)."""
    role = args.command
    if role == "writer" and (err := writer_flag_errors(args)):
        raise SystemExit(err)
    security = SecurityConfig(
        host=args.host, auth_mode=args.auth, tls_cert=args.tls_cert or "",
        tls_key=args.tls_key or "", tls_client_ca=args.tls_client_ca or "",
        run_wait_s=getattr(args, "auth_run_wait_s", _SEC.run_wait_s),
        auth=AuthConfig(default_permission=args.default_permission,
                        rate_limit_per_s=args.rate_limit,
                        cert_admin_users=frozenset(args.cert_admin_user or ())))
    kafka = None
    if hasattr(args, "kafka"):
        topic = TopicConfig(bootstrap=args.kafka, topic=args.topic,
                            partitions=args.partitions, replication=args.replication)
        producer = KafkaSinkConfig(topic=topic)
        if hasattr(args, "compression"):
            producer = KafkaSinkConfig(topic=topic, compression=args.compression,
                                       lz4_level=args.lz4_level,
                                       max_inflight_bytes=args.inflight_mb * MIB,
                                       request_timeout_ms=args.produce_timeout_ms)
        writer = WriterConfig(topic=topic)
        if hasattr(args, "group"):
            writer = WriterConfig(topic=topic, group_id=args.group, max_rows=args.max_rows,
                                  max_bytes=args.max_mb * MIB, linger_ms=args.linger_ms)
        kafka = KafkaSettings(producer=producer, writer=writer)
    from metricflow.ingest import DirectSinkConfig

    sink = DirectSinkConfig()  # the flags given replace its defaults
    if getattr(args, "linger_ms", None) is not None and role == "server":
        _in_range("--linger-ms", args.linger_ms, 0, 60_000)
        sink = dataclasses.replace(sink, linger_s=args.linger_ms / 1000.0)
    if getattr(args, "group_points", None) is not None:
        _in_range("--group-points", args.group_points, 1, 100_000_000)
        sink = dataclasses.replace(sink, max_group_points=args.group_points)
    if getattr(args, "apply_linger_ms", None) is not None:
        _in_range("--apply-linger-ms", args.apply_linger_ms, 0, 10_000)
        sink = dataclasses.replace(sink, apply_linger_s=args.apply_linger_ms / 1000.0)
    return ServerConfig(
        role=role, data_dir=getattr(args, "data_dir", None) or _env.DATA_DIR.get(),
        grpc_port=args.grpc_port, http_port=args.http_port,
        clickhouse_dsn=args.clickhouse or "", database=args.database,
        metadata_uri=args.metadata or "",
        metadata_read_uri=getattr(args, "metadata_read", None) or "",
        artifact_root=getattr(args, "artifacts", None) or "",
        sink=sink, kafka=kafka, security=security,
        upstreams=Upstreams(query=getattr(args, "query_upstream", None) or "",
                            ingest=getattr(args, "ingest_upstream", None) or "",
                            ca=getattr(args, "upstream_ca", None) or ""),
        tail=tail_limits_from_env(), param_memory_s=_env.PARAM_MEMORY_S.get(),
        mlflow=not getattr(args, "no_mlflow", False),
        serve_query=getattr(args, "serve_query", False), use_uvloop=not args.no_uvloop)


def _in_range(flag: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:  # NaN too
        raise SystemExit(f"{flag} must be in [{lo}, {hi}], got {value}")


def add_role_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`metricflow server|ingest|writer|query|registry`, each running `run(settings)`."""
    for role in ROLES.values():
        p = sub.add_parser(role.name, help=role.help)
        add_role_flags(p, role)
        p.set_defaults(func=_run)
        if role.name == "alerts":  # `metricflow alerts create|list|mute|delete|...`
            from metricflow.alerts import add_alerts_commands

            add_alerts_commands(p)


def _run(args: argparse.Namespace) -> int:
    from metricflow.app._serve import run

    settings = settings_from_args(args)
    if args.command == "alerts":  # before the role starts its threads: they inherit it
        from metricflow.app._priority import lower_priority

        lower_priority(args.nice)
    run(settings)
    return 0
