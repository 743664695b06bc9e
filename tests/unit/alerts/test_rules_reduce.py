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
