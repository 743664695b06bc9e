"""A store written only by this process (embedded) keeps search's unfiled keys until
its next write (query/_sql.unfiled_keys)."""

from __future__ import annotations

import uuid

from metricflow.entities import RunInfo
from metricflow.query._sql import unfiled_keys


class _Counting:
    """A client that counts its queries."""

    def __init__(self, client) -> None:
        self.client, self.queries = client, 0
        self.metricflow_pool = client.metricflow_pool

    def query(self, *a, **k):
        self.queries += 1
        return self.client.query(*a, **k)


def test_unfiled_keys_are_read_again_only_after_a_write(store) -> None:
    c = _Counting(store.client)
    assert unfiled_keys(c, store.db) == frozenset() and c.queries == 1
    assert unfiled_keys(c, store.db) == frozenset() and c.queries == 2  # not sole writer
    store.mark_sole_writer()
    try:
        unfiled_keys(c, store.db)
        assert unfiled_keys(c, store.db) == frozenset() and c.queries == 3  # cached
        # A param of a run the store does not know is filed under '': the next search
        # must see its key.
        key = f"k{uuid.uuid4().hex[:6]}"
        store.insert_params([(uuid.uuid4().hex, key, "v")], 1)
        assert ("params", key) in unfiled_keys(c, store.db) and c.queries == 4
        assert ("params", key) in unfiled_keys(c, store.db) and c.queries == 4
    finally:
        store._pool.sole_writer = False


def test_key_lists_are_read_again_only_after_a_write(store) -> None:
    """The runs table's key lists (RunWindow.keys, every cold load asks for them): kept
    until the next write of a store this process alone writes, per scope and search."""
    from metricflow.query import QueryCore
    from metricflow.query._window import RunWindow

    core = QueryCore(store, None)
    c = _Counting(store.client)
    w = RunWindow(store.db, c)
    scope = core.scope(["0"], "active")
    first = w.keys(scope, ("params",), "", 100)
    asked = c.queries
    assert w.keys(scope, ("params",), "", 100) == first and c.queries == asked + 1  # not sole
    store.mark_sole_writer()
    try:
        w.keys(scope, ("params",), "", 100)
        asked = c.queries
        assert w.keys(scope, ("params",), "", 100) == first and c.queries == asked  # cached
        w.keys(scope, ("params",), "zz", 100)  # another search is its own answer
        assert c.queries == asked + 1
        rid = uuid.uuid4().hex
        store.insert_runs([RunInfo(rid, "0")], [1])
        key = f"new{uuid.uuid4().hex[:6]}"
        store.insert_params([(rid, key, "v")], 1)
        got = w.keys(scope, ("params",), "", 100)
        assert key in got["params"] and c.queries == asked + 2
    finally:
        store._pool.sole_writer = False
