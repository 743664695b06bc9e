"""The controller: start (or reach) a server, spawn load processes, watch, verify, report."""

from __future__ import annotations

import multiprocessing as mp
import queue
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.loadtest._collect import Collector
from loadtests.loadtest._live import LiveView
from loadtests.loadtest._queries import QueryLoad
from loadtests.loadtest._report import build_report, write_report
from loadtests.loadtest._resources import ResourceSampler, loadavg
from loadtests.loadtest._scenario import Scenario
from loadtests.loadtest._verify import verify_points
from loadtests.loadtest._worker import ProcArgs, process_main


@dataclass(frozen=True)
class VerifyContext:
    """What a `before_verify` hook sees: the ingest is over, the check has not run."""

    client: Any
    target: str
    experiment_id: str
    expected: dict[str, tuple[int, float]]


@dataclass(frozen=True)
class RunOptions:
    """How to run a scenario (not what to run)."""

    report_dir: Path
    target: str | None = None
    """grpc://host:port of a deployment; None starts an embedded server."""
    metrics_urls: tuple[str, ...] = ()
    """Prometheus /metrics URLs of remote roles for CPU/RSS (summed)."""
    live: bool = True
    """Show the live display (rich) on a terminal."""
    server_args: tuple[str, ...] = ()
    """Extra `metricflow server` arguments for the embedded server."""
    before_verify: Callable[[VerifyContext], None] | None = field(default=None, compare=False)
    """Test hook run between ingest and the loss check."""
    plots: bool = True


def run_loadtest(scenario: Scenario, opts: RunOptions) -> dict[str, Any]:
    """Run one scenario end to end and write the report; returns the report dict."""
    import metricflow as mf

    server = None
    target = opts.target
    urls = list(opts.metrics_urls)
    if target is None:
        from loadtests._server import start_server

        server = start_server(extra_args=list(opts.server_args))
        target = server.uri
        if server.http_port and server.http_port > 0:
            urls.append(f"http://127.0.0.1:{server.http_port}/metrics")
    sampler = ResourceSampler(local=server, metrics_urls=urls)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = loadavg()
    client = mf.Client(target, linger_ms=5)
    try:
        exp_name = f"loadtest-{scenario.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{id(opts):x}"
        experiment_id = client.get_or_create_experiment(exp_name)
        res = _drive(scenario, opts, target, experiment_id, client, sampler)
        expected = res.pop("expected")
        if opts.before_verify is not None:
            opts.before_verify(VerifyContext(client, target, experiment_id, expected))
        verification = verify_points(client, expected, scenario.verify_timeout_s)
        report = build_report(
            scenario=scenario, target=target, embedded=server is not None,
            experiment=exp_name, started_at=started_at, sampler_source=sampler.source,
            loadavg_start=load_start, loadavg_end=loadavg(), verification=verification,
            **res)
        write_report(report, res["collector"], opts.report_dir, plots=opts.plots)
        return report
    finally:
        client.close()
        if server is not None:
            server.stop()
            # The embedded server's data is the test's scratch (a sweep leaves
            # ~600 MB); the report holds the results.
            shutil.rmtree(server.data_dir, ignore_errors=True)


def _drive(s: Scenario, opts: RunOptions, target: str, experiment_id: str, client: Any,
           sampler: ResourceSampler) -> dict[str, Any]:
    ctx = mp.get_context("spawn")  # gRPC's threads do not survive fork
    q = ctx.Queue()
    stop, go = ctx.Event(), ctx.Event()
    t0v = ctx.Value("d", 0.0)
    sd = s.to_dict()
    procs = [ctx.Process(target=process_main, name=f"loadtest-{i}", daemon=True,
                         args=(ProcArgs(i, target, sd, experiment_id), q, stop, go, t0v))
             for i in range(s.workers.processes)]
    for p in procs:
        p.start()
    fatal: list[str] = []
    ready: set[int] = set()
    deadline = time.time() + 300
    while len(ready) + len(fatal) < len(procs) and time.time() < deadline:
        try:
            m = q.get(timeout=1.0)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
            continue
        if m["kind"] == "ready":
            ready.add(m["proc"])
        elif m["kind"] == "fatal":
            fatal.append(m["error"])
    if fatal or len(ready) < len(procs):
        stop.set()
        go.set()
        raise RuntimeError(f"load processes failed to start: {fatal or 'timeout'}")
    t0 = time.time() + 0.5
    t0v.value = t0
    go.set()
    col = Collector(s.phases, t0)
    qc = s.queries
    ql = QueryLoad(client, experiment_id, f"{s.runs.key_prefix}0", qc.threads,
                   qc.search_qps, qc.history_qps)
    ql.start()
    view = LiveView(s, enabled=opts.live)
    runs: dict[str, tuple[int, float]] = {}
    extras: dict[str, Any] = {"flush_s": [], "dropped": 0, "peak_buffer_bytes": []}
    finished: set[int] = set()
    ingest_end = t0
    next_tick = time.time() + 1.0
    try:
        with view:
            while len(finished) < len(procs):
                try:
                    m = q.get(timeout=max(0.01, next_tick - time.time()))
                    if m["kind"] in ("tick", "final"):
                        col.on_message(m)
                    elif m["kind"] == "runs":
                        runs.update(m["runs"])
                        extras["flush_s"].append(round(m["flush_s"], 3))
                        extras["dropped"] += m["dropped"]
                        extras["peak_buffer_bytes"].append(m["peak_buffer_bytes"])
                        finished.add(m["proc"])
                        ingest_end = time.time()
                except queue.Empty:
                    pass
                if time.time() >= next_tick:
                    next_tick += 1.0
                    row = col.tick(time.time(), ql.take(), sampler.sample(),
                                   sum(ql.errors.values()))
                    view.update(row, col, ql)
                    dead = [p for p in procs if not p.is_alive() and p.exitcode
                            and int(p.name.split("-")[1]) not in finished]
                    if dead:
                        raise RuntimeError(f"load process {dead[0].name} died "
                                           f"(exit {dead[0].exitcode})")
    except KeyboardInterrupt:
        stop.set()
        print("interrupted: stopping load processes, then verifying what was sent",
              file=sys.stderr)
        return _drive_tail(q, procs, col, ql, runs, extras, finished, sampler)
    finally:
        ql.stop()
        for p in procs:
            p.join(30)
    col.tick(time.time(), ql.take(), sampler.sample(), sum(ql.errors.values()), final=True)
    return {"collector": col, "queries": ql, "expected": runs, "extras": extras,
            "ingest_end_s": ingest_end - t0, "interrupted": False}


def _drive_tail(q: Any, procs: list[Any], col: Collector, ql: QueryLoad,
                runs: dict[str, tuple[int, float]], extras: dict[str, Any],
                finished: set[int], sampler: ResourceSampler) -> dict[str, Any]:
    """After Ctrl-C: collect the remaining run tables so the check covers what was sent."""
    end = time.time() + 180
    while len(finished) < len(procs) and time.time() < end:
        try:
            m = q.get(timeout=1.0)
        except queue.Empty:
            continue
        if m["kind"] in ("tick", "final"):
            col.on_message(m)
        elif m["kind"] == "runs":
            runs.update(m["runs"])
            finished.add(m["proc"])
    col.tick(time.time(), ql.take(), sampler.sample(), sum(ql.errors.values()))
    return {"collector": col, "queries": ql, "expected": runs, "extras": extras,
            "ingest_end_s": time.time() - col.t0, "interrupted": True}
