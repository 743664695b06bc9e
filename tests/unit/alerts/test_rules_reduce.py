"""Per-key reductions of a batch and the vectorized rule comparison."""

from __future__ import annotations

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._model import rule_from_dict
from metricflow.alerts._rules import CompiledRules, reduce_batch


def _batch(keys: tuple[str, ...], ki: list[int], vals: list[float]) -> DecodedMetrics:
    n = len(ki)
    return DecodedMetrics("r" * 32, keys, np.array(ki, dtype=np.int32),
                          np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64),
                          np.array(vals, dtype=np.float64))


def _rule(i: int, **cond: object):
    from dataclasses import replace
    return replace(rule_from_dict({"name": f"r{i}", "condition": cond}), rule_id=i)


def test_reductions_group_by_key_in_arrival_order() -> None:
    b = _batch(("a", "b"), [0, 1, 0, 1, 0], [1.0, 5.0, np.nan, 7.0, 3.0])
    bk = reduce_batch(b)
    assert bk.present.tolist() == [True, True]
    assert bk.fmax.tolist() == [3.0, 7.0] and bk.fmin.tolist() == [1.0, 5.0]
    assert bk.nonfinite.tolist() == [1, 0]
    assert bk.last_value.tolist() == [3.0, 7.0] and bk.last_step.tolist() == [4, 3]


def test_breaches_any_and_last_per_rule() -> None:
    rules = [_rule(1, type="threshold", metric="a", op=">", value=2.5),
             _rule(2, type="threshold", metric="b", op="<", value=6),
             _rule(3, type="nonfinite", metric="a"),
             _rule(4, type="threshold", metric="zzz", op=">", value=0)]
    c = CompiledRules(rules)
    b = _batch(("a", "b"), [0, 1, 0, 1, 0], [1.0, 5.0, np.inf, 7.0, 2.0])
    has, any_b, last_b = c.breaches(reduce_batch(b), c.key_map(b.keys))
    assert has.tolist() == [True, True, True, False]
    # a: finite max 2.0 (inf is not a threshold breach) ; b: min 5 < 6, last 7 is not
    assert any_b.tolist() == [False, True, True, False]
    assert last_b.tolist() == [False, False, False, False]


def test_bad_rules_name_the_field() -> None:
    import pytest

    from metricflow.errors import InvalidArgument

    for body, field in [({"name": "x", "condition": {"type": "nope"}}, "condition.type"),
                        ({"name": "x", "condition": {"type": "threshold", "metric": "a"}},
                         "condition.value"),
                        ({"name": "x", "condition": {"type": "stalled", "seconds": -1}},
                         "condition.seconds"),
                        ({"name": "x", "condition": {"type": "failed"}, "severity": "meh"},
                         "severity"),
                        ({"name": "", "condition": {"type": "failed"}}, "name")]:
        with pytest.raises(InvalidArgument) as e:
            rule_from_dict(body)
        assert e.value.details["field"] == field, (body, e.value.details)


def _reference(b: DecodedMetrics) -> dict[str, list]:
    """Per-key reductions computed key by key, the slow obvious way."""
    out: dict[str, list] = {"fmax": [], "fmin": [], "nonfinite": [], "last_value": [],
                            "last_step": []}
    for j in range(len(b.keys)):
        pts = np.flatnonzero(b.key_index == j)
        v = b.values[pts]
        fin = v[np.isfinite(v)]
        out["fmax"].append(float(fin.max()) if fin.size else -np.inf)
        out["fmin"].append(float(fin.min()) if fin.size else np.inf)
        out["nonfinite"].append(int((~np.isfinite(v)).sum()))
        out["last_value"].append(float(v[-1]))
        out["last_step"].append(int(b.steps[pts[-1]]))
    return out


def _step_major_batch(rows: int, nk: int, seed: int = 0) -> DecodedMetrics:
    rng = np.random.default_rng(seed)
    ki = np.tile(np.arange(nk, dtype=np.int32), rows)
    steps = np.repeat(np.arange(100, 100 + rows, dtype=np.int64), nk)
    return DecodedMetrics("r" * 32, tuple(f"k{j}" for j in range(nk)), ki, steps, steps,
                          rng.normal(size=rows * nk))


