"""Rollup-based downsampling equals the raw computation, replays and all."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from metricflow._wire import DecodedMetrics
from metricflow.entities import RunInfo
from metricflow.query import _rollup_read as rr
from metricflow.query._core import QueryCore
from metricflow.query._history import downsample, downsample_raw
from metricflow.store._arrow import build_insert
from metricflow.store._metric_store import MetricStore
from metricflow.store._schema import ROLLUP_SHIFT

BLOCK = 1 << ROLLUP_SHIFT


def batch(run: str, steps, ts, vals, key: str = "loss") -> DecodedMetrics:
    steps = np.asarray(steps, np.int64)
    return DecodedMetrics(run, (key,), np.zeros(len(steps), np.int32), steps,
                          np.asarray(ts, np.int64), np.asarray(vals, np.float64))


def insert(store, *batches: DecodedMetrics) -> None:
    store.insert_metrics(build_insert(list(batches)))


def new_run(store) -> str:
    rid = uuid.uuid4().hex
    store.insert_runs([RunInfo(rid, "r")], [1])
    return rid


def series(rng, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vals = rng.normal(size=len(steps))
    for frac, v in ((0.01, np.nan), (0.003, np.inf), (0.003, -np.inf)):
        vals[rng.random(len(vals)) < frac] = v
    return steps * 3 + 1, vals


@pytest.fixture(scope="module")
def data(store):
    """Runs whose points arrive in every way the writer can deliver them."""
    rng = np.random.default_rng(11)
    runs = {}
    # dense, in client batches of 5,000 steps; NaN/Inf; one all-NaN stretch
    r = new_run(store)
    steps = np.arange(0, 60_000, dtype=np.int64)
    ts, vals = series(rng, steps)
    vals[20_000:20_000 + 3 * BLOCK] = np.nan
    for a in range(0, len(steps), 5000):
        insert(store, batch(r, steps[a:a + 5000], ts[a:a + 5000], vals[a:a + 5000]))
    runs["dense"] = r
    # sparse steps (gaps larger than a block), several points per step, negative steps
    r = new_run(store)
    steps = np.sort(rng.choice(np.arange(-30_000, 90_000), 8000, replace=False))
    steps = np.repeat(steps, rng.integers(1, 3, len(steps)))
    ts = np.arange(len(steps), dtype=np.int64)
    _, vals = series(rng, steps)
    insert(store, batch(r, steps, ts, vals))
    runs["sparse"] = r
    # replays: the same record again alone (collapses), and again in other company
    # (different segments: overlapping rows), plus duplicate points inside a batch
    r, other = new_run(store), new_run(store)
    steps = np.arange(0, 40_000, dtype=np.int64)
    ts, vals = series(rng, steps)
    b1 = batch(r, steps[:25_000], ts[:25_000], vals[:25_000])
    b2 = batch(r, steps[25_000:30_000], ts[25_000:30_000], vals[25_000:30_000])
    bo = batch(other, steps[:100], ts[:100], vals[:100])
    insert(store, b1, bo)
    insert(store, b2)
    insert(store, b1, bo)                        # replayed as it was
    half = batch(r, steps[10_000:10_700], ts[10_000:10_700], vals[10_000:10_700])
    insert(store, half)                          # part of b1 in other company
    rest = slice(30_000, 40_000)  # every point twice inside one batch
    insert(store, batch(r, np.r_[steps[rest], steps[rest]], np.r_[ts[rest], ts[rest]],
                        np.r_[vals[rest], vals[rest]]))
    # two points at one (step, timestamp) with different values, across batches
    insert(store, batch(r, [39_990], [ts[39_990]], [1e9]))
    runs["replayed"] = r
    # interleaved batches of one run in one insert (segments alternate in a block)
    r = new_run(store)
    steps = np.arange(0, 30_000, dtype=np.int64)
    ts, vals = series(rng, steps)
    insert(store, batch(r, steps[::2], ts[::2], vals[::2]),
           batch(r, steps[1::2], ts[1::2], vals[1::2]))
    runs["interleaved"] = r
    return runs


def assert_same(got, want) -> None:
    assert [s.run_id for s in got] == [s.run_id for s in want]
    for g, w in zip(got, want):
        assert (g.step_lo, g.step_hi) == (w.step_lo, w.step_hi)
        for col in ("bucket", "count", "step_first", "step_last", "nan_count", "inf_count"):
            np.testing.assert_array_equal(getattr(g, col), getattr(w, col), err_msg=col)
        for col in ("min", "max", "last"):
            np.testing.assert_array_equal(getattr(g, col), getattr(w, col), err_msg=col)
        # sums are added in another order: equal up to rounding
        np.testing.assert_allclose(g.avg, w.avg, rtol=1e-9, atol=1e-12, err_msg="avg")
        assert g.first_point == w.first_point or np.isnan(g.first_point[2])
        assert g.last_point == w.last_point or np.isnan(g.last_point[2])


CASES = [  # (run names, buckets, lo, hi)
    (["dense"], 10, None, None),
    (["dense"], 7, 1234, 55_555),
    (["dense"], 1, None, None),
    (["dense"], 235, None, None),  # as many buckets as blocks (60,000 steps): one block each
    (["dense"], 214, 1234, 55_555),  # the same, with both end blocks cut
    (["sparse"], 20, None, None),
    (["sparse"], 9, -10_001, 70_003),
    (["replayed"], 12, None, None),
    (["replayed"], 5, 9_999, 39_999),
    (["interleaved"], 6, None, None),
    (["dense", "sparse", "replayed", "interleaved"], 8, None, None),
]


@pytest.mark.parametrize("names,n,lo,hi", CASES)
def test_rollup_equals_raw(store, data, names, n, lo, hi, monkeypatch) -> None:
    ids = [data[k] for k in names]
    used = []
    real = rr.rollup_partials

    def spy(*a, **kw):
        out = real(*a, **kw)
        used.append(out)
        return out

    monkeypatch.setattr(rr, "rollup_partials", spy)
    got = downsample(store.client, store.db, ids, "loss", n, lo, hi)
    assert used and used[0] is not None, "the rollup path was not taken"
    lo_ = got[0].step_lo
    hi_ = got[0].step_hi
    want = downsample_raw(store.client, store.db, sorted(ids), "loss", n, lo_, hi_)
    assert got, "no series"
    assert_same(got, want)


def test_replays_in_other_company_are_read_raw_and_counted_once(store, data) -> None:
    rid = data["replayed"]
    n, lo, hi = 4, 0, 39_999
    parts, overlapping = rr.rollup_partials(store.client, store.db, [rid], "loss", n, lo, hi)
    blocks = {b for _, b in overlapping}
    assert (10_000 >> ROLLUP_SHIFT) in blocks and (30_000 >> ROLLUP_SHIFT) not in blocks
    (s,) = downsample(store.client, store.db, [rid], "loss", n, lo, hi)
    # every point once; the point tied on (step, timestamp) is a point of its own
    assert int(s.count.sum()) == store.count_points([rid])[0] == 40_001


def test_rollup_rows_of_a_replayed_record_collapse(store) -> None:
    rid = new_run(store)
    steps = np.arange(3 * BLOCK)
    b = batch(rid, steps, steps, steps * 0.5)
    insert(store, b)
    insert(store, b)
    rows = store.client.query(
        f"SELECT block, count(), uniqExact(ident) FROM {store.db}.metric_rollup "
        "WHERE run_id = {r:String} GROUP BY block ORDER BY block", parameters={"r": rid}
    ).result_rows
    assert [(b_, u) for b_, _, u in rows] == [(0, 1), (1, 1), (2, 1)]
    parts, overlapping = rr.rollup_partials(store.client, store.db, [rid], "loss", 1, 0,
                                            3 * BLOCK - 1)
    assert overlapping == [] and int(parts.count.sum()) == 3 * BLOCK


def test_one_bucket_per_block_at_any_width(store, data) -> None:
    assert rr.aligned(0, 59_999, 235) and not rr.aligned(0, 59_999, 234)
    (s,) = downsample(store.client, store.db, [data["dense"]], "loss", 235)
    np.testing.assert_array_equal(s.bucket, np.arange(235))
    np.testing.assert_array_equal(s.step_first // BLOCK, s.bucket)
    np.testing.assert_array_equal(s.step_last // BLOCK, s.bucket)
    assert int(s.count.sum()) == 60_000


def test_narrow_buckets_use_the_raw_query(store, data, monkeypatch) -> None:
    called = []
    monkeypatch.setattr(rr, "rollup_partials", lambda *a: called.append(a))
    (s,) = downsample(store.client, store.db, [data["dense"]], "loss", 1000)
    assert not called and int(s.count.sum()) == 60_000


def test_backfill_for_a_data_dir_that_predates_the_rollup(store, data) -> None:
    want = downsample(store.client, store.db, [data["dense"], data["replayed"]], "loss", 6)
    db = store.db
    for t in ("metric_rollup", "search_runs_mv", "search_runs"):
        store.client.command(f"DROP TABLE {db}.{t}")
    store.ensure_schema()  # recreates both and backfills them from the base tables
    n_rows = store.client.query(f"SELECT count() FROM {db}.metric_rollup WHERE ident = 0"
                                ).result_rows[0][0]
    assert n_rows > 0
    got = downsample(store.client, store.db, [data["dense"], data["replayed"]], "loss", 6)
    assert_same(got, want)
    core = QueryCore(store, None)
    page = core.search_run_ids([], "", [], 1000, "", "all")
    assert set(data.values()) <= set(page.run_ids)


def test_points_tied_on_step_and_timestamp_last_is_the_largest_value(store) -> None:
    rid = new_run(store)
    steps = np.arange(0, 8 * BLOCK, dtype=np.int64)
    insert(store, batch(rid, steps, steps, np.zeros(len(steps))))
    # ties at the end of bucket 0 and bucket 1, in other records: 7 beats 2; NaN beats 9
    insert(store, batch(rid, [4 * BLOCK - 1, 4 * BLOCK - 1], [4 * BLOCK - 1] * 2, [7.0, 2.0]))
    insert(store, batch(rid, [8 * BLOCK - 1, 8 * BLOCK - 1], [8 * BLOCK - 1] * 2,
                        [9.0, np.nan]))
    lo, hi = 0, 8 * BLOCK - 1
    for fn in (downsample, downsample_raw):
        (s,) = fn(store.client, store.db, [rid], "loss", 2, lo, hi)
        assert s.last[0] == 7.0 and np.isnan(s.last[1]), fn.__name__
        assert s.count.tolist() == [4 * BLOCK + 2, 4 * BLOCK + 2]


def test_default_range_of_many_runs_is_the_union_of_their_steps(store) -> None:
    ids = [new_run(store) for _ in range(11)]
    for i, r in enumerate(ids):
        st = np.arange(-7 * i, 1000 + 13 * i, dtype=np.int64)
        insert(store, batch(r, st, st, st * 1.0))
    series = downsample(store.client, store.db, ids, "loss", 3)
    want = (-7 * (len(ids) - 1), 1000 + 13 * (len(ids) - 1) - 1)
    assert {(s.step_lo, s.step_hi) for s in series} == {want}
    assert sum(int(s.count.sum()) for s in series) == sum(1000 + 20 * i
                                                          for i in range(len(ids)))


def test_raw_blocks_of_one_run_do_not_pull_in_the_same_blocks_of_another(store) -> None:
    a, b = new_run(store), new_run(store)
    steps = np.arange(12 * BLOCK, dtype=np.int64)
    for rid, dirty in ((a, 2), (b, 5)):
        insert(store, batch(rid, steps, steps, np.sin(steps + len(rid))))
        part = slice(dirty * BLOCK + 10, dirty * BLOCK + 100)  # replayed in other company
        insert(store, batch(rid, steps[part], steps[part], np.sin(steps[part] + len(rid))),
               batch(new_run(store), steps[:5], steps[:5], steps[:5] * 1.0))
    lo, hi = 3, 12 * BLOCK - 1  # lo cuts block 0 of both runs
    assert rr.aligned(lo, hi, 2)
    parts, raw = rr.rollup_partials(store.client, store.db, sorted([a, b]), "loss", 2, lo, hi)
    ia, ib = sorted([a, b]).index(a), sorted([a, b]).index(b)
    assert sorted(raw) == sorted([(ia, 0), (ia, 2), (ib, 0), (ib, 5)])
    got = downsample(store.client, store.db, [a, b], "loss", 2, lo, hi)
    want = downsample_raw(store.client, store.db, sorted([a, b]), "loss", 2, lo, hi)
    assert_same(got, want)
    assert [int(s.count.sum()) for s in got] == [12 * BLOCK - 3] * 2


def test_packed_points_of_an_old_rollup_are_dropped(chdb_dsn) -> None:
    store = MetricStore(chdb_dsn, f"old_{uuid.uuid4().hex[:10]}")
    store.ensure_schema()
    db = store.db
    store.client.command(f"DROP TABLE {db}.metric_rollup")
    store.client.command(f"""
        CREATE TABLE {db}.metric_rollup (run_id String, key LowCardinality(String),
            block Int64, first_step Int64, first_ts Int64, ident UInt64, last_step Int64,
            last_ts Int64, count UInt64, n_finite UInt64, n_nan UInt64, sum_finite Float64,
            min_value Float64, max_value Float64, last_value Float64, offs Array(UInt8),
            vals Array(Float64))
        ENGINE = ReplacingMergeTree PRIMARY KEY (run_id, key, block)
        ORDER BY (run_id, key, block, first_step, first_ts, ident)
        SETTINGS index_granularity_bytes = 16384, min_compress_block_size = 16384,
                 max_compress_block_size = 65536""")
    rid = new_run(store)
    steps = np.arange(20 * BLOCK, dtype=np.int64)
    insert(store, batch(rid, steps, steps, steps * 0.5))  # rows without offs/vals
    store.ensure_schema()
    store.ensure_schema()  # idempotent
    cols = {r[0] for r in store.client.query(
        "SELECT name FROM system.columns WHERE database = {d:String} AND "
        "table = 'metric_rollup'", parameters={"d": db}).result_rows}
    assert not {"offs", "vals"} & cols and "sum_finite" in cols
    ddl = store.client.query("SELECT create_table_query FROM system.tables WHERE "
                             "database = {d:String} AND name = 'metric_rollup'",
                             parameters={"d": db}).result_rows[0][0]
    assert "compress_block_size" not in ddl
    (s,) = downsample(store.client, db, [rid], "loss", 4, 5, 20 * BLOCK - 1)
    assert int(s.count.sum()) == 20 * BLOCK - 5
    store.client.command(f"DROP DATABASE {db}")


@pytest.mark.parametrize("px,lo,hi", [(600, None, None), (300, 1234, 55_555),
                                      (900, 4_000, None), (200, None, 30_000),
                                      (2000, None, None)])
def test_chart_keys_read_in_one_query_equal_each_key_read_alone(store, px, lo, hi,
                                                                monkeypatch) -> None:
    """downsample_px reads several keys' rollup rows in one query (and their step ranges
    from those rows): each key's series equals downsample of that key alone, with clean,
    replayed-in-other-company, sparse and tiny keys, whole or cut ranges."""
    rng = np.random.default_rng(5)
    rid = new_run(store)
    steps = np.arange(0, 60_000, dtype=np.int64)
    ts, vals = series(rng, steps)
    for a in range(0, len(steps), 5000):
        insert(store, batch(rid, steps[a:a + 5000], ts[a:a + 5000], vals[a:a + 5000], "a"))
    b1 = batch(rid, steps[:25_000], ts[:25_000], vals[:25_000] + 1, "b")
    insert(store, b1, batch(rid, steps[:9], ts[:9], vals[:9], "d"))
    insert(store, batch(rid, steps[10_000:10_700], ts[10_000:10_700],
                        vals[10_000:10_700] + 1, "b"))  # part of b1 again, other company
    sparse = np.sort(rng.choice(np.arange(-30_000, 90_000), 6000, replace=False))
    s_ts, s_vals = series(rng, sparse)
    insert(store, batch(rid, sparse, s_ts, s_vals, "c"))
    keys = ["a", "b", "c", "d", "absent"]
    core = QueryCore(store, None)
    prefetched: list[set[str]] = []
    real = rr.read_rollup_rows

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        out = real(*a, **kw)
        prefetched.append(set(out))
        return out

    monkeypatch.setattr(rr, "read_rollup_rows", spy)
    got, counts = core.downsample_px(rid, keys, 0, px, lo, hi)
    key_steps = {"a": steps, "b": steps[:25_000], "c": sparse, "d": steps[:9]}
    blo = -(1 << 63) if lo is None else lo >> ROLLUP_SHIFT
    bhi = (1 << 63) - 1 if hi is None else hi >> ROLLUP_SHIFT
    assert prefetched == [{k for k, st in key_steps.items()  # keys with a block in range
                           if ((st >> ROLLUP_SHIFT >= blo) & (st >> ROLLUP_SHIFT <= bhi)).any()}]
    monkeypatch.setattr(rr, "read_rollup_rows", real)
    want = [s for k in keys
            for s in downsample(store.client, store.db, [rid], k, counts[k], lo, hi)]
    assert [s.key for s in got] == [s.key for s in want] and got
    for g, w in zip(got, want):
        assert_same([g], [w])


def test_chart_keys_past_the_row_limit_are_read_one_by_one(store) -> None:
    """read_rollup_rows answers None past its row limit (the summaries' estimate can be
    low): downsample_px then reads each key alone, with the same series."""
    rid = new_run(store)
    steps = np.arange(-5_000, 40_000, dtype=np.int64)  # below 0 too: not in the estimate
    for key in ("x", "y"):
        insert(store, batch(rid, steps, steps, np.sin(steps / 100.0), key))
    n_rows = store.client.query(
        f"SELECT count() FROM {store.db}.metric_rollup WHERE run_id = {{r:String}}",
        parameters={"r": rid}).result_rows[0][0]
    args = (store.client, store.db, [rid], ["x", "y"], -(1 << 63), (1 << 63) - 1)
    assert rr.read_rollup_rows(*args, limit=n_rows - 1) is None
    got = rr.read_rollup_rows(*args, limit=n_rows)
    assert got is not None and sum(t.num_rows for t in got.values()) == n_rows
    core = QueryCore(store, None)
    want, counts = core.downsample_px(rid, ["x", "y"], 0, 500)
    import metricflow.query._core as qc
    saved, real = qc._PREFETCH_ROLLUP_ROWS, rr.read_rollup_rows
    answers: list[object] = []
    qc._PREFETCH_ROLLUP_ROWS = n_rows - 1  # the estimate passes, the read does not
    rr.read_rollup_rows = lambda *a, **kw: answers.append(real(*a, **kw)) or answers[-1]
    try:
        alone, counts2 = core.downsample_px(rid, ["x", "y", "x"], 0, 500)  # a key twice
    finally:
        qc._PREFETCH_ROLLUP_ROWS, rr.read_rollup_rows = saved, real
    assert answers == [None], "the one-query read was not tried, or not refused"
    assert counts2 == counts and [s.key for s in alone] == ["x", "y"]
    assert_same(alone, want)
    assert want[0].step_lo == -5_000


def test_chart_keys_with_an_inverted_range_are_refused(store, data) -> None:
    from metricflow.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="step_max"):
        QueryCore(store, None).downsample_px(data["dense"], ["loss", "other"], 0, 500,
                                             2_000, 1_000)
