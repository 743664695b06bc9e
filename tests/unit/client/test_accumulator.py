from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from metricflow.client._accumulator import POINT_BYTES, ROW_BYTES, Accumulator, BufferFull
from metricflow.errors import InvalidArgument


def test_drain_expands_rows_and_groups_points_by_key_in_logging_order():
    acc = Accumulator(1 << 20, 1000, 1.0)
    acc.append("r1", {"b": 2.0, "a": 1.0}, 0, 100)
    acc.append("r1", {"a": 3.0, "b": 4.0}, 1, 200)
    acc.append("r1", {"c": 5.0}, 2, 300)
    acc.append("r1", {"b": 6.0}, 1, 250)  # the same step again, logged later
    acc.append("r2", {"a": float("nan")}, 7, 400)
    batches = {b.run_id: b for b in acc.drain()}
    b = batches["r1"]
    # keys in first-logged order (b, a, c); each key's points as they were logged
    assert [b.keys[i] for i in b.key_index] == ["b", "b", "b", "a", "a", "c"]
    assert b.steps.tolist() == [0, 1, 1, 0, 1, 2]
    assert b.timestamps.tolist() == [100, 200, 250, 100, 200, 300]
    assert b.values.tolist() == [2.0, 4.0, 6.0, 1.0, 3.0, 5.0]
    assert math.isnan(batches["r2"].values[0])
    assert acc.drain() == []


def test_bad_value_leaves_buffer_untouched():
    acc = Accumulator(1 << 20, 1000, 1.0)
    acc.append("r", {"a": 1.0}, 0, 1)
    with pytest.raises(InvalidArgument, match="'b'"):
        acc.append("r", {"a": 2.0, "b": "oops"}, 1, 1)
    (b,) = acc.drain()
    assert b.values.tolist() == [1.0] and b.steps.tolist() == [0]


def test_bad_key_rejected_before_buffering():
    acc = Accumulator(1 << 20, 1000, 1.0)
    with pytest.raises(InvalidArgument):
        acc.append("r", {"../x": 1.0}, 0, 1)
    assert acc.drain() == [] and acc.used_bytes == 0


def test_full_buffer_blocks_then_raises():
    acc = Accumulator(3 * POINT_BYTES + ROW_BYTES, 1000, 0.2)
    acc.append("r", {"a": 1.0, "b": 1.0, "c": 1.0}, 0, 1)
    t0 = time.monotonic()
    with pytest.raises(BufferFull):
        acc.append("r", {"a": 1.0}, 1, 1)
    assert time.monotonic() - t0 >= 0.19


def test_full_buffer_unblocks_on_release():
    need = 2 * POINT_BYTES + ROW_BYTES
    acc = Accumulator(need, 1000, 5.0)
    acc.append("r", {"a": 1.0, "b": 2.0}, 0, 1)
    (b,) = acc.drain()
    threading.Timer(0.1, acc.release, args=(b.nbytes,)).start()
    acc.append("r", {"a": 3.0, "b": 4.0}, 1, 1)  # waits for the release, then fits
    (b2,) = acc.drain()
    assert b2.values.tolist() == [3.0, 4.0]
    assert acc.peak_used_bytes == need


def test_drop_policy_counts_drops():
    acc = Accumulator(POINT_BYTES + ROW_BYTES, 1000, 5.0, drop_when_full=True)
    acc.append("r", {"a": 1.0}, 0, 1)
    acc.append("r", {"a": 2.0, "b": 3.0}, 1, 1)
    assert acc.dropped_points == 2
    (b,) = acc.drain()
    assert np.array_equal(b.values, [1.0])


def test_drain_splits_busy_runs_and_keeps_byte_accounting_exact():
    acc = Accumulator(1 << 30, 10**9, 1.0, max_batch_points=1000)
    for step in range(250):
        acc.append("busy", {f"k{i}": float(step) for i in range(10)}, step, step)
    used = acc.used_bytes
    batches = acc.drain()
    assert [len(b.values) for b in batches] == [1000, 1000, 500]
    assert sum(b.nbytes for b in batches) == used
    # each batch grouped by key, each key's steps in order; nothing lost or repeated
    for b in batches:
        assert not (np.diff(b.key_index) < 0).any()
        for k in np.unique(b.key_index):
            assert not (np.diff(b.steps[b.key_index == k]) <= 0).any()
    got = sorted((b.keys[k], int(s), int(t), float(v)) for b in batches
                 for k, s, t, v in zip(b.key_index, b.steps, b.timestamps, b.values))
    assert got == sorted((f"k{i}", s, s, float(s)) for s in range(250) for i in range(10))
    for b in batches:
        acc.release(b.nbytes)
    assert acc.used_bytes == 0


