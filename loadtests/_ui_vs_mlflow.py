"""ui_bench.py --against-mlflow: MLflow 3.17.2's own UI and metricflow's UI, same data,
same browser, same measurement.

Both stores get 10,000 search runs (loadtests/_bulk_load.py: the same names, params, tags
and metric values) plus one run with a 100,000-point metric `curve`, written through each
system's own store layer before its server starts. Each figure is a cold navigation in a
fresh browser context (no cache), timed inside the page: performance.now() (ms since the
navigation started) at the first animation frame where the result is on screen, checked
every frame by a script that runs from the document's start (`watcher`):
  table: a run name of the search runs is shown in the experiment's runs table (metricflow:
         its first row; MLflow: a run link);
  chart: the run page's `curve` chart is drawn (metricflow: its chart element reports its
         buckets, min/max band over every point; MLflow: its "Model metrics" plot has drawn
         its line, from the sampled history MLflow's UI fetches).
The same predicate style is used for both; p50 over --repeat after one warm-up. Each case
starts on a quiet machine (`settle`; the seconds waited are in `settled_s`).

The embedded metricflow server keeps the answers of an unchanged store until its next
write (docs/query.md), so after the warm-up its loads find them kept. The same two
metricflow loads are also timed each right after a write (a tag set on a run of an
experiment of its own): `metricflow_*_after_write_ms`, and MLflow's times over them,
`mlflow_*_ratio_after_write`: what a first visitor after a write sees. Since 2026-12-07
(evening) a run page's answers are kept until a write to that run, not to any run, so
that write leaves the chart's answers kept; `metricflow_chart_after_run_write_ms` (and
`mlflow_chart_ratio_after_run_write`) times the chart right after a tag set on the
charted run itself: nothing of its page is kept.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from typing import Any

N_RUNS = 10_000
POINTS = 100_000
CURVE_RUN = "c0ffee" + "1" * 26
START_MS = 1_700_000_000_000


def _log(msg: str) -> None:
    import sys

    print(f"[ui_bench vs mlflow {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _curve(n: int) -> Any:
    import numpy as np

    s = np.arange(n, dtype=np.int64)
    return s, np.sin(s / 500.0) + (s == n // 3) * 5.0  # one spike


def load_mlflow_side(work: str) -> str:
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    from loadtests._bulk_load import load_mlflow
    from loadtests._compare_systems import mlflow_store_uris

    db, root = mlflow_store_uris(work)
    exp = load_mlflow(db, root, "bench", N_RUNS)
    store = SqlAlchemyStore(db, root)
    steps, vals = _curve(POINTS)
    rows = [{"run_uuid": CURVE_RUN, "key": "curve", "value": float(v),
             "timestamp": START_MS + int(s), "step": int(s), "is_nan": False}
            for s, v in zip(steps, vals)]
    with store.ManagedSessionMaker() as session:
        session.execute(insert(SqlRun), [{
            "run_uuid": CURVE_RUN, "name": "curve-run", "artifact_uri": f"{root}/{CURVE_RUN}",
            "experiment_id": int(exp), "source_type": SourceType.to_string(SourceType.UNKNOWN),
            "source_name": "", "entry_point_name": "", "user_id": "bench",
            "status": RunStatus.to_string(RunStatus.FINISHED), "start_time": START_MS,
            "end_time": START_MS + POINTS, "deleted_time": None, "source_version": "",
            "lifecycle_stage": LifecycleStage.ACTIVE}])
        session.execute(insert(SqlTag), [{"run_uuid": CURVE_RUN, "key": "mlflow.runName",
                                          "value": "curve-run"}])
        session.execute(insert(SqlMetric), rows)
        session.execute(insert(SqlLatestMetric), [rows[-1]])
    store.engine.dispose()
    return str(exp)


def load_metricflow_side(data_dir: str) -> str:
    """In a child process (chDB: one data path per process)."""
    import numpy as np
    import pyarrow as pa

    from loadtests._bulk_load import load_metricflow
    from metricflow._wire import DecodedMetrics
    from metricflow.app import ServerConfig
    from metricflow.store import MetricStore, build_insert

    exp = load_metricflow(data_dir, "bench", N_RUNS)
    cfg = ServerConfig(data_dir=data_dir, grpc_port=0, http_port=0)
    store = MetricStore(cfg.clickhouse_dsn, cfg.database)
    try:
        store.client.insert_arrow(f"{store.db}.runs", pa.table({
            "run_id": [CURVE_RUN], "experiment_id": [exp], "run_name": ["curve-run"],
            "user_id": ["bench"], "status": ["FINISHED"], "start_time": [START_MS],
            "end_time": [START_MS + POINTS], "parent_run_id": [""],
            "lifecycle_stage": ["active"], "artifact_uri": [""],
            "version": np.ones(1, np.uint64)}))
        steps, vals = _curve(POINTS)
        store.insert_metrics(build_insert([DecodedMetrics(
            CURVE_RUN, ("curve",), np.zeros(POINTS, np.int32), steps, START_MS + steps,
            vals.astype(np.float64))]))
    finally:
        store.close()
    return str(exp)


# Predicates evaluated every animation frame; they return performance.now() once true.
MF_TABLE = """() => { const r = document.querySelector('[data-testid=run-row]');
  return r && r.innerText.includes('search-') ? performance.now() : 0; }"""
MF_CHART = """() => { const c = document.querySelector('[data-testid=chart][data-metric=curve]');
  return c && c.dataset.buckets && Number(c.dataset.buckets) > 0 ? performance.now() : 0; }"""
# MLflow shows a run name as a link to the run (no test id): its run links are checked, not
# the whole body's text (which costs a layout of the page every frame while it loads).
ML_TABLE = """() => { for (const a of document.querySelectorAll('a[href*="/runs/"]'))
  if (/search-\\d+/.test(a.innerText)) return performance.now(); return 0; }"""
ML_CHART = """() => {
  const p = document.querySelector('.js-plotly-plot .scatterlayer path.js-line');
  const d = p && p.getAttribute('d');
  return d && d.length > 200 ? performance.now() : 0; }"""


SHOWN = "__mfShown "
"""The console message by which `watcher` reports the time (SHOWN + ms)."""


def watcher(predicate: str) -> str:
    """An init script: from the document's start, evaluate `predicate` every animation
    frame of the top window; at its first non-zero answer, keep it in window.__mfShown
    and report it on the console (SHOWN + the answer).

    In the page itself, so the figure does not depend on when the driver gets round to
    polling: Playwright's own polling starts only after goto() has returned (by default
    after the load event, then a round trip), and a page whose result was already on
    screen was timed at that later moment instead (seen as 100-120 ms here). The driver
    waits for the console message, not with wait_for_function: that evaluates
    Playwright's own script in the page, 14 ms of the main thread in the middle of a
    cold load here (a Chrome trace, 2026-12-08), charged to whichever page was timed."""
    return ("(() => { if (window.top !== window) return; const p = " + predicate + ";"
            # (console.debug as it is before the page runs: a page may replace it)
            " const say = console.debug.bind(console);"
            " const tick = () => { const t = p(); if (t) { window.__mfShown = t;"
            " say('" + SHOWN + "' + t); } else requestAnimationFrame(tick); };"
            " requestAnimationFrame(tick); })();")


def _machine_busy_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def settle(quiet: float = 0.15, step_s: float = 0.5, max_s: float = 60.0) -> float:
    """Wait until the machine is about idle: less than `quiet` of its CPU busy over
    `step_s` (at most `max_s`); returns the seconds waited.

    Before each case, so neither system is timed while something else still runs: a
    server answers its first /health while the rest of it still starts (MLflow's four
    uvicorn workers each import for ~2.5 CPU s), and until 2026-12-08 the first case
    (metricflow's table) was timed during that start-up."""
    t0 = time.monotonic()
    b0, a0 = _machine_busy_s()
    while time.monotonic() - t0 < max_s:
        time.sleep(step_s)
        b1, a1 = _machine_busy_s()
        if a1 > a0 and (b1 - b0) / (a1 - a0) < quiet:
            break
        b0, a0 = b1, a1
    return time.monotonic() - t0


def _timed(browser: Any, url: str, predicate: str, repeat: int,
           timeout_ms: float = 180_000, before: Any = None) -> list[float]:
    """Cold loads (a new context each) of `url` until `predicate` holds, after a warm-up;
    `before()` runs before each load."""
    out = []
    for i in range(repeat + 1):
        if before is not None:
            before()
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        ctx.add_init_script(watcher(predicate))
        page = ctx.new_page()
        try:
            with page.expect_console_message(lambda m: m.text.startswith(SHOWN),
                                             timeout=timeout_ms) as shown:
                page.goto(url, wait_until="commit")
            if i:
                out.append(float(shown.value.text[len(SHOWN):]))
        finally:
            ctx.close()
    return out


def against_mlflow(repeat: int, data_dir: str = "") -> dict[str, Any]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from playwright.sync_api import sync_playwright

    from loadtests._compare_systems import start_mlflow
    from loadtests.ui_bench import Server, launch

    work = data_dir or os.path.join(tempfile.gettempdir(), "mf-ui-vs-mlflow")
    ml_dir, mf_dir = os.path.join(work, "mlflow"), os.path.join(work, "metricflow")
    marker = os.path.join(work, "loaded.json")
    if os.path.isfile(marker):
        with open(marker) as f:
            ids = json.load(f)
        _log(f"reusing {work}")
    else:
        os.makedirs(ml_dir, exist_ok=True)
        os.makedirs(mf_dir, exist_ok=True)
        _log(f"loading {N_RUNS:,} runs + a {POINTS:,}-point metric into both systems")
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            mf_exp = pool.submit(load_metricflow_side, mf_dir).result()
        ids = {"mlflow": load_mlflow_side(ml_dir), "metricflow": mf_exp}
        with open(marker, "w") as f:
            json.dump(ids, f)
    ml = start_mlflow(workdir=ml_dir)
    mf = Server(mf_dir)
    res: dict[str, Any] = {}
    errors: dict[str, str] = {}
    settled: dict[str, float] = {}  # seconds waited for a quiet machine before each case
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            cases = {
                "metricflow_table_ms": (f"{mf.base}/#/experiments/{ids['metricflow']}",
                                        MF_TABLE),
                # MLflow 3 opens an experiment on its GenAI overview; /runs is its runs table.
                "mlflow_table_ms": (f"{ml.uri}/#/experiments/{ids['mlflow']}/runs", ML_TABLE),
                "metricflow_chart_ms": (f"{mf.base}/#/experiments/{ids['metricflow']}/runs/"
                                        f"{CURVE_RUN}", MF_CHART),
                # The run page's metric charts (MLflow draws a sample of the history).
                "mlflow_chart_ms": (f"{ml.uri}/#/experiments/{ids['mlflow']}/runs/{CURVE_RUN}"
                                    "/model-metrics", ML_CHART),
            }
            # The embedded server keeps the answers of an unchanged store (docs/query.md):
            # the same loads, each right after a write, time a first visitor after a write.
            write = _writer(mf.base)
            cases["metricflow_table_after_write_ms"] = (*cases["metricflow_table_ms"], write)
            cases["metricflow_chart_after_write_ms"] = (*cases["metricflow_chart_ms"], write)
            cases["metricflow_chart_after_run_write_ms"] = (
                *cases["metricflow_chart_ms"], _writer(mf.base, CURVE_RUN))
            for key, (url, pred, *before) in cases.items():
                settled[key] = round(settle(), 1)
                try:
                    ts = _timed(browser, url, pred, repeat, before=before[0] if before else None)
                    res[key] = round(statistics.median(ts), 1)
                    _log(f"{key}: {res[key]} ms (of {[round(t) for t in ts]})")
                except Exception as e:
                    errors[key] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                    res[key] = None
                    _log(f"{key}: FAILED {errors[key]}")
            browser.close()
    finally:
        mf.stop()
        ml.stop()

    def ratio(a: str, b: str) -> float | None:
        return round(res[a] / res[b], 1) if res.get(a) and res.get(b) else None

    return {"runs": N_RUNS, "chart_points": POINTS, "repeat": repeat, "mlflow": "3.17.2",
            **res, "mlflow_table_ratio": ratio("mlflow_table_ms", "metricflow_table_ms"),
            "mlflow_chart_ratio": ratio("mlflow_chart_ms", "metricflow_chart_ms"),
            "mlflow_table_ratio_after_write": ratio("mlflow_table_ms",
                                                    "metricflow_table_after_write_ms"),
            "mlflow_chart_ratio_after_write": ratio("mlflow_chart_ms",
                                                    "metricflow_chart_after_write_ms"),
            "mlflow_chart_ratio_after_run_write": ratio(
                "mlflow_chart_ms", "metricflow_chart_after_run_write_ms"),
            "target_ratio": 10, "settled_s": settled, "errors": errors}


def _writer(base: str, run_id: str = "") -> Any:
    """A write to the metricflow server: a tag on a run of its own experiment, so the
    next load finds no kept answer of a whole experiment; with `run_id`, on that run."""
    import httpx

    n = [0]

    def write_to(run: str) -> None:
        n[0] += 1
        httpx.post(base + "/api/2.0/mlflow/runs/set-tag", json={
            "run_id": run, "key": "ui-bench-writes", "value": str(n[0])}).raise_for_status()

    if run_id:
        return lambda: write_to(run_id)

    name = "ui-bench-writes"
    r = httpx.get(base + "/api/2.0/mlflow/experiments/get-by-name",
                  params={"experiment_name": name})
    if r.status_code == 404:
        r = httpx.post(base + "/api/2.0/mlflow/experiments/create", json={"name": name})
        r.raise_for_status()
        exp = r.json()["experiment_id"]
    else:
        r.raise_for_status()
        exp = r.json()["experiment"]["experiment_id"]
    r = httpx.post(base + "/api/2.0/mlflow/runs/create",
                   json={"experiment_id": exp, "run_name": "writer"})
    r.raise_for_status()
    run = r.json()["run"]["info"]["run_id"]
    return lambda: write_to(run)
