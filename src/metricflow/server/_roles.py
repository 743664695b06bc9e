"""Distributed roles of the `metricflow` CLI: ingest, writer, query, registry."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:  # noqa: SLF001 - argparse API
    """Register the role subcommands on the CLI's subparsers."""
