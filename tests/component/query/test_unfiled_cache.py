"""A store written only by this process (embedded) keeps search's unfiled keys until
its next write (query/_sql.unfiled_keys)."""

from __future__ import annotations

import uuid

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
