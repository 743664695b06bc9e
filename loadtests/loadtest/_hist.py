"""A mergeable log-bucket latency histogram (about 2.5% relative resolution).

Load processes record every acknowledged point into one of these and ship the
bucket counts to the controller, which merges them; percentiles therefore
cover every point, not a sample.
"""

from __future__ import annotations

import threading

import numpy as np

_MIN_MS = 0.01
_RATIO = 1.05
_N = int(np.ceil(np.log(1e7 / _MIN_MS) / np.log(_RATIO))) + 2
# Upper edge of each bucket; bucket 0 holds everything below _MIN_MS.
EDGES = _MIN_MS * _RATIO ** np.arange(_N)


class LatencyHist:
    """Counts of latencies (ms) per log bucket; thread-safe record/take."""

    def __init__(self) -> None:
        self.counts = np.zeros(_N, dtype=np.int64)
        self.max_ms = 0.0
        self._lock = threading.Lock()

    def record(self, ms: np.ndarray | float, weight: int = 1) -> None:
        """Add one latency (weighted) or an array of latencies."""
        arr = np.atleast_1d(np.asarray(ms, dtype=np.float64))
        if not arr.size:
            return
        idx = np.minimum(np.searchsorted(EDGES, arr), _N - 1)
        binned = np.bincount(idx, minlength=_N) * weight
        with self._lock:
            self.counts += binned
            self.max_ms = max(self.max_ms, float(arr.max()))

    def take(self) -> tuple[list[tuple[int, int]], float]:
        """Sparse (bucket, count) pairs and max since the last take, then reset."""
        with self._lock:
            nz = np.nonzero(self.counts)[0]
            out = [(int(i), int(self.counts[i])) for i in nz]
            mx = self.max_ms
            self.counts[:] = 0
            self.max_ms = 0.0
        return out, mx

    def add_sparse(self, pairs: list[tuple[int, int]], max_ms: float = 0.0) -> None:
        """Merge a `take()` result from another process."""
        with self._lock:
            for i, c in pairs:
                self.counts[i] += c
            self.max_ms = max(self.max_ms, max_ms)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile(self, q: float) -> float | None:
        """The q-th percentile in ms (upper bucket edge, capped by the max); None if empty."""
        total = self.total
        if not total:
            return None
        rank = int(np.ceil(q / 100.0 * total))
        i = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        return float(min(EDGES[min(i, _N - 1)], self.max_ms))

    def summary(self, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | int | None]:
        """{'p50': .., 'p95': .., 'p99': .., 'max': .., 'count': ..} in ms, 3 decimals."""
        out: dict[str, float | int | None] = {}
        for q in qs:
            v = self.percentile(q)
            out[f"p{q:g}"] = None if v is None else round(v, 3)
        out["max"] = round(self.max_ms, 3) if self.total else None
        out["count"] = self.total
        return out
