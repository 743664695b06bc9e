"""compare_mlflow.py's bulk loaders put the same search runs into MLflow and metricflow.

The search comparison is only fair if both stores hold the same runs, params,
tags and metric values, and each answers the benchmark's searches the same way.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import ViewType
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from loadtests._bulk_load import load_metricflow_in_child, load_mlflow
from loadtests._compare_systems import (
    SEARCH_FILTER,
    SEARCH_ORDER,
    MetricflowSide,
    mlflow_store_uris,
    run_params,
    run_values,
)
from loadtests._server import start_server

N = 230  # several load chunks of 100, the last one partial


def _index(name: str) -> int:
    assert name.startswith("search-"), name
    return int(name.removeprefix("search-"))


def test_bulk_loaded_stores_hold_the_same_runs(tmp_path: Path) -> None:
    ml_dir = tmp_path / "mlflow"
    ml_dir.mkdir()
    ml_exp = load_mlflow(*mlflow_store_uris(str(ml_dir)), "bulk", N, chunk=100)
    store = SqlAlchemyStore(*mlflow_store_uris(str(ml_dir)))
    ml_all = store.search_runs([ml_exp], "", ViewType.ACTIVE_ONLY, 1000, [], None)
    assert len(ml_all) == N
    for r in ml_all:
        i = _index(r.info.run_name)
        assert r.data.params == run_params(i)
        assert r.data.metrics == run_values(i)
        assert r.data.tags["team"] == f"t{i % 3}"
        assert r.info.status == "RUNNING" and r.info.lifecycle_stage == "active"
    assert sorted(_index(r.info.run_name) for r in ml_all) == list(range(N))

    def ml_search(filt: str) -> list[float]:
        runs = store.search_runs([ml_exp], filt, ViewType.ACTIVE_ONLY, 100, [SEARCH_ORDER], None)
        return [r.data.metrics["s0"] for r in runs]

    ml_top, ml_filtered = ml_search(""), ml_search(SEARCH_FILTER)
    store.engine.dispose()

    mf_dir = tmp_path / "metricflow"
    mf_exp, _ = load_metricflow_in_child(str(mf_dir), "bulk", N, chunk=100)
    srv = start_server(str(mf_dir))
    try:
        side = MetricflowSide(srv.uri)
        try:
            runs, token = side.c.search_runs([mf_exp], max_results=1000)
            assert token == "" and len(runs) == N
            for r in runs:
                i = _index(r.info.run_name)
                assert r.params == run_params(i)
                assert {k: m.last_value for k, m in r.metrics.items()} == run_values(i)
                assert r.tags["team"] == f"t{i % 3}"
                assert r.tags["mlflow.runName"] == r.info.run_name
                assert r.info.status == "RUNNING"
            assert sorted(_index(r.info.run_name) for r in runs) == list(range(N))
            assert side.search(mf_exp, False) == ml_top
            assert side.search(mf_exp, True) == ml_filtered
            matching = sum(1 for i in range(N)
                           if run_values(i)["s1"] > 0.5 and run_params(i)["opt"] == "adam")
            assert len(ml_top) == 100 and len(ml_filtered) == min(100, matching) > 0
        finally:
            side.close()
    finally:
        srv.stop()
