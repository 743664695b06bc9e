"""Ack latency: from each point's log call to the server's durable ack of its batch.

Method: the Client stamps every point with the wall-clock time of its
`log_metrics` call (timestamp=None). The probe wraps the Sender of one Client
so that, when a batch is encoded, the batch's timestamp column is remembered by
sequence number, and when the server's ack for that sequence number arrives,
`now - timestamp` is recorded for every point of the batch. The latency thus
includes client linger, queueing in the bounded buffer, the network, server
validation and the commit (embedded) or Kafka acks=all (distributed), plus any
retries (a resent batch keeps its sequence number). Resolution: 1 ms.

This reaches into two private methods of the Sender (`_encode`, `_finish`); if
they change, `install` returns False and the report says the method is
unavailable instead of guessing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from loadtests.loadtest._hist import LatencyHist


class AckProbe:
    """Records per-point ack latency of one Client into a LatencyHist."""

    method = "per-point: ack time - log call timestamp (sender hook)"

    def __init__(self, hist: LatencyHist) -> None:
        self.hist = hist
        self._pending: dict[int, np.ndarray] = {}
        self.installed = False
        self.rejected_points = 0
        self.acked_points = 0
        """Points of batches the server acked (complete once flush() returned)."""

    def install(self, client: Any) -> bool:
        """Wrap the client's sender; False if its internals are not as expected."""
        sender = getattr(client, "_sender", None)
        encode = getattr(sender, "_encode", None)
        finish = getattr(sender, "_finish", None)
        if sender is None or not callable(encode) or not callable(finish):
            return False
        pending = self._pending
        hist = self.hist

        def _encode(batch: Any) -> Any:
            msg = encode(batch)
            pending[msg.seq] = batch.timestamps
            return msg

        def _finish(seq: int, item: Any) -> None:
            # The sender stores a rejection's error just before finishing the batch:
            # a rejected batch is not an ack and must not count as latency.
            rejected = sender.error is not None
            ts = pending.pop(seq, None)
            # Counted before the real _finish: it frees the batch's buffer bytes,
            # which lets a flush() in another thread return at once, and the
            # process's final report is read right after that flush. The sender's
            # own acked_points is incremented only after _finish; read then, it
            # missed the last batch (250,000 points in a `wide` run).
            if ts is not None and ts.size:
                if rejected:
                    self.rejected_points += int(ts.size)
                else:
                    hist.record(time.time() * 1000.0 - ts)
                    self.acked_points += int(ts.size)
            finish(seq, item)

        sender._encode = _encode
        sender._finish = _finish
        self.installed = True
        return True
