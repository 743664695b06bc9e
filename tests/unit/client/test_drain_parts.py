"""drain_iter builds each part's steps and timestamps from the rows it covers only:
the points come out exactly as logged whatever the part size (rows cut across parts)."""

from __future__ import annotations

import numpy as np
import pytest

from metricflow.client._accumulator import Accumulator


@pytest.mark.parametrize("seed", range(20))
def test_parts_hold_exactly_the_logged_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    acc = Accumulator(max_bytes=1 << 30, batch_points=10**9, block_timeout_s=1,
                      max_batch_points=int(rng.integers(1, 20)))
    logged = []
    for row in range(int(rng.integers(1, 40))):
        m = {f"k{j}": float(rng.random()) for j in range(int(rng.integers(1, 7)))}
        acc.append("r" * 32, m, row * 3, 1000 + row)
        logged += [(k, row * 3, 1000 + row, v) for k, v in m.items()]
    got, nbytes = [], 0
    for b in acc.drain_iter():
        assert len(b.values) <= acc.max_batch_points
        nbytes += b.nbytes
        got += [(b.keys[i], int(s), int(t), float(v))
                for i, s, t, v in zip(b.key_index, b.steps, b.timestamps, b.values)]
    assert sorted(got) == sorted(logged)
    assert nbytes == acc.used_bytes  # every counted byte is carried by some part
