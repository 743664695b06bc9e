from __future__ import annotations

import math

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.store._arrow import build_insert


def _batch(run, keys, kidx, steps, ts, vals):
    return DecodedMetrics(run, tuple(keys), np.array(kidx, np.int32), np.array(steps, np.int64),
                          np.array(ts, np.int64), np.array(vals, np.float64))


def test_summary_matches_reference():
    rng = np.random.default_rng(0)
    batches = []
    for r in range(3):
        keys = ["a", "b", "c"][: r + 1]
        n = 200
        vals = rng.normal(size=n)
        vals[::17] = np.nan
        batches.append(_batch(f"run{r}", keys, rng.integers(0, len(keys), n),
                              rng.integers(0, 50, n), rng.integers(0, 5, n), vals))
    t = build_insert(batches)
    assert t.metrics.num_rows == 600
    got = {(r, k): (ls, lt, lv, mn, mx) for r, k, ls, lt, lv, mn, mx in zip(
        *[t.summary.column(c).to_pylist() for c in t.summary.column_names])}
    ref: dict = {}
    for b in batches:
        for i in range(b.n):
            key = (b.run_id, b.keys[b.key_index[i]])
            ref.setdefault(key, []).append((b.steps[i], b.timestamps[i], b.values[i]))
    assert set(got) == set(ref)
    for key, pts in ref.items():
        ls, lt, lv, mn, mx = got[key]
        best = max((s, t_) for s, t_, _ in pts)
        assert (ls, lt) == best
        assert any(v == lv or (math.isnan(v) and math.isnan(lv))
                   for s, t_, v in pts if (s, t_) == best)
        finite = [v for *_, v in pts if not math.isnan(v)]
        assert mn == min(finite) and mx == max(finite)


def test_keys_are_remapped_across_batches():
    t = build_insert([_batch("r1", ["x", "y"], [1, 0], [0, 0], [0, 0], [1, 2]),
                      _batch("r2", ["y", "z"], [0, 1], [0, 0], [0, 0], [3, 4])])
    assert t.metrics.column("key").to_pylist() == ["y", "x", "y", "z"]
    assert t.metrics.column("run_id").to_pylist() == ["r1", "r1", "r2", "r2"]
