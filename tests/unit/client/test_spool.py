"""The client's spool file format: frames, segments, cursor, budget, torn tails.

Also the offline client end to end on disk (no server): what it spools is read
back exactly, in call order, with its batch ids.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import decode_metrics
from metricflow.client import Client
from metricflow.client._spool import (
    FRAME,
    KIND_ARTIFACT,
    KIND_CREATE_RUN,
    KIND_LOG_BATCH,
    KIND_METRICS,
    KIND_UPDATE_RUN,
    SEGMENT_MAGIC,
    Spool,
    SpoolFull,
    list_segments,
)
from metricflow.client._sync import find_spools
from metricflow.errors import DeliveryError, InvalidState


def _payloads(n: int) -> list[bytes]:
    return [bytes([i % 251]) * (i * 7 + 1) for i in range(n)]


def test_frames_come_back_in_order_across_segments_and_commit_frees_them(
        tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"), segment_bytes=500)
    data = _payloads(60)
    for i, p in enumerate(data):
        sp.append(KIND_METRICS if i % 3 else KIND_LOG_BATCH, p)
    assert len(list_segments(sp.dir)) > 5
    frames = list(sp.frames())
    assert [f.payload for f in frames] == data
    assert [f.kind for f in frames] == [KIND_METRICS if i % 3 else KIND_LOG_BATCH
                                       for i in range(60)]
    before = sp.disk_bytes
    sp.commit(frames[40].pos)
    assert sp.disk_bytes < before
    assert min(list_segments(sp.dir)) == frames[40].pos[0]
    sp.close()
    again = Spool(str(tmp_path / "s"), create=False)
    assert [f.payload for f in again.frames()] == data[40:]  # the cursor was persisted
    assert again.pending()
    again.close()


def test_a_torn_tail_is_skipped_never_parsed(tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"))
    data = _payloads(20)
    for p in data:
        sp.append(KIND_METRICS, p)
    sp.close()
    (seg,) = list_segments(str(tmp_path / "s"))
    path = tmp_path / "s" / f"{seg:08d}.seg"
    size = path.stat().st_size
    with open(path, "r+b") as f:  # the process died in the middle of the last frame
        f.truncate(size - 3)
    sp = Spool(str(tmp_path / "s"), create=False)
    got = [f.payload for f in sp.frames()]
    assert got == data[:-1]
    assert sp.skipped_bytes == FRAME.size + len(data[-1]) - 3
    sp.close()


def test_a_flipped_payload_byte_loses_that_frame_only(tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"), segment_bytes=300)
    data = _payloads(30)
    for p in data:
        sp.append(KIND_METRICS, p)
    frames = list(sp.frames())
    sp.close()
    victim = frames[3]
    seg_path = tmp_path / "s" / f"{victim.pos[0]:08d}.seg"
    raw = bytearray(seg_path.read_bytes())
    raw[victim.pos[1] + FRAME.size] ^= 0xFF  # one payload byte: the checksum fails
    seg_path.write_bytes(bytes(raw))
    sp = Spool(str(tmp_path / "s"), create=False)
    got = list(sp.frames())
    assert [f.payload for f in got] == [f.payload for f in frames if f is not victim]
    assert sp.skipped_bytes == FRAME.size + len(victim.payload)
    sp.close()


def test_a_corrupt_header_ends_its_segment_and_later_segments_are_still_read(
        tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"), segment_bytes=300)
    data = _payloads(30)
    for p in data:
        sp.append(KIND_METRICS, p)
    frames = list(sp.frames())
    sp.close()
    victim = frames[3]
    seg_path = tmp_path / "s" / f"{victim.pos[0]:08d}.seg"
    raw = bytearray(seg_path.read_bytes())
    raw[victim.pos[1]] ^= 0xFF  # the magic: no frame boundary can be trusted after it
    seg_path.write_bytes(bytes(raw))
    sp = Spool(str(tmp_path / "s"), create=False)
    got = list(sp.frames())
    lost = [f for f in frames if f.pos[0] == victim.pos[0] and f.pos >= victim.pos]
    assert [f.payload for f in got] == [f.payload for f in frames if f not in lost]
    assert sp.skipped_bytes == sum(FRAME.size + len(f.payload) for f in lost)
    sp.close()


def test_a_reopened_spool_never_appends_after_a_torn_frame(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    sp = Spool(d)
    sp.append(KIND_METRICS, b"a" * 100)
    sp.close()
    (seg,) = list_segments(d)
    with open(os.path.join(d, f"{seg:08d}.seg"), "ab") as f:
        f.write(b"MF\x01M\xff")  # half a header
    sp = Spool(d, create=True)  # a new writer on the same directory
    sp.append(KIND_METRICS, b"b" * 10)
    assert [f.payload for f in sp.frames()] == [b"a" * 100, b"b" * 10]
    assert len(list_segments(d)) == 2
    sp.close()


def test_the_budget_refuses_with_the_limit_and_what_was_asked(tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"), budget_bytes=1000)
    sp.append(KIND_METRICS, b"x" * 500)
    with pytest.raises(SpoolFull) as ei:
        sp.append(KIND_METRICS, b"x" * 600)
    err = ei.value
    assert err.details["limit"] == 1000 and err.details["field"] == "METRICFLOW_SPOOL_MAX_BYTES"
    assert err.details["received"] > 1000
    assert "METRICFLOW_SPOOL_MAX_BYTES" in str(err)
    assert [len(f.payload) for f in sp.frames()] == [500]  # nothing half-written
    sp.close()


def test_one_process_owns_a_spool(tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"))
    with pytest.raises(InvalidState, match="in use by another process"):
        Spool(str(tmp_path / "s"), create=False)
    sp.close()
    Spool(str(tmp_path / "s"), create=False).close()


def test_segment_files_start_with_the_magic(tmp_path: Path) -> None:
    sp = Spool(str(tmp_path / "s"))
    sp.append(KIND_METRICS, b"abc")
    sp.sync()
    (seg,) = list_segments(sp.dir)
    raw = (tmp_path / "s" / f"{seg:08d}.seg").read_bytes()
    assert raw[:8] == SEGMENT_MAGIC
    magic, version, kind, length, _crc = FRAME.unpack(raw[8:8 + FRAME.size])
    assert (magic, version, kind, length) == (b"MF", 1, KIND_METRICS, 3)
    sp.close()


def test_offline_client_spools_every_call_in_order(tmp_path: Path) -> None:
    art = tmp_path / "model.txt"
    art.write_text("weights")
    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               linger_ms=5)
    exp = c.get_or_create_experiment("exp-a")
    assert exp == "offline:exp-a"
    run = c.create_run(exp, run_name="r1", tags={"t": "1"})
    assert len(run.run_id) == 32 and run.info.status == "RUNNING"
    c.log_params(run.run_id, {"lr": 0.1})
    values = np.arange(1000, dtype=np.float64)
    for s in range(1000):
        c.log_metrics(run.run_id, {"loss": values[s]}, step=s)
    c.log_artifact(run.run_id, str(art), "ckpt")
    c.set_terminated(run.run_id)
    with pytest.raises(InvalidState, match="offline"):
        c.get_run(run.run_id)
    c.close()

    (d,) = find_spools(str(tmp_path / "spool"))
    sp = Spool(d, create=False)
    frames = list(sp.frames())
    kinds = [f.kind for f in frames]
    assert kinds[0] == KIND_CREATE_RUN and kinds[1] == KIND_LOG_BATCH
    assert kinds[-2:] == [KIND_ARTIFACT, KIND_UPDATE_RUN]
    assert set(kinds[2:-2]) == {KIND_METRICS}
    create = pb.CreateRunRequest.FromString(frames[0].payload)
    assert (create.run_id, create.experiment_id) == (run.run_id, "offline:exp-a")
    batches = [pb.WriteBatch.FromString(f.payload) for f in frames if f.kind == KIND_METRICS]
    assert len({b.client_id for b in batches}) == 1
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    got = np.concatenate([np.frombuffer(b.metrics.values, "<f8") for b in batches])
    steps = np.concatenate([np.frombuffer(b.metrics.steps, "<i8") for b in batches])
    assert np.array_equal(np.sort(steps), np.arange(1000))
    assert np.array_equal(got[np.argsort(steps)], values)
    end = pb.UpdateRunRequest.FromString(frames[-1].payload)
    assert end.status == pb.FINISHED and end.end_time > 0  # fixed now: a replay keeps it
    ref = json.loads(frames[-2].payload)
    assert ref["path"] == "ckpt/model.txt"
    assert open(sp.file_path(ref["file"])).read() == "weights"
    sp.close()


def test_past_the_budget_log_calls_block_then_raise_and_say_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from metricflow.client import BufferFull

    monkeypatch.setenv("METRICFLOW_SPOOL_MAX_BYTES", str(2 << 20))
    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               buffer_bytes=256 << 10, block_timeout_s=0.5, linger_ms=5)
    run = c.create_run("0")
    with pytest.raises(BufferFull) as ei:
        for s in range(1_000_000):
            c.log_metrics(run.run_id, {"a": 1.0, "b": 2.0, "c": 3.0}, step=s)
    msg = str(ei.value)
    assert "stayed full for 0.5s" in msg
    assert "spool" in msg and "is full" in msg and "METRICFLOW_SPOOL_MAX_BYTES" in msg
    (d,) = find_spools(str(tmp_path / "spool"))
    assert sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f.endswith(".seg")) <= 2 << 20
    t0 = time.monotonic()
    with pytest.raises(DeliveryError, match="close gave up at once.*offline, spooling; the "
                                            "client spool .* is full"):
        c.close(timeout=60)  # what stayed in memory cannot be kept: said, not silent
    # at once, not after its 60 s (an offline spool never drains), and close ends the
    # sender (it used to spin until a 5 s cancel deadline and leave the thread running)
    assert time.monotonic() - t0 < 30
    assert not c._sender._thread.is_alive()


def test_past_the_budget_the_drop_policy_drops_and_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("METRICFLOW_SPOOL_MAX_BYTES", str(2 << 20))
    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               buffer_bytes=256 << 10, drop_when_full=True, linger_ms=5)
    run = c.create_run("0")
    full = False
    with caplog.at_level("WARNING", logger="metricflow.client._sender"):
        for s in range(300_000):
            c.log_metrics(run.run_id, {"a": 1.0, "b": 2.0, "c": 3.0}, step=s)
            if s % 5_000 == 0 and not full:  # offline: the buffer goes to the spool
                t0 = time.monotonic()
                try:
                    c.flush(60)
                except DeliveryError as e:  # the spool is full: nowhere left to put points
                    full = True
                    assert "flush gave up at once" in str(e)
                    assert time.monotonic() - t0 < 30, "flush waited for an offline spool"
            elif full and c.dropped_points > 0:
                break  # (logging on only drops more)
    assert full
    assert c.dropped_points > 0
    assert any("is full" in r.getMessage() and "drop points" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(DeliveryError):
        c.close(timeout=0.5)
    assert not c._sender._thread.is_alive()


def test_a_drop_mode_call_spills_a_full_buffer_itself_rather_than_drop(
        tmp_path: Path) -> None:
    """Logging faster than the spiller moves points into the engaged spool (a busy
    machine) loses nothing while the spool has room: the log call that finds the buffer
    full writes it to the spool itself. (It dropped them until 2026-12-06.)"""
    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               buffer_bytes=64 << 10, drop_when_full=True, linger_ms=1000)
    run = c.create_run("0")
    n = 50_000
    for s in range(n):
        c.log_metrics(run.run_id, {"a": 1.0, "b": 2.0, "c": float(s)}, step=s)
    c.close(timeout=30)
    assert c.dropped_points == 0
    assert c._acc.spilled_when_full > 0  # the spiller alone fell behind (it dropped before)
    (d,) = find_spools(str(tmp_path / "spool"))
    sp = Spool(d, create=False)
    batches = [pb.WriteBatch.FromString(f.payload) for f in sp.frames()
               if f.kind == KIND_METRICS]
    sp.close()
    values = np.concatenate([np.frombuffer(b.metrics.values, "<f8") for b in batches])
    assert len(values) == 3 * n
    assert np.array_equal(np.sort(values[values >= 3.0]), np.arange(3, n, dtype=np.float64))


def test_drop_mode_threads_logging_at_once_into_a_spool_drop_nothing(
        tmp_path: Path) -> None:
    """Two threads log as fast as they can into an offline drop-mode client: a call that
    finds the buffer full while another thread spills waits for that spill's room
    instead of dropping (a review measured 2.1M of 2.5M points dropped before)."""
    import threading

    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               buffer_bytes=64 << 10, drop_when_full=True, linger_ms=1000)
    run = c.create_run("0")
    n = 40_000

    def log(t: int) -> None:
        for s in range(n):
            c.log_metrics(run.run_id, {"a": float(t), "b": float(s)}, step=s)

    threads = [threading.Thread(target=log, args=(t,)) for t in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close(timeout=30)
    assert c.dropped_points == 0
    (d,) = find_spools(str(tmp_path / "spool"))
    sp = Spool(d, create=False)
    values = np.concatenate([np.frombuffer(pb.WriteBatch.FromString(f.payload).metrics.values,
                                           "<f8") for f in sp.frames() if f.kind == KIND_METRICS])
    sp.close()
    assert len(values) == 2 * 2 * n


def test_offline_batches_kept_after_a_disk_error_are_spooled_once_it_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, a disk error keeps batches in memory; they used to stay there for good
    (the spool was not tried again), so the buffer filled and log calls blocked and
    raised until the process ended. Now they go to the spool, in order, once the disk
    takes writes again, and so does everything logged after them."""
    import errno

    from metricflow.client import _spool

    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               buffer_bytes=256 << 10, block_timeout_s=20, linger_ms=5)
    run = c.create_run("0")
    real = _spool._writev_all
    failing = {"on": True, "n": 0}

    def writev(fd: int, parts: list) -> None:
        if failing["on"]:
            failing["n"] += 1
            raise OSError(errno.EIO, "Input/output error")
        real(fd, parts)

    monkeypatch.setattr(_spool, "_writev_all", writev)
    n, first = 40_000, 1_000  # 3,000 points fit the buffer; 120,000 do not
    for s in range(first):
        c.log_metrics(run.run_id, {"a": float(s), "b": 0.5, "c": 1.5}, step=s)
    deadline = time.monotonic() + 10  # the spiller meets the failing disk
    while failing["n"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failing["n"] > 0 and c._sender._overflow  # kept in memory, not lost
    failing["on"] = False  # the disk recovers
    for s in range(first, n):  # these would block, then raise BufferFull, before
        c.log_metrics(run.run_id, {"a": float(s), "b": 0.5, "c": 1.5}, step=s)
    c.flush(timeout=20)
    assert not c._sender._overflow
    c.close(timeout=20)
    (d,) = find_spools(str(tmp_path / "spool"))
    sp = Spool(d, create=False)
    batches = [pb.WriteBatch.FromString(f.payload) for f in sp.frames()
               if f.kind == KIND_METRICS]
    sp.close()
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs)  # oldest first: the kept batches before later ones
    decoded = [decode_metrics(b.run_id, b.metrics) for b in batches]
    a = np.concatenate([d.values[d.key_index == d.keys.index("a")] for d in decoded])
    assert np.array_equal(np.sort(a), np.arange(n, dtype=np.float64))


