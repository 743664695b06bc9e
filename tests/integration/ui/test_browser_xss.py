"""Hostile strings everywhere the UI shows user data, in a real browser: nothing executes.

Each payload pushes a label onto `window.__pwned` if it ever runs as script; the page
also records CSP violations (a blocked inline handler is one). Places: experiment name,
run name, param and tag values, metric/param/tag keys, artifact file names, model
name/description and version description. The server refuses HTML in keys
(MLflow's naming rules), so keys are also written straight into the store, as data
from an older server or another writer could be, to check the UI renders them as text.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from ui_support import Watched, base_url, start_server

pytestmark = pytest.mark.timeout(300)


def payload(label: str) -> str:
    return f"<img src=x onerror=\"window.__pwned.push('{label}')\">"


SCRIPT = "<script>window.__pwned.push('script')</script>"
KEY_RUN = "abcdef0123456789abcdef0123456789"


def _store_keys(data_dir: str, experiment_id: str) -> None:
    """A run whose metric, param and tag keys are payloads, written below the API."""
    import numpy as np
    import pyarrow as pa

    from metricflow._wire import DecodedMetrics
    from metricflow.app import ServerConfig
    from metricflow.query import ensure_query_schema
    from metricflow.store import MetricStore, build_insert

    cfg = ServerConfig(data_dir=data_dir, grpc_port=0, http_port=0)
    store = MetricStore(cfg.clickhouse_dsn, cfg.database)
    try:
        store.ensure_schema()
        ensure_query_schema(store)
        store.client.insert_arrow(f"{store.db}.runs", pa.table({
            "run_id": [KEY_RUN], "experiment_id": [experiment_id], "run_name": ["keys-run"],
            "user_id": ["x"], "status": ["FINISHED"], "start_time": [1_700_000_000_000],
            "end_time": [1_700_000_001_000], "parent_run_id": [""],
            "lifecycle_stage": ["active"], "artifact_uri": [""],
            "version": np.ones(1, np.uint64)}))
        store.client.insert_arrow(f"{store.db}.params", pa.table({
            "run_id": [KEY_RUN], "key": [payload("param-key")], "value": ["1"],
            "version": np.full(1, 5, np.uint64)}))
        store.client.insert_arrow(f"{store.db}.tags", pa.table({
            "run_id": [KEY_RUN], "key": [payload("tag-key")], "value": ["v"],
            "deleted": np.zeros(1, np.uint8), "version": np.full(1, 5, np.uint64)}))
        steps = np.arange(50, dtype=np.int64)
        store.insert_metrics(build_insert([DecodedMetrics(
            KEY_RUN, (payload("metric-key"),), np.zeros(50, np.int32), steps,
            1_700_000_000_000 + steps, np.sin(steps / 5.0))]))
    finally:
        store.close()


@dataclass
class Site:
    base: str
    exp: str
    run: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import metricflow as mf
    from metricflow.errors import InvalidArgument

    data = str(tmp_path_factory.mktemp("mf-ui-xss"))
    srv = start_server(data)
    try:
        c = mf.Client(f"grpc://{srv.target}", linger_ms=10)
        exp = c.get_or_create_experiment(payload("experiment-name"))
        run = c.create_run(exp, run_name=payload("run-name") + SCRIPT,
                           tags={"team": payload("tag-value")})
        rid = run.run_id
        c.log_params(rid, {"lr": payload("param-value")})
        for step in range(20):
            c.log_metrics(rid, {"loss": 1.0 / (step + 1)}, step=step)
        c.flush()
        # The API keeps HTML out of keys (and says which rule) ...
        for bad in (lambda: c.log_params(rid, {payload("k"): "1"}),
                    lambda: c.set_tag(rid, payload("k"), "1")):
            with pytest.raises(InvalidArgument, match="invalid characters"):
                bad()
        art = Path(str(tmp_path_factory.mktemp("art")))
        (art / "notes.txt").write_text(payload("artifact-content") + "\n")
        (art / "data.json").write_text('{"k": "' + payload("json-value").replace('"', "'")
                                       + '"}')
        c.artifacts.log_artifact(rid, art / "notes.txt")
        c.artifacts.log_artifact(rid, art / "data.json")
        weird = art / "x onerror=alert(1) .txt"
        weird.write_text("named oddly")
        c.artifacts.log_artifact(rid, weird)
        reg = c.registry
        reg.create_registered_model("xss-model", description=payload("model-description"))
        reg.create_model_version("xss-model", f"runs:/{rid}/notes.txt", run_id=rid,
                                 description=payload("version-description"))
        c.update_run(rid, status="FINISHED")
        c.close()
        srv.stop()
        # ... so hostile keys go into the store directly, then the server starts again.
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            pool.submit(_store_keys, data, exp).result()
        srv = start_server(data)
        yield Site(base_url(srv), exp, rid)
    finally:
        srv.stop()


def _visit(w: Watched, url: str, ready: str) -> None:
    """Load `url` as a new document (the canary and CSP records are per document: the
    one being left is checked first) and wait for `ready`."""
    if w.page.url.startswith("http"):
        w.assert_clean()
    w.page.goto("about:blank")
    w.page.goto(url)
    w.page.get_by_test_id(ready).first.wait_for()
    w.page.wait_for_timeout(300)  # an onerror fires right after the image fails to load


def test_experiments_runs_and_keys(watched: Watched, site: Site) -> None:
    page = watched.page
    _visit(watched, site.base + "/#/", "exp-row")
    assert payload("experiment-name") in page.get_by_test_id("exp-row").all_inner_texts()[-1] \
        or any(payload("experiment-name") in t
               for t in page.get_by_test_id("exp-row").all_inner_texts())
    _visit(watched, site.base + f"/#/experiments/{site.exp}", "run-row")
    text = " ".join(page.get_by_test_id("run-row").all_inner_texts())
    assert payload("run-name") in text  # shown as text, not as an element
    # Every key (the hostile ones included) in the column picker.
    page.get_by_test_id("column-picker-open").click()
    page.get_by_test_id("column-picker-item").first.wait_for()
    page.wait_for_timeout(300)
    keys = " ".join(page.get_by_test_id("column-picker-item").all_inner_texts())
    for label in ("metric-key", "param-key", "tag-key"):
        assert payload(label) in keys, label
    watched.assert_clean()


def test_run_page_details_and_charts(watched: Watched, site: Site) -> None:
    page = watched.page
    for run in (site.run, KEY_RUN):
        _visit(watched, site.base + f"/#/experiments/{site.exp}/runs/{run}?tab=details",
               "params-table")
        body = page.inner_text("body")
        if run == site.run:
            assert payload("param-value") in body and payload("tag-value") in body
            assert SCRIPT in body
        else:
            assert payload("param-key") in body and payload("tag-key") in body
        _visit(watched, site.base + f"/#/experiments/{site.exp}/runs/{run}", "chart")
    assert payload("metric-key") in page.inner_text("body")
    watched.assert_clean()


def test_artifacts_and_models(watched: Watched, site: Site) -> None:
    page = watched.page
    _visit(watched, site.base + f"/#/experiments/{site.exp}/runs/{site.run}?tab=artifacts",
           "artifact-tree")
    names = " ".join(page.get_by_test_id("artifact-item").all_inner_texts())
    assert "x onerror=alert(1) .txt" in names
    for name in ("notes.txt", "data.json", "x onerror=alert(1) .txt"):
        page.get_by_test_id("artifact-item").filter(has_text=name).first.click()
        preview = page.get_by_test_id("artifact-preview")
        preview.wait_for()
        page.wait_for_timeout(300)
    page.get_by_test_id("artifact-item").filter(has_text="notes.txt").first.click()
    page.get_by_test_id("artifact-preview").filter(has_text="artifact-content").wait_for()
    _visit(watched, site.base + "/#/models", "models-table")
    _visit(watched, site.base + "/#/models/xss-model", "model-name")
    body = page.inner_text("body")
    assert payload("model-description") in body
    watched.assert_clean()
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
