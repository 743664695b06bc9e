"""The ack-latency hook on a Client's sender."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from loadtests.loadtest._ackprobe import AckProbe
from loadtests.loadtest._hist import LatencyHist
from loadtests.loadtest._worker import error_key
from metricflow.errors import ErrorCode, MetricflowError


class FakeSender:
    """The two methods the probe wraps, with the real sender's order on rejection."""

    def __init__(self) -> None:
        self.error: Any = None
        self.seq = 0
        self.finished: list[int] = []

    def _encode(self, batch: Any) -> Any:
        self.seq += 1
        return SimpleNamespace(seq=self.seq)

    def _finish(self, seq: int, item: Any) -> None:
        self.finished.append(seq)


def test_latency_per_point_and_rejections_apart() -> None:
    sender = FakeSender()
    hist = LatencyHist()
    probe = AckProbe(hist)
    assert probe.install(SimpleNamespace(_sender=sender))
    now_ms = time.time() * 1000
    ok = sender._encode(SimpleNamespace(timestamps=np.array([now_ms - 250, now_ms - 50])))
    bad = sender._encode(SimpleNamespace(timestamps=np.array([now_ms] * 3)))
    sender._finish(ok.seq, None)
    sender.error = "rejected"  # the sender stores the error, then finishes the batch
    sender._finish(bad.seq, None)
    assert sender.finished == [ok.seq, bad.seq]  # the real methods still run
    assert hist.total == 2 and probe.rejected_points == 3
    assert 240 <= hist.percentile(100) <= 300
    assert 45 <= hist.percentile(1) <= 70


def test_install_refuses_unknown_internals() -> None:
    assert not AckProbe(LatencyHist()).install(SimpleNamespace(_sender=object()))


def test_error_key_names_op_type_and_code() -> None:
    err = MetricflowError("boom")
    assert error_key("flush", err) == f"flush:MetricflowError[{ErrorCode.INTERNAL_ERROR.value}]"
    assert error_key("search", ValueError("x")) == "search:ValueError"


def test_acked_points_and_latency_are_counted_before_the_buffer_is_freed() -> None:
    """The real _finish frees buffer bytes, which releases a flush() in another thread;
    the worker's final report is read right after that flush, so the probe must have
    counted the batch by then (the sender's own counter is bumped after _finish)."""
    hist = LatencyHist()
    probe = AckProbe(hist)
    seen: list[tuple[int, int]] = []

    class Sender(FakeSender):
        def _finish(self, seq: int, item: Any) -> None:
            seen.append((probe.acked_points, hist.total))
            super()._finish(seq, item)

    sender = Sender()
    assert probe.install(SimpleNamespace(_sender=sender))
    now_ms = time.time() * 1000
    a = sender._encode(SimpleNamespace(timestamps=np.array([now_ms] * 4)))
    b = sender._encode(SimpleNamespace(timestamps=np.array([now_ms] * 6)))
    sender._finish(a.seq, None)
    sender._finish(b.seq, None)
    assert seen == [(4, 4), (10, 10)]
    sender.error = "rejected"
    c = sender._encode(SimpleNamespace(timestamps=np.array([now_ms] * 5)))
    sender._finish(c.seq, None)
    assert probe.acked_points == 10 and probe.rejected_points == 5
