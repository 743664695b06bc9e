"""Resume (last write wins per key and step) and fork (lineage pointer) reads on chDB,
checked against reference runs built by copying the points they should show."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow.entities import DecodedMetrics, RunInfo
from metricflow.entities.pb import run_info_to_pb
from metricflow.ingest._applier import LogApplier
from metricflow.query._core import QueryCore
from metricflow.store import build_insert
from metricflow.store._metric_store import MetricStore


@pytest.fixture(scope="module")
def store(chdb_dsn: str):
    s = MetricStore(chdb_dsn, f"rf_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    yield s
    s.client.command(f"DROP DATABASE IF EXISTS {s.db}")


@pytest.fixture(scope="module")
def core(store):
    return QueryCore(store, None)


def create(store: MetricStore, fork_from: str | None = None, fork_step: int | None = None
           ) -> str:
    rid = uuid.uuid4().hex
    info = RunInfo(rid, "0", forked_from=fork_from, fork_step=fork_step)
    rec = pb.LogRecord(logged_at_ns=time.time_ns())
    run_info_to_pb(info, rec.run_create)
    assert LogApplier(store).apply([], [rec]) == [None]
    return rid


def resume(store: MetricStore, rid: str) -> None:
    rec = pb.LogRecord(run_update=pb.UpdateRunRequest(run_id=rid, resume=True))
    assert LogApplier(store).apply([], [rec]) == [None]


def log(store: MetricStore, rid: str, key: str, steps, values, ts) -> None:
    steps = np.asarray(steps, np.int64)
    store.insert_metrics(build_insert([DecodedMetrics(
        rid, (key,), np.zeros(len(steps), np.int32), steps,
        np.broadcast_to(np.asarray(ts, np.int64), steps.shape).copy(),
        np.asarray(values, np.float64))]))


def history(core: QueryCore, rid: str, key: str, page: int = 0):
    out, token = [], ""
    while True:
        s, t, v, token = core.history_page(rid, key, page, token)
        out.append(np.stack([s, t, v.astype(np.float64)]))
        if not token:
            break
    return np.concatenate(out, axis=1)


def test_resume_last_write_wins(store, core) -> None:
    rid = create(store)
    log(store, rid, "loss", range(0, 1000), np.arange(1000) * 1.0, 1000)
    resume(store, rid)
    assert store.get_run_info(rid).resume_count == 1
    assert store.get_run_info(rid).status == "RUNNING"
    # restart from the step-800 checkpoint: steps 800..1199 again, other values
    log(store, rid, "loss", range(800, 1200), -np.arange(800, 1200) * 1.0, 2000)
    h = history(core, rid, "loss", page=300)
    assert list(h[0]) == list(range(1200))  # each step once, across pages
    assert (h[2][:800] == np.arange(800)).all()
    assert (h[2][800:] == -np.arange(800, 1200)).all()
    s = store.get_run(rid).metrics["loss"]
    assert (s.last_value, s.last_step, s.count) == (-1199.0, 1199, 1200)
    assert s.min_value == -1199.0 and s.max_value == 799.0  # 800..999 were replaced
    cmp = core.compare([rid], ["loss"], [])
    assert cmp.metrics["loss"]["max"][0] == 799.0
    runs, _ = core.search_runs([], f"attributes.run_id = '{rid}'", [], 10, "", "all")
    found = runs[0].metrics["loss"]  # a search page loads the deduplicated summary
    assert (found.min_value, found.max_value, found.last_value) == (-1199.0, 799.0, -1199.0)
    for n in (10, 3):  # rollup path and raw path
        ds = core.downsample([rid], "loss", n)[0]
        assert int(ds.count.sum()) == 1200
        assert ds.max.max() == 799.0


def reference(store: MetricStore, segments: list[tuple[str, int, int]], key: str) -> str:
    """A plain run holding copies of the given (run, lo, hi) step ranges' points."""
    ref = create(store)
    for src, lo, hi in segments:
        s, t, v = store.metric_history(src, key)
        keep = (s >= lo) & (s <= hi)
        log(store, ref, key, s[keep], v[keep], t[keep])
    return ref