def test_step_major_batches_reduce_as_the_general_path() -> None:
    b = _step_major_batch(rows=7, nk=5)
    bk = reduce_batch(b)
    assert bk.order is None and bk.starts is None  # the step-major path was taken
    ref = _reference(b)
    for name, want in ref.items():
        assert getattr(bk, name).tolist() == want, name
    assert bk.counts.tolist() == [7] * 5 and bk.present.all()
    # The same points in another order are not step-major: the general path agrees.
    perm = np.random.default_rng(1).permutation(len(b.values))
    shuffled = DecodedMetrics(b.run_id, b.keys, b.key_index[perm], b.steps[perm],
                              b.timestamps[perm], b.values[perm])
    gk = reduce_batch(shuffled)
    assert gk.order is not None
    assert gk.fmax.tolist() == bk.fmax.tolist() and gk.fmin.tolist() == bk.fmin.tolist()


def _grouped(b: DecodedMetrics) -> DecodedMetrics:
    """The batch as metricflow's client sends it: grouped by key, stable."""
    o = np.argsort(b.key_index, kind="stable")
    return DecodedMetrics(b.run_id, b.keys, b.key_index[o], b.steps[o], b.timestamps[o],
                          b.values[o])


def test_batches_grouped_by_key_reduce_in_place() -> None:
    b = _grouped(_step_major_batch(rows=6, nk=4, seed=3))
    # a key with no points in the batch: drop key 2's
    keep = b.key_index != 2
    b = DecodedMetrics(b.run_id, b.keys, b.key_index[keep], b.steps[keep],
                       b.timestamps[keep], b.values[keep])
    bk = reduce_batch(b)
    assert bk.order is None and bk.starts is not None  # the grouped path was taken
    assert bk.present.tolist() == [True, True, False, True]
    ref = _reference(DecodedMetrics(b.run_id, ("k0", "k1", "k3"),
                                    np.searchsorted([0, 1, 3], b.key_index).astype(np.int32),
                                    b.steps, b.timestamps, b.values))
    for name, want in ref.items():
        assert getattr(bk, name)[[0, 1, 3]].tolist() == want, name
    assert bk.fmax[2] == -np.inf and bk.fmin[2] == np.inf
    b.values[7] = -np.inf  # key 1: the general path takes over and counts it
    bk = reduce_batch(b)
    assert bk.order is not None and bk.nonfinite.tolist() == [0, 1, 0, 0]


def test_a_nonfinite_value_in_a_step_major_batch_is_counted() -> None:
    b = _step_major_batch(rows=4, nk=3)
    b.values[4] = np.nan  # key 1, second row
    b.values[11] = np.inf  # key 2, last row
    bk = reduce_batch(b)
    assert bk.order is not None  # a NaN/Inf sends a step-major batch to the general path
    ref = _reference(b)
    assert bk.nonfinite.tolist() == ref["nonfinite"] == [0, 1, 1]
    assert bk.fmax.tolist() == ref["fmax"] and bk.fmin.tolist() == ref["fmin"]
    assert np.isinf(bk.last_value[2])


def test_points_of_lists_each_keys_points_in_arrival_order_in_both_layouts() -> None:
    b = _step_major_batch(rows=6, nk=4)
    general = _batch(("a", "b", "c"), [2, 0, 2, 1, 0, 2], [1, 2, 3, 4, 5, 6])
    for batch, keys in ((b, np.array([3, 1])), (_grouped(b), np.array([3, 1])),
                        (general, np.array([2, 0]))):
        bk = reduce_batch(batch)
        assert (bk.order is None) == (batch is not general)  # a fast path for both others
        idx = bk.points_of(keys)
        want = np.concatenate([np.flatnonzero(batch.key_index == k) for k in keys])
        assert idx.tolist() == want.tolist()