@pytest.mark.parametrize("bad", [
    {"step": 2**70}, {"step": -(2**63) - 1}, {"timestamp": 2**64}, {"step": "x"},
    {"step": float("inf")}, {"timestamp": "soon"}, {"step": 1.5}, {"step": "5"},
    {"step": True}, {"b": 10**400}, {"b": "3.5"}, {"b": Decimal("sNaN")}])
def test_a_bad_step_timestamp_or_value_is_refused_and_the_client_goes_on(
        tmp_path: Path, bad: dict) -> None:
    """A step or timestamp that is not an int64, or a value that is not a number, is
    refused by the log call, naming the field, and nothing of that call is buffered.
    Some used to fail after values went into the buffer (an int past a double's range,
    a step past int64): the columns no longer lined up, every later send broke (online)
    or the sender thread died (offline), and the client delivered nothing more. A float
    step was cut (1.5 stored as 1), a numeric string raised a bare TypeError."""
    from metricflow.errors import InvalidArgument

    c = Client("grpc://127.0.0.1:1", offline=True, spool_dir=str(tmp_path / "spool"),
               linger_ms=5)
    run = c.create_run("0")
    for s in range(100):
        c.log_metrics(run.run_id, {"a": float(s)}, step=s)
    field = next(iter(bad))
    metrics = {"a": -1.0, "b": bad["b"]} if field == "b" else {"a": -1.0, "b": -1.0}
    kwargs = {} if field == "b" else bad
    want = "metric 'b' value must be a number" if field == "b" else f"{field} must be an integer"
    with pytest.raises(InvalidArgument, match=f": {want}") as ei:
        c.log_metrics(run.run_id, metrics, **{"step": 1, **kwargs})
    assert ei.value.details["field"] == ("metrics['b'].value" if field == "b" else field)
    for s in range(100, 200):
        c.log_metrics(run.run_id, {"a": float(s)}, step=s)
    c.close(timeout=20)  # raised if the sender had died
    (d,) = find_spools(str(tmp_path / "spool"))
    sp = Spool(d, create=False)
    decoded = [decode_metrics(b.run_id, b.metrics) for b in (
        pb.WriteBatch.FromString(f.payload) for f in sp.frames() if f.kind == KIND_METRICS)]
    sp.close()
    assert np.array_equal(np.sort(np.concatenate([x.values for x in decoded])),
                          np.arange(200, dtype=np.float64))
    assert np.array_equal(np.sort(np.concatenate([x.steps for x in decoded])), np.arange(200))


