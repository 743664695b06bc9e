"""Reads of the query API stop at METRICFLOW_QUERY_TIMEOUT_S with a clear error."""

from __future__ import annotations

import pytest

from metricflow.errors import ErrorCode, MetricflowError
from metricflow.query._deadline import QueryTimeout, read_settings
from metricflow.query._window import RunWindow


def test_a_read_past_the_limit_is_stopped_with_a_deadline_error(dataset, store,
                                                                monkeypatch) -> None:
    core, runs = dataset
    rid = next(iter(runs))
    exps = sorted({str(i) for i in range(4)})
    # unlimited first: the same calls answer
    monkeypatch.setenv("METRICFLOW_QUERY_TIMEOUT_S", "0")
    assert "max_execution_time" not in read_settings()
    assert core.search_runs(exps, "", ["metrics.acc DESC"], 5, "", "all")[0]
    assert core.downsample([rid], "acc", 10)
    scope = core.scope(exps, "all")
    assert RunWindow(store.db, store.client).window(scope, "", "", 0, 10, []).total > 0
    assert len(core.history_page(rid, "acc", 10, "")[0])
    # a limit no query can meet (1 us): each is stopped by the engine
    monkeypatch.setenv("METRICFLOW_QUERY_TIMEOUT_S", "0.000001")
    calls = {
        "search": lambda: core.search_runs(exps, "", ["metrics.acc DESC"], 5, "", "all"),
        "downsample": lambda: core.downsample([rid], "acc", 10),
        "window": lambda: RunWindow(store.db, store.client).window(scope, "", "", 0, 10, []),
        "history": lambda: core.history_page(rid, "acc", 10, ""),
    }
    for name, call in calls.items():
        with pytest.raises(QueryTimeout) as e:
            call()
        err: MetricflowError = e.value
        assert err.code == ErrorCode.DEADLINE_EXCEEDED and err.http_status == 504, name
        assert "METRICFLOW_QUERY_TIMEOUT_S" in err.message and "1e-06 s" in err.message
        assert err.details == {"field": "query", "limit": 1e-06}


def test_the_default_limit_is_sixty_seconds(monkeypatch) -> None:
    monkeypatch.delenv("METRICFLOW_QUERY_TIMEOUT_S", raising=False)
    assert read_settings(max_threads=1) == {"max_threads": 1, "max_execution_time": 60.0}


def test_only_the_engines_timeout_becomes_a_deadline_error() -> None:
    from metricflow.query._deadline import deadline

    with pytest.raises(ValueError):  # a text that merely names it passes through
        with deadline():
            raise ValueError("filter value 'TIMEOUT_EXCEEDED' is not a number")
    with pytest.raises(QueryTimeout):
        with deadline():
            raise RuntimeError("Code: 159. DB::Exception: Timeout exceeded: elapsed 1.2 ms, "
                               "maximum: 1.0 ms. (TIMEOUT_EXCEEDED)")
