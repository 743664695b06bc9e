"""The `metricflow` command line: one CLI for every role."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from metricflow import _env
from metricflow.server._roles import add_security_args


def _serve(args: argparse.Namespace) -> int:
    from metricflow.auth._types import AuthConfig
    from metricflow.ingest._direct import DirectSinkConfig
    from metricflow.server._config import ServerConfig, security_fields
    from metricflow.server._embedded import EmbeddedServer

    cfg = ServerConfig(
        data_dir=args.data_dir, host=args.host, grpc_port=args.grpc_port,
        http_port=args.http_port, clickhouse_dsn=args.clickhouse or "",
        metadata_uri=args.metadata or "", artifact_root=args.artifacts or "",
        sink=DirectSinkConfig(linger_s=args.linger_ms / 1000.0,
                              max_group_points=args.group_points),
        use_uvloop=not args.no_uvloop,
        auth_mode=args.auth, tls_cert=args.tls_cert or "", tls_key=args.tls_key or "",
        tls_client_ca=args.tls_client_ca or "",
        auth=AuthConfig(default_permission=args.default_permission,
                        rate_limit_per_s=args.rate_limit,
                        cert_admin_users=frozenset(args.cert_admin_user or ())),
    )

    async def main() -> None:
        server = EmbeddedServer(cfg)
        try:
            await server.start()
        except BaseException:
            await server.stop(0)  # close what start() opened; the error is reported
            raise
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(json.dumps({"event": "ready", "role": "server", "grpc_port": server.grpc_port,
                          "http_port": server.http_port, "pid": os.getpid(),
                          "data_dir": cfg.data_dir,
                          **security_fields(cfg.auth, cfg.host, cfg.tls_client_ca,
                                            tls=bool(server.tls and server.tls.enabled)),
                          "loop": type(loop).__module__}), flush=True)
        await stop.wait()
        await server.stop()

    _run_loop(main, cfg.use_uvloop)
    return 0


def _run_loop(main: Callable[[], object], use_uvloop: bool) -> None:
    if use_uvloop:
        try:
            import uvloop

            uvloop.run(main())  # type: ignore[arg-type]
            return
        except ImportError:
            pass
    asyncio.run(main())  # type: ignore[arg-type]


_COMMAND_MODULES = (
    "metricflow.server._roles",      # ingest, writer, query, registry
    "metricflow.server._maintenance",  # gc
    "metricflow.auth._cli",           # admin (tokens, users, permissions)
    "loadtests.cli",                  # loadtest
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="metricflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("server", help="run everything embedded (chDB, SQLite, local files)")
    s.add_argument("--data-dir", default=_env.DATA_DIR.get())
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--grpc-port", type=int, default=50051)
    s.add_argument("--http-port", type=int, default=5000, help="-1 disables HTTP")
    s.add_argument("--clickhouse", help="data plane DSN (default chdb://<data-dir>/clickhouse)")
    s.add_argument("--metadata", help="control plane URI (default sqlite:///<data-dir>/metadata.db)")
    s.add_argument("--artifacts", help="artifact store URI (default file://<data-dir>/artifacts)")
    s.add_argument("--linger-ms", type=float, default=100.0, help="group commit linger")
    s.add_argument("--group-points", type=int, default=100_000, help="group commit size")
    s.add_argument("--no-uvloop", action="store_true")
    add_security_args(s, run_wait=False)
    s.set_defaults(func=_serve)
    import importlib

    # Each command family registers its own subcommands (roles, admin, gc, loadtest).
    for mod in _COMMAND_MODULES:
        try:
            importlib.import_module(mod).add_parsers(sub)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Migrations log nine INFO lines per start; their warnings and errors still show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from metricflow.errors import MetricflowError
    from metricflow.server._preflight import StartupError, check_command

    try:
        check_command(args)
        return int(args.func(args))
    except (StartupError, MetricflowError) as e:
        # What happened and what to do, on one line; a traceback would bury it.
        print(f"metricflow {args.command}: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
