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
    rows = list(zip(*[t.metrics.column(c).to_pylist() for c in ("run_id", "key", "value")]))
    assert rows == [("r1", "x", 2.0), ("r1", "y", 1.0), ("r2", "y", 3.0), ("r2", "z", 4.0)]


def _rows(t):
    cols = ("run_id", "key", "step", "timestamp", "value")
    return list(zip(*[t.metrics.column(c).to_pylist() for c in cols]))


def test_rows_come_out_in_table_order():
    # Keys in arrival order that is not string order (incl. non-ASCII and case),
    # steps in order per key: the fast path (stable sort by run and key only).
    keys = ["loss", "acc", "Zeta", "\u00e9t\u00e9", "a\u4e2d"]
    n = 50
    kidx = np.tile(np.arange(len(keys)), n)
    steps = np.repeat(np.arange(n), len(keys))
    b1 = _batch("run-b", keys, kidx, steps, steps * 10, np.arange(len(kidx), dtype=float))
    b0 = _batch("run-a", keys[::-1], kidx, steps, steps * 10, -np.arange(len(kidx), dtype=float))
    t = build_insert([b1, b0])
    rows = _rows(t)
    assert rows == sorted(rows, key=lambda r: (r[0].encode(), r[1].encode(), r[2], r[3]))
    ref = sorted(
        [(b.run_id, b.keys[k], int(s), int(ts), float(v))
         for b in (b1, b0) for k, s, ts, v in zip(b.key_index, b.steps, b.timestamps, b.values)],
        key=lambda r: (r[0].encode(), r[1].encode(), r[2], r[3]))
    assert rows == ref


def test_out_of_order_steps_fall_back_to_a_full_sort():
    b = _batch("r", ["k"], [0, 0, 0, 0], [3, 1, 2, 1], [0, 5, 0, 4], [30.0, 11.0, 20.0, 10.0])
    t = build_insert([b])
    assert [r[2:] for r in _rows(t)] == [(1, 4, 10.0), (1, 5, 11.0), (2, 0, 20.0), (3, 0, 30.0)]
    s = t.summary.to_pylist()[0]
    assert (s["last_step"], s["last_value"], s["min_value"], s["max_value"]) == \
        (3, 30.0, 10.0, 30.0)


def test_tied_step_and_timestamp_last_is_the_largest_value():
    # Points at one (step, timestamp) are ordered by value, NaN last, as the points
    # table sorts them and as MLflow picks the latest metric: the same answer
    # whatever order the points (or a replay of them) arrive in.
    for vals in ([1.0, 5.0, 3.0], [1.0, 3.0, 5.0]):
        b = _batch("r", ["k"], [0, 0, 0], [1, 2, 2], [7, 7, 7], vals)
        t = build_insert([b])
        assert t.summary.to_pylist()[0]["last_value"] == 5.0
        assert [r[4] for r in _rows(t)] == [1.0, 3.0, 5.0]
    b = _batch("r", ["k"], [0, 0], [2, 2], [7, 7], [math.nan, 5.0])
    assert math.isnan(build_insert([b]).summary.to_pylist()[0]["last_value"])


def _reference_order(batches):
    rows = [(b.run_id, b.keys[k], int(s), int(ts), float(v))
            for b in batches for k, s, ts, v in zip(b.key_index, b.steps, b.timestamps, b.values)]
    return sorted(rows, key=lambda r: (r[0].encode(), r[1].encode(), r[2], r[3], r[4]))


def _shuffled_batches(parts: int, width: int, grouped: bool) -> list:
    """Two runs' batches of `width` steps x 3 keys, the batches in shuffled order;
    rows interleave the keys per step, or (`grouped`) come key by key."""
    rng = np.random.default_rng(parts)
    out = []
    for part in rng.permutation(parts):
        for run in ("r2", "r1"):
            span = np.arange(part * width, part * width + width)
            if grouped:
                steps, kidx = np.tile(span, 3), np.repeat([2, 0, 1], width)
            else:
                steps, kidx = np.repeat(span, 3), np.tile([2, 0, 1], width)
            out.append(_batch(run, ["c", "a", "b"], kidx, steps, steps * 2,
                              rng.normal(size=3 * width)))
    return out


