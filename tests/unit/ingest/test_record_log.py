"""RecordLog: the embedded sink's fsync'd log of run records (ingest/_record_log.py)."""

from __future__ import annotations

import os

from metricflow.ingest._record_log import RecordLog


def test_appended_records_replay_in_order_after_reopen(tmp_path):
    log = RecordLog(str(tmp_path))
    log.append([b"a", b"bb"])
    log.append([b"ccc"])
    log.close()
    assert list(RecordLog(str(tmp_path)).replay()) == [b"a", b"bb", b"ccc"]


def test_a_torn_final_frame_ends_the_replay(tmp_path):
    log = RecordLog(str(tmp_path))
    log.append([b"first", b"second"])
    log.close()
    (seg,) = log.segments()
    path = os.path.join(str(tmp_path), f"{seg:016d}.log")
    with open(path, "r+b") as f:  # a crash in the middle of the second frame
        f.truncate(os.path.getsize(path) - 3)
    assert list(RecordLog(str(tmp_path)).replay()) == [b"first"]


def test_a_corrupt_frame_is_not_replayed(tmp_path):
    log = RecordLog(str(tmp_path))
    log.append([b"good"])
    log.append([b"evil"])
    log.close()
    (seg,) = log.segments()
    path = os.path.join(str(tmp_path), f"{seg:016d}.log")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    open(path, "wb").write(bytes(data))
    assert list(RecordLog(str(tmp_path)).replay()) == [b"good"]


def test_segments_roll_over_and_release_drops_only_older_ones(tmp_path):
    log = RecordLog(str(tmp_path), segment_bytes=10)
    segs = [log.append([b"x" * 8]) for _ in range(4)]
    assert segs == sorted(segs) and len(set(segs)) == 4
    log.release(segs[2])
    assert log.segments() == segs[2:]
    log.close()
    assert list(RecordLog(str(tmp_path)).replay()) == [b"x" * 8] * 2


def test_release_all_empties_the_log_and_appends_continue(tmp_path):
    log = RecordLog(str(tmp_path))
    log.append([b"old"])
    log.release_all()
    assert log.segments() == []
    log.append([b"new"])
    log.close()
    assert list(RecordLog(str(tmp_path)).replay()) == [b"new"]
