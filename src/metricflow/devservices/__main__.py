"""Start local services by hand: `python -m metricflow.devservices kafka postgres s3`.

Prints `export METRICFLOW_TEST_...=...` lines (eval-able by a shell, and honoured by
the pytest fixtures) and keeps the services up until Ctrl-C or SIGTERM.
`--install-only` just downloads/installs what the launchers need (for CI warm-up).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from metricflow.devservices._resolve import ENV_KAFKA, ENV_POSTGRES, ENV_S3

SERVICES = ("kafka", "postgres", "s3")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metricflow.devservices", description=__doc__.splitlines()[0]
    )
    parser.add_argument("services", nargs="+", choices=SERVICES, help="services to run")
    parser.add_argument("--kafka-port", type=int, help="Kafka client port (default: free)")
    parser.add_argument("--postgres-port", type=int, help="PostgreSQL port (default: free)")
    parser.add_argument("--s3-port", type=int, help="S3 port (default: free)")
    parser.add_argument(
        "--s3-mode", choices=("process", "thread"), default="process", help="moto placement"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep service data under DIR/<service> (kept on exit; Kafka restarts on it)",
    )
    parser.add_argument("--install-only", action="store_true", help="install/download, then exit")
    return parser


def _install(services: Sequence[str]) -> None:
    if "kafka" in services:
        from metricflow.devservices._kafka_install import ensure_kafka_libs

        print(f"kafka jars: {ensure_kafka_libs(quiet=False)}", flush=True)
    if "postgres" in services:
        from metricflow.devservices._pg_install import ensure_postgres

        print(f"postgres binaries: {ensure_postgres().bindir}", flush=True)
    if "s3" in services:
        import moto.server  # noqa: F401 - fails clearly if moto[server] is missing

        print("s3: moto server importable", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = _parser().parse_args(argv)
    services = list(dict.fromkeys(args.services))
    if args.install_only:
        _install(services)
        return 0

    def subdir(name: str) -> Path | None:
        return args.data_dir / name if args.data_dir else None

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    with contextlib.ExitStack() as stack:
        running: list[tuple[str, object]] = []
        for name in services:
            started = time.monotonic()
            if name == "kafka":
                from metricflow.devservices._kafka import KafkaBroker

                broker = stack.enter_context(
                    KafkaBroker(port=args.kafka_port, data_dir=subdir("kafka"))
                )
                line, detail = (ENV_KAFKA, broker.bootstrap), f"pid {broker.pid}"
                running.append((name, broker))
            elif name == "postgres":
                from metricflow.devservices._postgres import PostgresServer

                pg = stack.enter_context(
                    PostgresServer(port=args.postgres_port, data_dir=subdir("postgres"))
                )
                line, detail = (ENV_POSTGRES, pg.url), f"pid {pg.pid}"
                running.append((name, pg))
            else:
                from metricflow.devservices._s3 import S3Server

                s3 = stack.enter_context(S3Server(mode=args.s3_mode, port=args.s3_port))
                line, detail = (ENV_S3, s3.endpoint_url), f"mode {s3.mode}"
                running.append((name, s3))
            took = time.monotonic() - started
            print(f"export {line[0]}={shlex.quote(line[1])}", flush=True)
            print(f"# {name} ready in {took:.1f}s ({detail})", file=sys.stderr, flush=True)
        print("# all up; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(1.0):
            dead = [name for name, svc in running if not getattr(svc, "running", True)]
            if dead:
                print(f"# exited unexpectedly: {', '.join(dead)}", file=sys.stderr)
                return 1
        print("# stopping", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
