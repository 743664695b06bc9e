"""Writer lag: end-to-end latency samples and consumer lag per partition."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from metricflow.ingest import _kafka_metrics as km

log = logging.getLogger(__name__)


class LagReservoir:
    """The most recent `size` end-to-end lags (seconds) in a numpy ring buffer.

    Each sample is one Kafka message: from its record timestamp (taken by the
    ingest node's producer just before the send, so at or before the client's
    ack) to the end of the insert that made it queryable.
    """

    def __init__(self, size: int = 262_144) -> None:
        self._buf = np.zeros(size, dtype=np.float64)
        self._n = 0  # samples ever added

    def add(self, lags: np.ndarray) -> None:
        size = len(self._buf)
        lags = lags[-size:]
        km_obs = km.E2E_LAG.observe
        for v in lags[:: max(1, len(lags) // 64)]:  # histogram: a sample per insert is enough
            km_obs(float(v))
        idx = (self._n + np.arange(len(lags))) % size
        self._buf[idx] = lags
        self._n += len(lags)

    def reset(self) -> None:
        self._n = 0

    def quantiles(self, qs: tuple[float, ...] = (0.5, 0.9, 0.99, 1.0)) -> dict[str, float]:
        """{"p50": .., "p90": .., "p99": .., "p100": .., "samples": n} of the buffer."""
        data = self._buf[: min(self._n, len(self._buf))]
        out: dict[str, float] = {"samples": float(len(data))}
        for q in qs:
            out[f"p{q * 100:g}"] = float(np.quantile(data, q)) if len(data) else 0.0
        return out


class LagMonitor:
    """Measures log end offset minus committed offset per assigned partition."""

    def __init__(self, consumer: Any, interval_s: float) -> None:
        self.consumer, self.interval_s = consumer, interval_s
        self._committed: dict[Any, int] = {}
        self.per_partition: dict[Any, int] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def total(self) -> int:
        return sum(self.per_partition.values())

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def committed(self, offsets: dict[Any, int]) -> None:
        """Note offsets the writer just committed."""
        self._committed.update(offsets)

    def forget(self, partitions: set[Any]) -> None:
        for tp in partitions:
            self._committed.pop(tp, None)
            self.per_partition.pop(tp, None)
            km.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(0)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.measure()
            except Exception as e:  # broker away: keep the last values
                log.debug("consumer lag measurement failed: %s", e)

    async def measure(self) -> None:
        parts = list(self.consumer.assignment())
        if not parts:
            return
        ends = await self.consumer.end_offsets(parts)
        for tp in parts:
            if tp not in self._committed:
                self._committed[tp] = await self.consumer.committed(tp) or 0
            lag = max(0, int(ends.get(tp, 0)) - self._committed[tp])
            self.per_partition[tp] = lag
            km.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
