"""ParamGuard: a changed param is refused at the call in Kafka mode (issue 22 item 1)."""

from __future__ import annotations

import asyncio

import pytest

from metricflow.errors import ErrorCode, InvalidArgument
from metricflow.ingest._param_guard import ParamGuard


class FakeStore:
    def __init__(self) -> None:
        self.params: dict[str, dict[str, str]] = {}
        self.reads = 0

    def get_params(self, run_ids):  # MetricStore.get_params
        self.reads += 1
        return {r: dict(self.params.get(r, {})) for r in run_ids}


def run(coro):
    return asyncio.run(coro)


def test_a_value_accepted_here_conflicts_before_the_store_shows_it() -> None:
    g = ParamGuard(None, ttl_s=300.0)
    assert run(g.reserve("r1", {"lr": "0.01"})) == ["lr"]
    assert run(g.reserve("r1", {"lr": "0.01"})) == []  # same value again: fine
    with pytest.raises(InvalidArgument) as e:
        run(g.reserve("r1", {"lr": "0.02", "new": "1"}))
    assert e.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert "'lr'" in e.value.message and "'0.01'" in e.value.message
    # all or nothing: the other key of the refused request was not remembered
    assert run(g.reserve("r1", {"new": "2"})) == ["new"]
    assert run(g.reserve("r2", {"lr": "0.02"})) == ["lr"]  # other runs are separate


def test_stored_values_are_final_and_win_over_expired_reservations() -> None:
    store = FakeStore()
    store.params["r"] = {"lr": "0.5"}
    g = ParamGuard(store.get_params, ttl_s=0.0)
    with pytest.raises(InvalidArgument):
        run(g.reserve("r", {"lr": "0.1"}))
    assert run(g.reserve("r", {"lr": "0.5"})) == []
    reads = store.reads
    run(g.reserve("r", {"lr": "0.5"}))
    assert store.reads == reads  # every key known as stored: no read
    # ttl 0: a value accepted here is forgotten at once, the store decides
    assert run(g.reserve("r", {"b": "1"})) == ["b"]
    assert run(g.reserve("r", {"b": "2"})) == ["b"]


def test_release_forgets_a_failed_write() -> None:
    g = ParamGuard(None, ttl_s=300.0)
    keys = run(g.reserve("r", {"a": "1"}))
    g.release("r", keys)
    assert run(g.reserve("r", {"a": "2"})) == ["a"]


def test_concurrent_calls_of_one_node_cannot_both_pass() -> None:
    store = FakeStore()
    g = ParamGuard(store.get_params, ttl_s=300.0)

    async def both() -> list:
        return await asyncio.gather(g.reserve("r", {"lr": "1"}), g.reserve("r", {"lr": "2"}),
                                    return_exceptions=True)

    results = run(both())
    assert sum(isinstance(x, InvalidArgument) for x in results) == 1, results


def test_memory_is_passed_not_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings pass METRICFLOW_PARAM_MEMORY_S; the guard itself reads no variable."""
    monkeypatch.setenv("METRICFLOW_PARAM_MEMORY_S", "not-a-number")
    assert ParamGuard(None, ttl_s=7.0).ttl_s == 7.0
    with pytest.raises(TypeError):
        ParamGuard(None)  # type: ignore[call-arg]