def test_fork_chain_matches_copied_reference(store, core) -> None:
    rng = np.random.default_rng(3)
    root = create(store)
    log(store, root, "acc", range(0, 20_000), rng.normal(size=20_000), 10)
    a = create(store, root, 12_345)
    log(store, a, "acc", range(12_346, 30_000), rng.normal(size=30_000 - 12_346), 20)
    b = create(store, a, 25_000)
    log(store, b, "acc", range(25_001, 26_000), rng.normal(size=999), 30)
    c = create(store, b, 5_000)  # forks below the grandparent's fork step
    log(store, c, "acc", range(5_001, 5_100), rng.normal(size=99), 40)
    refs = {
        a: reference(store, [(root, 0, 12_345), (a, 12_346, 10**9)], "acc"),
        b: reference(store, [(root, 0, 12_345), (a, 12_346, 25_000), (b, 25_001, 10**9)],
                     "acc"),
        c: reference(store, [(root, 0, 5_000), (c, 5_001, 10**9)], "acc"),
    }
    for run, ref in refs.items():
        got, want = history(core, run, "acc", page=7_000), history(core, ref, "acc")
        np.testing.assert_array_equal(got, want)
        gs, ws = store.get_run(run).metrics["acc"], store.get_run(ref).metrics["acc"]
        assert (gs.last_value, gs.last_step, gs.min_value, gs.max_value, gs.count) == (
            ws.last_value, ws.last_step, ws.min_value, ws.max_value, ws.count)
        for n, lo, hi in ((50, None, None), (7, 1000, 26_000), (3, None, None),
                          (400, 5, 25_500)):
            got_d = core.downsample([run], "acc", n, lo, hi)[0]
            want_d = core.downsample([ref], "acc", n, lo, hi)[0]
            for col in ("bucket", "count", "step_first", "step_last", "min", "max", "last",
                        "nan_count"):
                np.testing.assert_array_equal(getattr(got_d, col), getattr(want_d, col))
            np.testing.assert_allclose(got_d.avg, want_d.avg, rtol=1e-9)
            assert got_d.first_point == want_d.first_point
            assert got_d.last_point == want_d.last_point
    info = store.get_run_info(b)
    assert (info.forked_from, info.fork_step) == (a, 25_000)


def test_fork_tail_search_and_parent_delete(store, core) -> None:
    parent = create(store)
    log(store, parent, "loss", range(0, 100), np.arange(100) * 1.0, 5)
    fork = create(store, parent, 49)
    # before the fork logs anything, its metrics are the parent's up to step 49
    s = store.get_run(fork).metrics["loss"]
    assert (s.last_step, s.last_value, s.min_value, s.max_value, s.count) == (49, 49.0, 0.0,
                                                                              49.0, 50)
    page = core.search_run_ids([], "metrics.loss = 49", [], 100, "", "all")
    assert fork in page.run_ids and parent not in page.run_ids
    log(store, fork, "loss", range(50, 60), -np.arange(50, 60) * 1.0, 6)
    tailer, _ = core.tailer([fork], ["loss"], True, 0)
    chunks = list(tailer.poll())
    assert [int(x) for c in chunks for x in c.steps] == list(range(60))
    assert chunks[-1].values[-1] == -59.0
    log(store, fork, "loss", [60], [1.5], 7)
    assert [(int(c.steps[0]), float(c.values[0])) for c in tailer.poll()] == [(60, 1.5)]
    # deleting the parent is a soft delete: its points stay, the fork reads on
    upd = pb.LogRecord(run_update=pb.UpdateRunRequest(run_id=parent, lifecycle_stage="deleted"))
    assert LogApplier(store).apply([], [upd]) == [None]
    assert store.get_run_info(parent).lifecycle_stage == "deleted"
    assert len(history(core, fork, "loss")[0]) == 61
    assert store.get_run(fork).metrics["loss"].count == 61
    cmp = core.compare([fork], ["loss"], [])
    assert (cmp.metrics["loss"]["min"][0], cmp.metrics["loss"]["max"][0]) == (-59.0, 49.0)


