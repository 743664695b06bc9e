"""The gRPC IngestService: validate, authorize, hand batches to the sink, ack when durable."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from metricflow import _grpc_errors as ge
from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._validation import check_run_id
from metricflow._wire import decode_metrics
from metricflow.entities.pb import run_info_to_pb
from metricflow.errors import InvalidArgument, MetricflowError, ResourceExhausted
from metricflow.ingest import _metrics as m
from metricflow.ingest._core import TrackingCore
from metricflow.ingest._upstream_runs import caller_credentials

log = logging.getLogger(__name__)
SERVICE = "metricflow.ingest.v1.IngestService"


class IngestServicer:
    """Handlers of metricflow.ingest.v1.IngestService (a thin layer over TrackingCore).

    A full sink does not push a batch back at once: the batch waits here up to
    `admission_wait_s` for room (the sink drains every few hundred ms), while at
    most `max_waiting_bytes` of such batches are held. Only then is it answered
    RESOURCE_EXHAUSTED with the sink's retry hint. Pushing back at once made
    clients resend (and this node re-parse) most batches under sustained load.
    """

    def __init__(self, core: TrackingCore, admission_wait_s: float = 1.0,
                 max_waiting_bytes: int = 128 << 20) -> None:
        """`core`: the process's one TrackingCore (its sink, limits and run cache are
        shared with the other front ends, e.g. the MLflow REST API)."""
        self.core = core
        self.sink, self.limits = core.sink, core.limits
        self.admission_wait_s, self.max_waiting_bytes = admission_wait_s, max_waiting_bytes
        self.waiting_bytes = 0

    # ------------------------------------------------------------ metrics stream
    async def Write(self, request_iterator: AsyncIterator[bytes],
                    context: grpc.aio.ServicerContext) -> AsyncIterator[pb.WriteAck]:
        acks: asyncio.Queue[pb.WriteAck | None] = asyncio.Queue()
        pending: set[asyncio.Task[None]] = set()

        async def read() -> None:
            try:
                async for raw in request_iterator:
                    t = asyncio.ensure_future(self._one_batch(raw, acks))
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                if pending:
                    await asyncio.gather(*pending)
            finally:
                await acks.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (ack := await acks.get()) is not None:
                yield ack
        finally:
            reader.cancel()

    async def _one_batch(self, raw: bytes, acks: asyncio.Queue[pb.WriteAck | None]) -> None:
        t0 = time.perf_counter()
        seq = 0
        try:
            try:
                batch = pb.WriteBatch.FromString(raw)
            except Exception:  # any decode failure is the client's
                m.REJECTED.labels(reason="malformed").inc()
                raise InvalidArgument("WriteBatch could not be parsed as protobuf",
                                      field="WriteBatch", received=len(raw)) from None
            seq = batch.seq
            check_run_id(batch.run_id)
            decoded = decode_metrics(batch.run_id, batch.metrics, self.limits)
            await self._admit(decoded, raw, (batch.client_id, batch.seq))
            m.BATCHES_IN.inc()
            m.BYTES_IN.inc(len(raw))
            m.BATCH_SECONDS.observe(time.perf_counter() - t0)
            await acks.put(pb.WriteAck(seq=seq, ok=True, points=decoded.n))
        except MetricflowError as e:
            if not e.retriable:
                m.REJECTED.labels(reason=e.code.value.lower()).inc()
            await acks.put(pb.WriteAck(seq=seq, ok=False, error_code=e.code.value,
                                       error_message=e.message,
                                       retry_after_s=getattr(e, "retry_after_s", 0.0) or 0.0))
        except Exception as e:  # one bad batch never breaks the stream
            log.exception("batch failed")
            await acks.put(pb.WriteAck(seq=seq, ok=False, error_code="INTERNAL_ERROR",
                                       error_message=f"internal error: {type(e).__name__}"))

    async def _admit(self, decoded: Any, raw: bytes, batch_id: tuple[str, int]) -> None:
        """write_metrics, waiting (bounded in time and bytes) while the sink is full."""
        deadline = time.monotonic() + self.admission_wait_s
        while True:
            try:
                await self.core.write_metrics(decoded, raw, batch_id)
                return
            except ResourceExhausted as e:
                left = deadline - time.monotonic()
                if left <= 0 or self.waiting_bytes + len(raw) > self.max_waiting_bytes:
                    raise
                hint = getattr(e, "retry_after_s", 0.0) or 0.05
                self.waiting_bytes += len(raw)
                m.ADMISSION_WAITING_BYTES.set(self.waiting_bytes)
                try:
                    await asyncio.sleep(min(max(hint / 2, 0.01), left))
                finally:
                    self.waiting_bytes -= len(raw)
                    m.ADMISSION_WAITING_BYTES.set(self.waiting_bytes)

    # ----------------------------------------------------------- unary calls
    @ge.handles_errors
    async def LogBatch(self, request: pb.LogBatchRequest,
                       context: grpc.aio.ServicerContext) -> pb.LogBatchResponse:
        with caller_credentials(context):  # ParamGuard may read the run's params upstream
            await self.core.log_batch(request)
        return pb.LogBatchResponse()

    @ge.handles_errors
    async def CreateRun(self, request: pb.CreateRunRequest,
                        context: grpc.aio.ServicerContext) -> pb.CreateRunResponse:
        with caller_credentials(context):  # a parent may be looked up upstream
            info = await self.core.create_run(request)
        return pb.CreateRunResponse(run=run_info_to_pb(info))

    @ge.handles_errors
    async def UpdateRun(self, request: pb.UpdateRunRequest,
                        context: grpc.aio.ServicerContext) -> pb.UpdateRunResponse:
        with caller_credentials(context):  # the run may be looked up upstream
            info = await self.core.update_run(request)
        return pb.UpdateRunResponse(run=run_info_to_pb(info)) if info else pb.UpdateRunResponse()


def add_to_server(server: grpc.aio.Server, servicer: IngestServicer) -> None:
    """Register the ingest handlers; Write receives raw bytes (parsed once, forwarded as-is)."""
    handlers = {
        "Write": grpc.stream_stream_rpc_method_handler(
            servicer.Write, request_deserializer=None,
            response_serializer=pb.WriteAck.SerializeToString),
        "LogBatch": grpc.unary_unary_rpc_method_handler(
            servicer.LogBatch, request_deserializer=pb.LogBatchRequest.FromString,
            response_serializer=pb.LogBatchResponse.SerializeToString),
        "CreateRun": grpc.unary_unary_rpc_method_handler(
            servicer.CreateRun, request_deserializer=pb.CreateRunRequest.FromString,
            response_serializer=pb.CreateRunResponse.SerializeToString),
        "UpdateRun": grpc.unary_unary_rpc_method_handler(
            servicer.UpdateRun, request_deserializer=pb.UpdateRunRequest.FromString,
            response_serializer=pb.UpdateRunResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
