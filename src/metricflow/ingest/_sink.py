"""The IngestSink seam: where validated batches go once an ingest node accepts them."""

from __future__ import annotations

import asyncio
from typing import Protocol

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics


class IngestSink(Protocol):
    """Accepts batches; the returned future resolves once the batch is durable.

    `submit_*` raise ResourceExhausted at once when the sink's bounded buffer
    is full, so the caller can tell the client to back off.
    """

    async def start(self) -> None: ...

    def submit_metrics(self, batch: DecodedMetrics, raw: bytes,
                       batch_id: tuple[str, int]) -> asyncio.Future[None]: ...

    def submit_record(self, record: pb.LogRecord, key: str) -> asyncio.Future[None]: ...

    async def close(self) -> None: ...
