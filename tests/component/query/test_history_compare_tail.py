"""Downsampling vs numpy, bulk history, compare, group-by and live tail."""

from __future__ import annotations

import math
import threading
import time
import uuid

import numpy as np
import pytest
from querydata import insert_points

from metricflow.entities import RunInfo
from metricflow.errors import InvalidArgument
from metricflow.query._core import QueryCore


@pytest.fixture(scope="module")
def core(store):
    return QueryCore(store, None)


def ref_buckets(steps, ts, values, lo, hi, n):
    """numpy reference of one series' buckets (documented NaN/Inf semantics)."""
    keep = (steps >= lo) & (steps <= hi)
    steps, ts, values = steps[keep], ts[keep], values[keep]
    blocks = hi // 256 - lo // 256 + 1
    if hi - lo + 1 >= 4 * n * 256 or n == blocks:  # whole 256-step blocks (docs/query.md)
        b = ((steps // 256) - lo // 256) * n // (hi // 256 - lo // 256 + 1)
    else:
        b = ((steps - lo) * n) // (hi - lo + 1)
    out = {}
    for k in np.unique(b):
        m = b == k
        v, s, t = values[m], steps[m], ts[m]
        fin = v[np.isfinite(v)]
        nonnan = v[~np.isnan(v)]
        last = np.lexsort((t, s))[-1]
        out[int(k)] = dict(count=int(m.sum()), min=nonnan.min() if len(nonnan) else math.nan,
                           max=nonnan.max() if len(nonnan) else math.nan,
                           avg=fin.mean() if len(fin) else math.nan, last=v[last],
                           nan_count=int(np.isnan(v).sum()), inf_count=int(np.isinf(v).sum()),
                           step_first=int(s.min()), step_last=int(s.max()))
    return out


def new_run(store, exp="0") -> str:
    rid = uuid.uuid4().hex
    store.insert_runs([RunInfo(rid, exp)], [1])
    return rid


@pytest.mark.parametrize("n,lo,hi", [(10, None, None), (7, 100, 4000), (1, None, None),
                                     (5000, None, None), (3, 100, 4000), (4, None, None),
                                     (2, -300, 1800), (16, 100, 4000)])  # 16: one block each
def test_downsample_matches_numpy(store, core, n, lo, hi) -> None:
    rng = np.random.default_rng(n)
    rid = new_run(store)
    steps = np.sort(rng.choice(5000, 3000, replace=False)).astype(np.int64)
    values = rng.normal(size=len(steps))
    values[rng.choice(len(values), 60, replace=False)] = np.nan
    values[rng.choice(len(values), 20, replace=False)] = np.inf
    values[rng.choice(len(values), 20, replace=False)] = -np.inf
    values[:40] = np.nan  # a bucket of only NaN when n is large
    ts = steps * 7
    insert_points(store, rid, "loss", steps, ts, values)
    insert_points(store, rid, "loss", steps[:500], ts[:500], values[:500])  # replay
    # two points at one step: the later timestamp is "last"
    insert_points(store, rid, "loss", steps[-1:], ts[-1:] + 1, np.array([42.0]))
    steps2, ts2 = np.r_[steps, steps[-1]], np.r_[ts, ts[-1] + 1]
    values2 = np.r_[values, 42.0]
    (s,) = core.downsample([rid], "loss", n, lo, hi)
    lo_, hi_ = (lo if lo is not None else steps.min()), (hi if hi is not None else steps.max())
    assert (s.step_lo, s.step_hi) == (lo_, hi_)
    ref = ref_buckets(steps2, ts2, values2, lo_, hi_, n)
    assert s.bucket.tolist() == sorted(ref)
    for i, k in enumerate(s.bucket.tolist()):
        for col in ("count", "nan_count", "inf_count", "step_first", "step_last"):
            assert getattr(s, col)[i] == ref[k][col], (k, col)
        for col in ("min", "max", "avg", "last"):
            np.testing.assert_allclose(getattr(s, col)[i], ref[k][col], rtol=1e-12,
                                       err_msg=f"{k} {col}")
    keep = (steps2 >= lo_) & (steps2 <= hi_)
    order = np.lexsort((values2[keep], ts2[keep], steps2[keep]))
    fs, ft, fv = steps2[keep][order[0]], ts2[keep][order[0]], values2[keep][order[0]]
    assert s.first_point[:2] == (fs, ft)
    ls, lt, lv = steps2[keep][order[-1]], ts2[keep][order[-1]], values2[keep][order[-1]]
    assert s.last_point[:2] == (ls, lt)
    np.testing.assert_equal(s.last_point[2], lv)
    if hi is None:
        assert s.last_point == (steps[-1], ts[-1] + 1, 42.0)
    assert math.isnan(fv) == math.isnan(s.first_point[2])
    # without the end points (the compare overlay): the same buckets, no lookups
    (bare,) = core.downsample([rid], "loss", n, lo, hi, ends=False)
    assert bare.first_point is None and bare.last_point is None
    for col in ("bucket", "count", "step_first", "step_last", "min", "max", "avg", "last"):
        np.testing.assert_array_equal(getattr(bare, col), getattr(s, col), err_msg=col)


def test_bulk_downsample_shares_range(store, core) -> None:
    ids = [new_run(store) for _ in range(5)]
    for i, r in enumerate(ids[:4]):
        st = np.arange(i * 10, 100 + i * 10)
        insert_points(store, r, "acc", st, st, st * 1.0)
    series = core.downsample(ids, "acc", 10)
    assert [s.run_id for s in series] == sorted(ids[:4])
    assert all((s.step_lo, s.step_hi) == (0, 129) for s in series)
    assert sum(int(s.count.sum()) for s in series) == 400


def test_downsample_limits(core) -> None:
    with pytest.raises(InvalidArgument, match="1 to 1000 runs"):
        core.downsample([uuid.uuid4().hex for _ in range(1001)], "acc", 10)
    with pytest.raises(InvalidArgument, match="buckets"):
        core.downsample([uuid.uuid4().hex], "acc", 10**6)
    assert core.downsample([uuid.uuid4().hex], "acc", 10) == []


def test_compare_and_group_by(store, core) -> None:
    ids = [new_run(store, "cmp") for _ in range(12)]
    lrs = ["0.1", "0.01", "0.001"]
    finals = {}
    for i, r in enumerate(ids):
        store.insert_params([(r, "lr", lrs[i % 3])], 5)
        v = float(i) if i != 4 else math.nan
        insert_points(store, r, "val_loss", [0, 1], [0, 1], [100.0, v])
        finals[r] = v
    t = core.compare(ids, ["val_loss", "nope"], [])
    np.testing.assert_array_equal(t.metrics["val_loss"]["last"], [finals[r] for r in ids])
    assert not t.metrics["nope"]["present"].any()
    assert t.params["lr"][0] == [lrs[i % 3] for i in range(12)]
    groups = {g.param_value: g for g in core.group_by_param(["cmp"], "", "active", "lr",
                                                             "val_loss")}
    for j, lr in enumerate(lrs):
        vals = np.array([finals[r] for i, r in enumerate(ids) if i % 3 == j])
        fin = vals[np.isfinite(vals)]
        g = groups[lr]
        assert g.run_count == len(vals) and g.finite_count == len(fin)
        assert g.mean == pytest.approx(fin.mean())
        assert g.std == pytest.approx(fin.std(ddof=1))
    only = core.group_by_param(["cmp"], "metrics.val_loss > 5", "active", "lr", "val_loss")
    assert sum(g.run_count for g in only) == sum(1 for v in finals.values() if v > 5)


def test_live_tail_delivers_within_one_second(store, core) -> None:
    rid = new_run(store)
    insert_points(store, rid, "acc", [0], [0], [0.0])
    tailer, interval = core.tailer([rid], ["acc"], False, 100)
    got: list[tuple[float, np.ndarray]] = []
    stop = threading.Event()
    polled = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for c in tailer.poll():
                got.append((time.monotonic(), c.steps.copy()))
            polled.set()
            time.sleep(interval)

    th = threading.Thread(target=loop)
    th.start()
    try:
        assert polled.wait(10), "the tailer never polled"
        latencies = []
        for step in range(1, 6):
            t0 = time.monotonic()
            insert_points(store, rid, "acc", [step], [step], [step * 1.0])
            committed = time.monotonic()
            while not any(step in s for _, s in got) and time.monotonic() - t0 < 5:
                time.sleep(0.01)
            seen = next(t for t, s in got if step in s)
            latencies.append(seen - committed)
    finally:
        stop.set()
        th.join()
    steps = np.concatenate([s for _, s in got]).tolist()
    assert steps == [1, 2, 3, 4, 5]  # no old point, no repeats
    assert max(latencies) < 1.0, latencies