def test_resumed_run_downsampled_from_rollup_matches_reference(store, core) -> None:
    rid = create(store)
    steps = np.arange(20_000)
    log(store, rid, "loss", steps, np.sin(steps / 50.0), 1000)
    resume(store, rid)
    again = np.arange(12_345, 20_000)  # from a checkpoint mid-block, over 30 blocks
    log(store, rid, "loss", again, np.cos(again / 7.0) * 3, 2000)
    want = np.where(steps < 12_345, np.sin(steps / 50.0), np.cos(steps / 7.0) * 3)
    ref = create(store)
    log(store, ref, "loss", steps, want, np.where(steps < 12_345, 1000, 2000))
    fork = create(store, rid, 15_000)  # a fork of a resumed run reads the last writes
    ref_fork = create(store)
    log(store, ref_fork, "loss", steps[:15_001], want[:15_001],
        np.where(steps[:15_001] < 12_345, 1000, 2000))
    for run, want_run in ((rid, ref), (fork, ref_fork)):
        for n, lo, hi in ((4, None, None), (9, 100, 19_000), (2, 12_000, 16_000)):
            got_d = core.downsample([run], "loss", n, lo, hi)[0]
            want_d = core.downsample([want_run], "loss", n, lo, hi)[0]
            for col in ("bucket", "count", "step_first", "step_last", "min", "max", "last"):
                np.testing.assert_array_equal(getattr(got_d, col), getattr(want_d, col))
            np.testing.assert_allclose(got_d.avg, want_d.avg, rtol=1e-9)
        gs, ws = store.get_run(run).metrics["loss"], store.get_run(want_run).metrics["loss"]
        assert (gs.last_value, gs.min_value, gs.max_value, gs.count) == (
            ws.last_value, ws.min_value, ws.max_value, ws.count)


def test_parent_resumed_after_the_fork_is_not_counted_twice(store, core) -> None:
    steps = np.arange(10_000)
    parent = create(store)
    log(store, parent, "loss", steps, np.sin(steps / 9.0), 100)
    fork = create(store, parent, 6_000)  # mid-block: the fork keeps a row of block 23
    own = np.arange(6_001, 10_000)
    log(store, fork, "loss", own, own * 0.5, 300)
    resume(store, parent)  # now the parent's piece is read deduplicated, cut from points
    again = np.arange(7_000, 8_000)
    log(store, parent, "loss", again, again * 0.0, 200)
    ref = create(store)
    log(store, ref, "loss", steps[:6_001], np.sin(steps[:6_001] / 9.0), 100)
    log(store, ref, "loss", own, own * 0.5, 300)
    for n, lo, hi in ((4, None, None), (3, 5_000, 9_000)):
        got_d, want_d = core.downsample([fork], "loss", n, lo, hi)[0], core.downsample(
            [ref], "loss", n, lo, hi)[0]
        for col in ("bucket", "count", "step_first", "step_last", "min", "max", "last"):
            np.testing.assert_array_equal(getattr(got_d, col), getattr(want_d, col))
        np.testing.assert_allclose(got_d.avg, want_d.avg, rtol=1e-9)


def test_fork_key_the_parent_never_logged(store, core) -> None:
    parent = create(store)
    log(store, parent, "a", range(0, 3000), np.ones(3000), 1)
    fork = create(store, parent, 999)
    log(store, fork, "b", range(1000, 6000), np.arange(1000, 6000) * 1.0, 2)
    ds = core.downsample([fork], "b", 4)[0]  # the range is the fork's own steps only
    assert (ds.step_lo, ds.step_hi, int(ds.count.sum())) == (1000, 5999, 5000)
    assert core.downsample([fork], "a", 2)[0].step_hi == 999  # a: the parent's, to 999


def test_parent_and_fork_in_one_request_share_points(store, core) -> None:
    parent = create(store)
    log(store, parent, "x", range(0, 8000), np.arange(8000) * 1.0, 1)
    fork = create(store, parent, 3000)
    log(store, fork, "x", range(3001, 5000), -np.arange(3001, 5000) * 1.0, 2)
    for n in (50, 3):  # raw (one scan: each parent row also goes to the fork) and rollup
        both = {s.run_id: s for s in core.downsample([parent, fork], "x", n, 0, 7999)}
        for run in (parent, fork):
            alone = core.downsample([run], "x", n, 0, 7999)[0]
            for col in ("bucket", "count", "min", "max", "last", "step_first", "step_last"):
                np.testing.assert_array_equal(getattr(both[run], col), getattr(alone, col))
        assert int(both[fork].count.sum()) == 5000 and int(both[parent].count.sum()) == 8000
    tail, _ = core.tailer([parent, fork], ["x"], True, 0)
    got = {c.run_id: len(c.steps) for c in tail.poll()}
    assert got == {parent: 8000, fork: 5000}