def test_key_maps_are_kept_per_key_tuple_and_read_only() -> None:
    import pytest

    c = CompiledRules([_rule(1, type="threshold", metric="b", op=">", value=1),
                       _rule(2, type="nonfinite", metric="a")])
    m1 = c.key_map(("x", "b", "a"))
    assert m1.tolist() == [2, 1]  # rule keys in sorted order: a, b
    assert c.key_map(["x", "b", "a"]) is m1
    assert c.key_map(("a",)).tolist() == [0, -1]
    with pytest.raises(ValueError):
        m1[0] = 5


def test_every_layout_reduces_like_the_reference_on_random_batches() -> None:
    """Random batches of the three layouts (and near misses), with NaN, Inf, -0.0 and
    keys without points, against the key-by-key reference; points_of against a scan."""
    rng = np.random.default_rng(7)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308])
    paths = set()
    for _ in range(400):
        nk = int(rng.integers(1, 6))
        rows = int(rng.integers(1, 6))
        kind = rng.integers(0, 4)
        ki = np.tile(np.arange(nk), rows)
        if kind == 1:  # grouped by key, some keys without points
            ki = np.sort(rng.choice(np.arange(nk), size=int(rng.integers(1, 12))))
        elif kind == 2:  # arbitrary
            ki = rng.integers(0, nk, size=int(rng.integers(1, 12)))
        elif kind == 3 and len(ki) > 1:  # step-major but for one swap
            ki[[0, -1]] = ki[[-1, 0]]
        n = len(ki)
        vals = rng.normal(size=n)
        if rng.random() < 0.5:
            at = rng.integers(0, n, size=int(rng.integers(1, 3)))
            vals[at] = rng.choice(specials, size=len(at))
        steps = rng.integers(0, 5, size=n).astype(np.int64)  # duplicates allowed
        b = DecodedMetrics("r" * 32, tuple(f"k{j}" for j in range(nk)),
                           ki.astype(np.int32), steps, steps, vals)
        bk = reduce_batch(b)
        paths.add("general" if bk.order is not None else
                  "grouped" if bk.starts is not None else "step-major")
        for j in range(nk):
            pts = np.flatnonzero(ki == j)
            assert bk.counts[j] == len(pts) and bk.present[j] == (len(pts) > 0)
            if not len(pts):
                assert bk.fmax[j] == -np.inf and bk.fmin[j] == np.inf
                continue
            v = vals[pts]
            fin = v[np.isfinite(v)]
            want_max = float(fin.max()) + 0.0 if fin.size else -np.inf
            want_min = float(fin.min()) + 0.0 if fin.size else np.inf
            assert np.array_equal([bk.fmax[j], bk.fmin[j]], [want_max, want_min])
            assert np.signbit(bk.fmax[j]) == np.signbit(want_max)
            assert bk.nonfinite[j] == int((~np.isfinite(v)).sum())
            assert np.array_equal(bk.last_value[j], v[-1], equal_nan=True)
            assert bk.last_step[j] == steps[pts[-1]]
        present = np.flatnonzero(bk.present)
        pick = rng.permutation(present)[: int(rng.integers(1, len(present) + 1))]
        want = np.concatenate([np.flatnonzero(ki == k) for k in pick])
        assert bk.points_of(pick).tolist() == want.tolist()
    assert paths == {"general", "grouped", "step-major"}


def test_the_key_map_cache_is_bounded_by_keys_not_only_entries() -> None:
    from metricflow.alerts import _rules

    c = CompiledRules([_rule(1, type="threshold", metric="k0", op=">", value=1)])
    big = tuple(f"k{i}" for i in range(_rules._KEY_MAP_KEYS // 2 + 1))
    c.key_map(big)
    assert c._key_map_keys == len(big)
    other = big[1:] + ("x",)
    assert c.key_map(other).tolist() == [-1]
    assert c._key_map_keys == len(other) and list(c._key_maps) == [other]  # started over
    huge = tuple(f"h{i}" for i in range(_rules._KEY_MAP_KEYS + 1))
    assert c.key_map(huge).tolist() == [-1] and huge not in c._key_maps  # not kept
