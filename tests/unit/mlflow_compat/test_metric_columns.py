"""log-batch metrics become columns in one pass per field when every value is a plain
JSON number; anything else takes the per-item checks, which name the field."""

from __future__ import annotations

import math

import pytest

from metricflow.errors import InvalidArgument
from metricflow.mlflow_compat import _runs
from metricflow.mlflow_compat._runs import metric_columns


def _points(cols):  # (key, step, timestamp, value) per item, in request order
    keys, kidx, steps, ts, values = cols
    return [(keys[k], int(s), int(t), float(v)) for k, s, t, v in zip(kidx, steps, ts, values)]


def test_the_fast_path_gives_the_per_item_result(monkeypatch) -> None:
    items = [{"key": f"k{i % 7}", "value": i / 3 if i % 2 else i, "timestamp": 1_700_000 + i,
              **({"step": i // 7} if i % 5 else {})} for i in range(500)]
    assert _runs._metric_columns_fast(items) is not None
    fast = _points(metric_columns(items))
    monkeypatch.setattr(_runs, "_metric_columns_fast", lambda _items: None)
    assert fast == _points(metric_columns(items))


@pytest.mark.parametrize("item", [
    {"key": "a", "value": True, "timestamp": 1},          # a bool is not a number
    {"key": "a", "value": "NaN", "timestamp": 1},         # proto3 JSON strings
    {"key": "a", "value": 1, "timestamp": "5"},
    {"key": "a", "value": 1, "timestamp": -1},            # MLflow: nonnegative
    {"key": "a", "value": 10**400, "timestamp": 1},       # beyond a double
    {"key": "a", "value": 1, "timestamp": 2**64},         # beyond int64
    {"key": "a", "value": 1, "timestamp": 1, "step": 1.5},
    {"key": 3, "value": 1, "timestamp": 1},
    {"value": 1, "timestamp": 1},
])
def test_anything_unusual_takes_the_checked_path(item) -> None:
    assert _runs._metric_columns_fast([item]) is None


def test_the_checked_path_still_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as e:
        metric_columns([{"key": "a", "value": 1, "timestamp": 1},
                        {"key": "b", "value": True, "timestamp": 1}])
    assert e.value.details["field"] == "metrics[1].value"
    keys, _, _, _, values = metric_columns([{"key": "a", "value": "NaN", "timestamp": 1}])
    assert keys == ["a"] and math.isnan(values[0])
