"""report.json (stable keys, schema 'metricflow.loadtest/v1') and report.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from loadtests.loadtest._collect import Collector
from loadtests.loadtest._queries import QueryLoad
from loadtests.loadtest._scenario import Scenario

SCHEMA = "metricflow.loadtest/v1"
LAG_METHOD = ("marker probe: each load process logs a marker point through its loaded "
              "Client every lag_probe_interval_s and polls count_points until it is "
              "counted; lag = log call -> first successful poll (includes client linger)")


def build_report(*, scenario: Scenario, target: str, embedded: bool, experiment: str,
                 started_at: str, sampler_source: str, loadavg_start: list[float],
                 loadavg_end: list[float], verification: dict[str, Any],
                 collector: Collector, queries: QueryLoad, extras: dict[str, Any],
                 ingest_end_s: float, interrupted: bool) -> dict[str, Any]:
    """Assemble the report dict; every key is always present (null when unmeasured)."""
    col = collector
    sustained, by_phase = col.sustained(ingest_end_s)
    acked = col.total("acked")
    steps, behind = col.total("steps"), col.total("behind")
    errors = col.process_errors() + queries.errors
    server: dict[str, Any] = {"source": sampler_source, "cpu_s": None, "cpu_avg_pct": None,
                              "cpu_peak_pct": None, "rss_mb_peak": None, "rss_mb_end": None}
    if col.first_res and col.last_res and col.last_res[0] > col.first_res[0]:
        (t1, r1), (t2, r2) = col.first_res, col.last_res
        server.update(cpu_s=round(r2.cpu_s - r1.cpu_s, 2),
                      cpu_avg_pct=round(100 * (r2.cpu_s - r1.cpu_s) / (t2 - t1), 1),
                      cpu_peak_pct=col.cpu_peak_pct, rss_mb_peak=round(col.rss_peak_mb, 1),
                      rss_mb_end=round(r2.rss_mb, 1))
    ack = col.ack.summary()
    lag = col.lag.summary()
    lost = verification["status"] != "PASS"
    return {
        "schema": SCHEMA,
        "scenario": scenario.to_dict(),
        "target": target,
        "embedded_server": embedded,
        "experiment": experiment,
        "started_at": started_at,
        "interrupted": interrupted,
        "duration_s": round(ingest_end_s, 3),
        "load_generator": {
            "processes": scenario.workers.processes,
            "simulated_workers": scenario.workers.total,
            "mode": scenario.workers.mode,
            "steps_logged": steps,
            "steps_behind_schedule": behind,
            "behind_schedule_pct": round(100 * behind / steps, 2) if steps else 0.0,
            "client_flush_s": extras["flush_s"],
            "client_peak_buffer_bytes": max(extras["peak_buffer_bytes"], default=0),
            "client_dropped_points": extras["dropped"],
            "host_cpus": os.cpu_count(),
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg_end,
        },
        "throughput": {
            "points_logged": col.total("logged"),
            "points_acked": acked,
            "points_rejected_by_server": col.total("rejected"),
            "sustained_points_per_s": sustained,
            "overall_points_per_s": round(acked / ingest_end_s, 1) if ingest_end_s > 0 else None,
            "peak_points_per_s": max(col.series["acked_per_s"], default=None),
            "by_phase_points_per_s": by_phase,
        },
        "ack_latency_ms": {**{k: ack[k] for k in ("p50", "p95", "p99", "max")},
                           "points": ack["count"], "method": col.ack_method},
        "queryable_lag_ms": {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"],
                             "samples": lag["count"], "timeouts": col.total("lag_timeouts"),
                             "method": LAG_METHOD},
        "queries": {kind: {**queries.total[kind].summary(),
                           "errors": sum(v for k, v in queries.errors.items()
                                         if k.startswith(kind + ":"))}
                    for kind in ("search", "history")},
        "runs": {"started": col.total("runs_started"), "finished": col.total("runs_done")},
        "artifacts": {"uploaded": col.total("art_n"), "bytes": col.total("art_bytes"),
                      **{f"{k}_ms": v for k, v in col.art.summary().items() if k != "count"}},
        "errors": {"total": sum(errors.values()), "by_type": dict(sorted(errors.items()))},
        "server": server,
        "verification": verification,
        "passed": not lost and not interrupted,
        "timeseries": col.series,
        "lag_samples": col.lag_samples,
        "plots": [],
    }


def _v(x: Any, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.1f}{unit}"
    return f"{x:,}{unit}" if isinstance(x, int) else f"{x}{unit}"


def render_markdown(r: dict[str, Any]) -> str:
    """The human summary of a report dict."""
    v = r["verification"]
    lines: list[str] = []
    if v["status"] != "PASS":
        lines += [f"# ❌ DATA {v['status']}: {v['missing_points']:,} point(s) missing, "
                  f"{v['extra_points']:,} extra, "
                  f"{v['runs_with_missing_points'] + v['runs_with_checksum_mismatch']:,} "
                  f"run(s) affected", ""]
    s, lg, t = r["scenario"], r["load_generator"], r["throughput"]
    a, q, srv = r["ack_latency_ms"], r["queryable_lag_ms"], r["server"]
    lines += [
        f"# metricflow load test: {s['name']}", "",
        f"{s['description']}".strip(), "",
        f"- target: `{r['target']}` ("
        + ("embedded server started by the tool" if r["embedded_server"] else "remote") + ")",
        f"- started: {r['started_at']}, ingest took {r['duration_s']:.1f} s"
        + (" (INTERRUPTED)" if r["interrupted"] else ""),
        f"- load: {lg['simulated_workers']:,} simulated workers = {lg['processes']} processes "
        f"× {s['workers']['per_process']} {lg['mode']} workers, "
        f"{s['workers'].get('clients_per_process', 1)} Client(s) per process; "
        f"{lg['behind_schedule_pct']}% of steps behind schedule",
        f"- load average {lg['loadavg_start']} -> {lg['loadavg_end']} on {lg['host_cpus']} CPUs",
        "", "## Results", "", "| measure | value |", "|---|---|",
        f"| sustained points/s (acked, steady+soak) | {_v(t['sustained_points_per_s'])} |",
        f"| overall points/s | {_v(t['overall_points_per_s'])} |",
        f"| peak points/s (1 s) | {_v(t['peak_points_per_s'])} |",
        f"| points logged / acked | {_v(t['points_logged'])} / {_v(t['points_acked'])} |",
        f"| ack latency p50 / p95 / p99 | {_v(a['p50'], ' ms')} / {_v(a['p95'], ' ms')} / "
        f"{_v(a['p99'], ' ms')} |",
        f"| ingest-to-queryable lag p50 / p99 | {_v(q['p50'], ' ms')} / {_v(q['p99'], ' ms')} "
        f"({q['samples']} samples, {q['timeouts']} timeouts) |",
    ]
    for kind, qq in r["queries"].items():
        lines.append(f"| {kind} latency p50 / p99 under load | {_v(qq['p50'], ' ms')} / "
                     f"{_v(qq['p99'], ' ms')} ({qq['count']} ok, {qq['errors']} errors) |")
    lines += [
        f"| runs started / finished | {_v(r['runs']['started'])} / {_v(r['runs']['finished'])} |",
        f"| artifacts uploaded | {_v(r['artifacts']['uploaded'])} "
        f"({_v(r['artifacts']['bytes'])} bytes, p50 {_v(r['artifacts']['p50_ms'], ' ms')}) |",
        f"| server CPU avg / peak ({srv['source']}) | {_v(srv['cpu_avg_pct'], '%')} / "
        f"{_v(srv['cpu_peak_pct'], '%')} |",
        f"| server RSS peak / end | {_v(srv['rss_mb_peak'], ' MiB')} / "
        f"{_v(srv['rss_mb_end'], ' MiB')} |",
        f"| errors | {r['errors']['total']} |",
        "", "## Loss check (count and checksum per run)", "",
        f"**{v['status']}**: {v['runs_checked']:,} runs, expected {v['expected_points']:,} "
        f"points (checksum {v['expected_checksum']!r}), stored {v['stored_points']:,} "
        f"(checksum {v['stored_checksum']!r}).", "",
    ]
    for m in v["mismatched_runs"][:20]:
        lines.append(f"- run `{m['run_id']}`: expected {m['expected_points']} points / "
                     f"{m['expected_checksum']!r}, stored {m['stored_points']} / "
                     f"{m['stored_checksum']!r}")
    if r["errors"]["by_type"]:
        lines += ["", "## Errors by type", "", "| type | count |", "|---|---|"]
        lines += [f"| {k} | {n} |" for k, n in r["errors"]["by_type"].items()]
    if r["plots"]:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in r["plots"]]
    lines += ["", "## Methods", "",
              f"- ack latency: {a['method'] or 'unavailable'}",
              f"- lag: {q['method']}",
              "- sustained points/s: mean of 1 s acked-points rates in steady and soak "
              "phases, up to the end of ingest", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], col: Collector, out: Path, plots: bool = True) -> None:
    """Write report.json, report.md and the PNG plots into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        from loadtests.loadtest._plots import write_plots  # matplotlib is slow

        report["plots"] = write_plots(report, out)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(report))
