"""`metricflow loadtest SCENARIO --report DIR [--target grpc://host:port]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_LOSS = 3
EXIT_INTERRUPTED = 4


def add_parsers(sub: Any) -> None:
    """Register the `loadtest` subcommand on the metricflow CLI."""
    p = sub.add_parser(
        "loadtest", help="run a load-test scenario and write a report",
        description="Run a scenario (TOML/YAML) against a metricflow deployment, or against "
                    "an embedded server started for the test, and write report.json, "
                    "report.md and PNG plots. Exit code 3 means data loss was detected.")
    p.add_argument("scenario", help="scenario file, e.g. loadtests/scenarios/smoke.toml")
    p.add_argument("--report", required=True, type=Path, help="output directory")
    p.add_argument("--target", help="grpc://host:port (default: start an embedded server)")
    p.add_argument("--metrics-url", action="append", default=[],
                   help="Prometheus /metrics URL of a remote role, for CPU/RSS (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a scenario field, e.g. --set workers.processes=4")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply every phase length (e.g. 0.1 for a dry run)")
    p.add_argument("--no-live", action="store_true", help="no live display")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for the embedded `metricflow server` (repeatable)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from loadtests.loadtest import RunOptions, load_scenario, run_loadtest, scaled

    scenario = load_scenario(args.scenario, args.set)
    if args.time_scale != 1.0:
        scenario = scaled(scenario, args.time_scale)
    report = run_loadtest(scenario, RunOptions(
        report_dir=args.report, target=args.target, metrics_urls=tuple(args.metrics_url),
        live=not args.no_live, server_args=tuple(args.server_arg), plots=not args.no_plots))
    _print_summary(report, args.report)
    if report["verification"]["status"] != "PASS":
        return EXIT_LOSS
    return EXIT_INTERRUPTED if report["interrupted"] else 0


def _print_summary(r: dict[str, Any], out: Path) -> None:
    from rich.console import Console

    con = Console(stderr=True)
    v, t, a, q = r["verification"], r["throughput"], r["ack_latency_ms"], r["queryable_lag_ms"]
    if v["status"] != "PASS":
        con.rule("[bold red]DATA LOSS DETECTED" if v["status"] == "LOSS"
                 else "[bold red]EXTRA POINTS DETECTED")
        con.print(f"[bold red]{v['status']}: expected {v['expected_points']:,} points, "
                  f"stored {v['stored_points']:,}; {v['runs_with_missing_points']} run(s) short, "
                  f"{v['runs_with_checksum_mismatch']} checksum mismatch(es), "
                  f"{v['runs_with_extra_points']} with extra points")
        con.rule(style="red")
    else:
        con.print(f"[bold green]loss check PASS[/]: {v['stored_points']:,} points in "
                  f"{v['runs_checked']:,} runs, count and checksum match")
    con.print(f"sustained {t['sustained_points_per_s']} points/s; ack p50/p95/p99 "
              f"{a['p50']}/{a['p95']}/{a['p99']} ms; lag p50/p99 {q['p50']}/{q['p99']} ms; "
              f"errors {r['errors']['total']}")
    con.print(f"report: {out / 'report.md'}")
    sys.stderr.flush()