def test_a_drop_for_a_full_buffer_is_said(monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """With no spool and no server, logging on past the buffer drops (drop_when_full),
    and says so once (not once per call), with the count."""
    monkeypatch.delenv("METRICFLOW_SPOOL_DIR", raising=False)
    c = Client("grpc://127.0.0.1:1", buffer_bytes=64 << 10, drop_when_full=True,
               linger_ms=1000)
    assert c._spool is None
    with caplog.at_level("WARNING", logger="metricflow.client._accumulator"):
        for s in range(50_000):
            c.log_metrics("0" * 32, {"a": 1.0, "b": 2.0, "c": 3.0}, step=s)
    said = [r.getMessage() for r in caplog.records if "dropping points" in r.getMessage()]
    assert c.dropped_points > 0
    assert len(said) == 1 and "drop_when_full" in said[0], said
    with pytest.raises(DeliveryError):
        c.close(timeout=0.5)  # what is still buffered cannot be delivered: said


def test_a_failed_write_is_cut_back_and_later_frames_stay_readable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails after part of a frame reached the file (disk full, I/O error)
    leaves no torn bytes before the next frame: every frame appended before and after it
    is read back, in this process and after a reopen."""
    import errno

    from metricflow.client import _spool

    sp = Spool(str(tmp_path / "s"))
    sp.append(KIND_METRICS, b"first")
    real = _spool._writev_all

    def half_then_fail(fd: int, parts: list) -> None:
        data = b"".join(bytes(p) for p in parts)
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_spool, "_writev_all", half_then_fail)
    with pytest.raises(OSError):
        sp.append(KIND_METRICS, b"lost" * 100)
    monkeypatch.setattr(_spool, "_writev_all", real)
    sp.append(KIND_METRICS, b"third")
    assert [f.payload for f in sp.frames()] == [b"first", b"third"]
    assert sp.skipped_bytes == 0
    sp.close()
    again = Spool(str(tmp_path / "s"), create=False)
    assert [f.payload for f in again.frames()] == [b"first", b"third"]
    again.close()


def test_a_torn_write_that_cannot_be_cut_back_moves_to_a_new_segment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the torn bytes cannot be truncated away, the next frame goes to a new segment
    and the torn one is read up to its last whole frame; a segment whose first write
    fails is removed and made again by the next append."""
    import errno

    from metricflow.client import _spool

    sp = Spool(str(tmp_path / "s"), fsync_s=-1)
    sp.append(KIND_METRICS, b"first")
    real = _spool._writev_all
    calls = {"n": 0}

    def failing(fd: int, parts: list) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the frame: half of it, then the disk is full
            data = b"".join(bytes(p) for p in parts)
            os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_spool, "_writev_all", failing)
    monkeypatch.setattr(_spool.os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        sp.append(KIND_METRICS, b"torn" * 100)
    with pytest.raises(OSError):  # the next segment's first write (its magic) fails too
        sp.append(KIND_METRICS, b"second-try")
    monkeypatch.setattr(_spool, "_writev_all", real)
    sp.append(KIND_METRICS, b"third")
    sp.append(KIND_METRICS, b"fourth")
    assert [f.payload for f in sp.frames()] == [b"first", b"third", b"fourth"]
    assert len(list_segments(sp.dir)) == 2
    sp.close()
    again = Spool(str(tmp_path / "s"), create=False)
    assert [f.payload for f in again.frames()] == [b"first", b"third", b"fourth"]
    again.close()


def test_a_failing_background_fsync_is_said_and_the_syncer_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import errno

    from metricflow.client import _spool

    sp = Spool(str(tmp_path / "s"), fsync_s=0.01)
    real = _spool.os.fdatasync
    fails = {"n": 0}

    def flaky(fd: int) -> None:
        if fails["n"] < 3:
            fails["n"] += 1
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(_spool.os, "fdatasync", flaky)
    with caplog.at_level("WARNING", logger="metricflow.client._spool"):
        for i in range(6):
            sp.append(KIND_METRICS, b"x%d" % i)
            time.sleep(0.05)
    assert fails["n"] == 3 and sp._syncer is not None and sp._syncer.is_alive()
    said = [r.getMessage() for r in caplog.records if "fsync failed" in r.getMessage()]
    assert len(said) == 1 and "Input/output error" in said[0], said
    assert [f.payload for f in sp.frames()] == [b"x%d" % i for i in range(6)]
    sp.close()
