"""The `metricflow` command line: one CLI for every role."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from metricflow.app import add_role_parsers
from metricflow.auth import add_admin_parsers
from metricflow.client import add_sync_parsers
from metricflow.governance import add_parsers as add_governance_parsers
from metricflow.server._maintenance import add_parsers as add_gc_parsers
from metricflow.serving import add_deploy_parsers, add_serve_parsers

_OPTIONAL_COMMAND_MODULES = (
    "loadtests.cli",                  # loadtest (a source checkout only)
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="metricflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    add_role_parsers(sub)  # server, ingest, writer, query, registry (metricflow.app)
    add_admin_parsers(sub)  # admin: users, tokens, permissions (metricflow.auth)
    add_gc_parsers(sub)  # gc
    add_governance_parsers(sub)  # approvals, policy, lineage, audit (metricflow.governance)
    add_deploy_parsers(sub)  # deploy: model deployments (metricflow.serving)
    add_serve_parsers(sub)  # serve: the serving gateway of a deployment (metricflow.serving)
    add_sync_parsers(sub)  # sync: upload spooled/offline runs (metricflow.client)
    for mod in _OPTIONAL_COMMAND_MODULES:
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