def test_spool_frames_in_flight_share_the_buffer_budget_with_log_calls():
    """The sender's drain reserves its frames in the same budget: log calls wait while
    the two together fill it, and a frame that does not fit is refused (or, forced,
    counted as an overrun)."""
    need = 2 * POINT_BYTES + ROW_BYTES
    acc = Accumulator(10 * need, 1000, 5.0)
    for s in range(4):
        acc.append("r", {"a": 1.0, "b": 2.0}, s, 1)
    assert acc.reserve_drain(6 * need)  # 4 + 6 = the whole budget
    assert not acc.reserve_drain(1), "a frame past the budget was counted"
    assert acc.held_bytes == 10 * need and acc.used_bytes == 4 * need
    done = threading.Event()

    def log_one() -> None:
        acc.append("r", {"a": 3.0, "b": 4.0}, 9, 1)
        done.set()

    t = threading.Thread(target=log_one)
    t.start()
    assert not done.wait(0.2), "a log call went past the budget the drain holds"
    acc.release_drain(6 * need)  # the frames were acknowledged
    assert done.wait(2.0)
    t.join()
    assert acc.held_bytes == 5 * need and acc.peak_held_bytes == 10 * need
    assert acc.drain_overruns == 0
    assert acc.reserve_drain(20 * need, force=True)
    assert acc.drain_overruns == 1 and acc.peak_held_bytes == 25 * need
    acc.release_drain(20 * need)
    assert acc.drain_bytes == 0 and acc.used_bytes == 5 * need
    assert acc.wait_empty(0.01) is False  # live points are still unacknowledged


def test_a_refused_spool_frame_claims_the_room_a_spill_frees():
    """A frame that found no room keeps what a spill then frees: a blocking log call
    waits for it rather than refilling the buffer (a CI run saw the drain forced over
    the bound by a trainer that took the spilled bytes first). Unclaimed, it may log."""
    need = 2 * POINT_BYTES + ROW_BYTES
    acc = Accumulator(10 * need, 1000, 5.0)
    for s in range(10):
        acc.append("r", {"a": 1.0, "b": 2.0}, s, 1)
    assert not acc.reserve_drain(4 * need)  # the buffer is full
    spilled = acc.drain()  # the sender spills every buffered point to the spool
    acc.release(sum(b.nbytes for b in spilled))
    done = threading.Event()

    def log(n: int) -> None:
        for s in range(n):
            acc.append("r", {"a": 3.0, "b": 4.0}, 100 + s, 1)
        done.set()

    t = threading.Thread(target=log, args=(7,))
    t.start()
    assert not done.wait(0.2), "log calls took the room the spool frame claimed"
    assert acc.used_bytes == 6 * need
    assert acc.reserve_drain(4 * need), "the claimed room was not there for the frame"
    assert acc.held_bytes == 10 * need and acc.drain_overruns == 0
    acc.release_drain(4 * need)
    assert done.wait(2.0)
    t.join()
    assert acc.peak_held_bytes == 10 * need
    # The stream ended with a frame's claim standing: log calls get the room back.
    assert not acc.reserve_drain(5 * need)
    done.clear()
    t = threading.Thread(target=log, args=(1,))
    t.start()
    assert not done.wait(0.2)
    acc.unclaim_drain()
    assert done.wait(2.0)
    t.join()
    # Without a claim (batches in flight: their acks make room), a refused frame leaves
    # log calls the room that is free.
    assert acc.used_bytes == 8 * need
    assert not acc.reserve_drain(5 * need, claim=False)
    done.clear()
    log(1)
    assert done.is_set() and acc.used_bytes == 9 * need


def test_a_spill_can_take_smaller_parts_and_keeps_every_point_and_byte():
    acc = Accumulator(1 << 30, 10**9, 1.0, max_batch_points=1000)
    for s in range(50):
        acc.append("r", {f"k{i}": float(s * 10 + i) for i in range(7)}, s, s)
    parts = list(acc.drain_iter(16))
    assert max(len(b.values) for b in parts) == 16 and len(parts) == -(-350 // 16)
    assert sum(b.nbytes for b in parts) == acc.used_bytes
    assert sorted(float(v) for b in parts for v in b.values) == [float(x) for x in range(500)
                                                                 if x % 10 < 7]
