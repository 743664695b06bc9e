"""Per-variant sliding windows of requests, errors and latency, and the circuit breaker.

A window is a ring of one-second buckets; each bucket counts requests, errors
(answers >= 500) and latencies in a log-scale histogram (about 4% wide bins), so
p99 over the window comes from summed counts, with no sample kept per request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

_BINS = 256
_BASE_MS = 0.01  # bin 0 holds latencies under 10 us
_GROWTH = 1.04
_LOG_GROWTH = math.log(_GROWTH)
_ZEROS = [0] * _BINS


def _bin(ms: float) -> int:
    if ms <= _BASE_MS:
        return 0
    return min(_BINS - 1, 1 + int(math.log(ms / _BASE_MS) / _LOG_GROWTH))


def _upper_ms(b: int) -> float:
    return _BASE_MS * _GROWTH ** b


@dataclass(frozen=True, slots=True)
class WindowStats:
    requests: int
    errors: int
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class Window:
    """Counts over the last `seconds` seconds, in one-second buckets."""

    __slots__ = ("_errs", "_hist", "_n", "_sec", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = max(1, int(math.ceil(seconds)))
        size = self.seconds
        self._sec = [-1] * size
        self._n = [0] * size
        self._errs = [0] * size
        self._hist = [[0] * _BINS for _ in range(size)]

    def _slot(self, now: float) -> int:
        sec = int(now)
        i = sec % self.seconds
        if self._sec[i] != sec:
            self._sec[i] = sec
            self._n[i] = 0
            self._errs[i] = 0
            self._hist[i][:] = _ZEROS
        return i

    def add(self, latency_ms: float, error: bool, now: float | None = None) -> None:
        i = self._slot(time.monotonic() if now is None else now)
        self._n[i] += 1
        if error:
            self._errs[i] += 1
        self._hist[i][_bin(latency_ms)] += 1

    def stats(self, now: float | None = None) -> WindowStats:
        sec = int(time.monotonic() if now is None else now)
        live = [i for i in range(self.seconds) if sec - self.seconds < self._sec[i] <= sec]
        n = sum(self._n[i] for i in live)
        errs = sum(self._errs[i] for i in live)
        if not n:
            return WindowStats(0, 0, 0.0)
        rank = math.ceil(0.99 * n)
        seen = 0
        p99 = 0.0
        for b, count in enumerate(map(sum, zip(*(self._hist[i] for i in live)))):
            seen += count
            if seen >= rank:
                p99 = _upper_ms(b)
                break
        return WindowStats(n, errs, p99)


def breach(stats: WindowStats, *, max_error_rate: float | None, max_p99_ms: float | None,
           min_requests: int) -> str | None:
    """Why a variant's window breaks its guardrails, or None."""
    if stats.requests < max(1, min_requests):
        return None
    if max_error_rate is not None and stats.error_rate > max_error_rate:
        return (f"error rate {stats.error_rate:.3f} over {stats.requests} requests exceeds "
                f"max_error_rate {max_error_rate}")
    if max_p99_ms is not None and stats.p99_ms > max_p99_ms:
        return (f"latency p99 {stats.p99_ms:.1f} ms over {stats.requests} requests exceeds "
                f"max_latency_p99_ms {max_p99_ms}")
    return None
