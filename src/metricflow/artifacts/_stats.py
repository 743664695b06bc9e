"""Dedup statistics: logical bytes (what users logged) versus stored bytes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from metricflow.artifacts._store import ArtifactStore


@dataclass(frozen=True)
class DedupStats:
    """Logical vs stored bytes.

    For one run, stored_bytes counts each distinct chunk the run references once
    (what the run would cost alone); for the store it is every chunk object.
    """

    logical_bytes: int
    stored_bytes: int
    chunks: int
    manifests: int

    @property
    def ratio(self) -> float:
        """logical / stored (1.0 for an empty store)."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0


def dedup_stats(store: ArtifactStore, run_id: str | None = None) -> DedupStats:
    """Compute dedup statistics for one run or (run_id=None) the whole store."""
    logical = manifests = 0
    seen: dict[bytes, int] = {}
    for m in store.iter_manifests(run_id):
        logical += m.size
        manifests += 1
        if run_id is not None:
            for c in m.chunks:
                seen[c.digest] = c.stored_size
    if run_id is not None:
        return DedupStats(logical, sum(seen.values()), len(seen), manifests)
    stored = chunks = 0
    for _d, info in store.iter_chunks():
        stored += info.size
        chunks += 1
    return DedupStats(logical, stored, chunks, manifests)


def dedup_metrics(store: ArtifactStore) -> dict[str, float]:
    """Store-wide figures as a flat dict, ready for Prometheus gauges."""
    s = dedup_stats(store)
    return {"metricflow_artifacts_logical_bytes": float(s.logical_bytes),
            "metricflow_artifacts_stored_bytes": float(s.stored_bytes),
            "metricflow_artifacts_chunks": float(s.chunks),
            "metricflow_artifacts_manifests": float(s.manifests),
            "metricflow_artifacts_dedup_ratio": s.ratio}


class DedupCollector:
    """A prometheus_client collector that rescans the store at most every `min_interval_s`.

    Register with `prometheus_client.REGISTRY.register(DedupCollector(store))`.
    """

    def __init__(self, store: ArtifactStore, min_interval_s: float = 300.0) -> None:
        self._store = store
        self._min = min_interval_s
        self._cache: tuple[float, dict[str, float]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        """Yield one gauge per figure of dedup_metrics."""
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            if self._cache is None or time.monotonic() - self._cache[0] > self._min:
                self._cache = (time.monotonic(), dedup_metrics(self._store))
            values = self._cache[1]
        for name, v in values.items():
            yield GaugeMetricFamily(name, name.replace("_", " "), value=v)
