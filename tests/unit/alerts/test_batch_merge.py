"""How the evaluator joins the batches waiting for it (`_merge`)."""

from __future__ import annotations

import numpy as np

from metricflow._wire import DecodedMetrics
from metricflow.alerts._evaluator import MERGE_POINTS, _merge


def _b(run: str, n: int, first_step: int, keys: tuple[str, ...] = ("a",)) -> DecodedMetrics:
    steps = np.arange(first_step, first_step + n, dtype=np.int64)
    return DecodedMetrics(run, keys, np.zeros(n, dtype=np.int32), steps, steps,
                          steps.astype(np.float64))


def test_small_batches_are_joined_per_run_and_keys_in_order() -> None:
    bs = [_b("r1", 10, 0), _b("r2", 5, 0), _b("r1", 10, 10), _b("r1", 10, 20, ("b",))]
    out = _merge(bs)
    by = {(b.run_id, b.keys): b for b in out}
    assert len(out) == 3
    assert by[("r1", ("a",))].steps.tolist() == list(range(20))
    assert by[("r2", ("a",))] is bs[1] and by[("r1", ("b",))] is bs[3]


def test_large_batches_stay_whole_and_the_order_holds() -> None:
    big = MERGE_POINTS
    bs = [_b("r", 100, 0), _b("r", 100, 100), _b("r", big, 200), _b("r", 100, 200 + big),
          _b("r", 100, 300 + big)]
    out = _merge(bs)
    assert [b.n for b in out] == [200, big, 200]
    assert out[1] is bs[2]  # not copied: it keeps the client's layout
    steps = np.concatenate([b.steps for b in out])
    assert steps.tolist() == list(range(400 + big))