def test_batches_of_a_run_that_arrive_out_of_order_are_put_in_step_order(monkeypatch):
    # A client keeps several batches in flight, so a run's batches can reach the
    # log out of order: each is sorted and they do not overlap, so the rows are
    # ordered by moving whole stretches, without the full lexsort.
    batches = _shuffled_batches(parts=6, width=20, grouped=False)
    calls = []  # the stretch sort lexsorts the few stretches, never all rows
    real = np.lexsort
    monkeypatch.setattr(np, "lexsort",
                        lambda keys, *a, **k: calls.append(len(keys[0])) or real(keys, *a, **k))
    t = build_insert(batches)
    assert _rows(t) == _reference_order(batches)
    assert calls and max(calls) <= len(batches) * 3


def test_overlapping_batches_still_sort_fully():
    b1 = _batch("r", ["k"], [0, 0, 0], [5, 6, 7], [0, 0, 0], [1.0, 2.0, 3.0])
    b0 = _batch("r", ["k"], [0, 0, 0], [1, 6, 9], [0, 1, 0], [4.0, 5.0, 6.0])
    t = build_insert([b1, b0])
    assert _rows(t) == _reference_order([b1, b0])
    assert [r[2] for r in _rows(t)] == [1, 5, 6, 6, 7, 9]


def test_batches_grouped_by_key_are_ordered_without_sorting_rows(monkeypatch):
    # What clients send: each batch's rows grouped by key, each key's steps in order.
    batches = _shuffled_batches(parts=5, width=30, grouped=True)
    sorts = []
    real = np.argsort
    monkeypatch.setattr(np, "argsort",
                        lambda a, *x, **k: sorts.append(len(a)) or real(a, *x, **k))
    t = build_insert(batches)
    assert _rows(t) == _reference_order(batches)
    assert max(sorts, default=0) < 90  # never a sort of all 900 rows


def test_grouped_batches_that_overlap_still_sort_fully():
    b1 = _batch("r", ["a", "b"], [0] * 10 + [1] * 10, list(range(0, 20, 2)) * 2,
                [0] * 20, np.arange(20.0))
    b0 = _batch("r", ["a", "b"], [0] * 10 + [1] * 10, list(range(1, 21, 2)) * 2,
                [0] * 20, np.arange(20.0))
    t = build_insert([b1, b0] * 3)  # also each point three times
    assert _rows(t) == _reference_order([b1, b0] * 3)


def test_table_order_matches_a_full_sort_on_random_shapes():
    # Random batches: grouped or interleaved keys, shuffled, overlapping, tied,
    # repeated, negative steps; the rows must come out exactly as a full sort.
    rng = np.random.default_rng(2024)
    for case in range(300):
        batches = []
        for _ in range(rng.integers(1, 6)):
            n = int(rng.integers(1, 60))
            keys = ["a", "b", "c", "d"][: rng.integers(1, 5)]
            kidx = rng.integers(0, len(keys), n)
            start = int(rng.integers(-50, 50))
            steps = start + np.cumsum(rng.integers(0, 3, n))
            if rng.random() < 0.5:
                order = np.argsort(kidx, kind="stable")
                kidx, steps = kidx[order], steps[order]
            ts = steps * 10 + rng.integers(0, 2, n)
            vals = rng.choice([0.5, -1.0, np.nan, 2.0], n)
            batches.append(_batch(f"r{rng.integers(0, 3)}", keys, kidx, steps, ts, vals))
        if rng.random() < 0.3:
            batches.append(batches[0])  # a replay in the same insert
        got = _rows(build_insert(batches))
        want = sorted(
            ((b.run_id, b.keys[k], int(s), int(t), float(v))
             for b in batches
             for k, s, t, v in zip(b.key_index, b.steps, b.timestamps, b.values)),
            key=lambda r: (r[0], r[1], r[2], r[3], math.isnan(r[4]),
                           0.0 if math.isnan(r[4]) else r[4]))
        assert len(got) == len(want), case
        for g, w in zip(got, want):
            assert g[:4] == w[:4] and (g[4] == w[4] or math.isnan(g[4]) and math.isnan(w[4])), case
