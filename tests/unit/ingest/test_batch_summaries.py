"""A batch's per-key summaries (ingest/_hot_runs.batch_summaries): the grouped layout's
path, which skips the sort, gives exactly what the sort gives."""

from __future__ import annotations

import numpy as np
import pytest

from metricflow.entities import DecodedMetrics
from metricflow.ingest._hot_runs import _grouped_summaries, _sorted_summaries, batch_summaries

_SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e-300])


def _batch(rng: np.random.Generator, ties: bool) -> DecodedMetrics:
    """Grouped by key, (step, timestamp) rising within each key unless `ties`."""
    nk = int(rng.integers(1, 12))
    counts = rng.integers(0, 40, nk)
    ki = np.repeat(np.arange(nk, dtype=np.int32), counts)
    steps, ts = [], []
    for c in counts:
        s = np.cumsum(rng.integers(0 if ties else 1, 3, c)).astype(np.int64)
        t = 1_700_000_000_000 + np.cumsum(rng.integers(0, 3, c)).astype(np.int64)
        if not ties:  # a repeated step needs a later timestamp
            t = t + np.arange(c, dtype=np.int64)
        steps.append(s)
        ts.append(t)
    n = len(ki)
    vals = rng.normal(size=n)
    special = rng.random(n) < 0.2
    vals[special] = rng.choice(_SPECIAL, int(special.sum()))
    return DecodedMetrics("r" * 32, tuple(f"k{i}" for i in range(nk)), ki,
                          np.concatenate(steps or [np.zeros(0, np.int64)]),
                          np.concatenate(ts or [np.zeros(0, np.int64)]), vals)


def _text(d: dict) -> dict:
    return {k: tuple(repr(x) for x in v) for k, v in d.items()}  # NaN, -0.0 as text


@pytest.mark.parametrize("seed", range(40))
def test_the_grouped_path_matches_the_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = _batch(rng, ties=False)
    if not b.n:
        assert batch_summaries(b) == {}
        return
    fast = _grouped_summaries(b)
    assert fast is not None  # rising within each key: no sort needed
    assert _text(fast) == _text(_sorted_summaries(b))
    assert _text(batch_summaries(b)) == _text(_sorted_summaries(b))


@pytest.mark.parametrize("seed", range(20))
def test_a_batch_in_logging_order_is_grouped_first(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    g = _batch(rng, ties=False)
    # the keys' points interleaved at random, each key's in its own order
    order = np.argsort(rng.random(g.n) + 0.0, kind="stable")
    pos = np.empty(g.n, np.int64)
    for k in range(len(g.keys)):
        mine = np.flatnonzero(g.key_index == k)
        slots = np.sort(order[mine]) if len(mine) else mine
        pos[mine] = slots
    b = DecodedMetrics(g.run_id, g.keys, *(np.empty_like(a) for a in
                                           (g.key_index, g.steps, g.timestamps, g.values)))
    for src, dst in zip((g.key_index, g.steps, g.timestamps, g.values),
                        (b.key_index, b.steps, b.timestamps, b.values)):
        dst[pos] = src
    if b.n:
        assert _grouped_summaries(b) is not None
    assert _text(batch_summaries(b)) == _text(_sorted_summaries(g))
    ki = np.array([0, 1, 0, 1], np.int32)
    step_major = DecodedMetrics("r" * 32, ("a", "b"), ki, np.array([0, 0, 1, 1], np.int64),
                                np.array([5, 5, 6, 6], np.int64),
                                np.array([1.0, np.nan, 3.0, 2.0]))
    assert _text(batch_summaries(step_major)) == {
        "a": ("1", "6", "3.0", "1.0", "3.0"), "b": ("1", "6", "2.0", "2.0", "2.0")}


@pytest.mark.parametrize("seed", range(20))
def test_ties_take_the_sort(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    b = _batch(rng, ties=True)
    assert _text(batch_summaries(b)) == _text(_sorted_summaries(b))


def test_a_tie_at_one_step_and_timestamp_keeps_the_largest_value() -> None:
    b = DecodedMetrics("r" * 32, ("a",), np.zeros(3, np.int32), np.array([1, 2, 2], np.int64),
                       np.array([7, 8, 8], np.int64), np.array([0.5, 9.0, 3.0]))
    assert _grouped_summaries(b) is None
    assert batch_summaries(b) == {"a": (2, 8, 9.0, 0.5, 9.0)}
