from __future__ import annotations

import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import decode_metrics, encode_metrics
from metricflow.errors import InvalidArgument


def _cols(n=5, keys=("a", "b")):
    m = pb.MetricColumns()
    encode_metrics(m, list(keys), np.arange(n) % len(keys), np.arange(n), np.full(n, 1000),
                   np.linspace(0, 1, n))
    return m


def test_roundtrip_is_columnar_and_exact():
    m = _cols(7)
    d = decode_metrics("r" * 32, pb.MetricColumns.FromString(m.SerializeToString()))
    assert d.n == 7
    assert d.keys == ("a", "b")
    assert d.key_index.tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert d.steps.tolist() == list(range(7))
    assert np.array_equal(d.values, np.linspace(0, 1, 7))


def test_nan_and_inf_survive():
    m = pb.MetricColumns()
    vals = np.array([np.nan, np.inf, -np.inf, 1.5])
    encode_metrics(m, ["x"], np.zeros(4), np.arange(4), np.zeros(4), vals)
    d = decode_metrics("r", m)
    assert np.isnan(d.values[0]) and d.values[1] == np.inf and d.values[2] == -np.inf


@pytest.mark.parametrize("mutate, field", [
    (lambda m: setattr(m, "values", m.values[:-8]), "metrics.key_index"),
    (lambda m: setattr(m, "steps", m.steps[:-3]), "metrics.steps"),
    (lambda m: setattr(m, "timestamps", m.timestamps + b"\0" * 8), "metrics.timestamps"),
    (lambda m: setattr(m, "key_index", np.array([0, 1, 2, 0, 1], "<i4").tobytes()),
     "metrics.key_index"),
    (lambda m: setattr(m, "key_index", np.array([0, -1, 0, 0, 1], "<i4").tobytes()),
     "metrics.key_index"),
    (lambda m: m.keys.append("a"), "metrics.keys"),
    (lambda m: m.keys.__setitem__(0, "../up"), "metrics.keys"),
    (lambda m: m.keys.__setitem__(0, "bad\x00key"), "metrics.keys"),
])
def test_defective_batches_are_rejected_whole(mutate, field):
    m = _cols()
    mutate(m)
    with pytest.raises(InvalidArgument) as e:
        decode_metrics("r", m)
    assert e.value.details["field"] == field


def test_point_limit_names_field_and_limit():
    from metricflow._validation import Limits

    with pytest.raises(InvalidArgument) as e:
        decode_metrics("r", _cols(10), Limits(max_points_per_batch=5))
    assert e.value.details == {"field": "metrics.values", "limit": 5, "received": 10}
