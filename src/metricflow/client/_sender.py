"""The sender thread: streams drained batches over one gRPC bidi stream.

It owns an asyncio loop in its own thread. A bounded window of batches is in
flight; each stays (and keeps its bytes counted in the accumulator) until the
server acks it as durable. On a broken stream it reconnects with backoff and
resends every unacknowledged batch with its original (client_id, seq), so the
server can drop duplicates. RESOURCE_EXHAUSTED acks are resent after the
server's retry hint. A non-retriable rejection is stored and re-raised to the
caller on its next call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass

import grpc

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import encode_metrics
from metricflow.client._accumulator import Accumulator, DrainedBatch
from metricflow.errors import MetricflowError, error_from_code

log = logging.getLogger(__name__)


@dataclass
class _Inflight:
    msg: pb.WriteBatch
    nbytes: int
    points: int


class Sender:
    """Background sender of one client."""

    def __init__(self, target: str, acc: Accumulator, linger_s: float, max_inflight: int = 64,
                 channel_options: list | None = None, credentials: object = None,
                 metadata: tuple = (), max_inflight_bytes: int = 16 << 20) -> None:
        self.target, self.acc, self.linger_s = target, acc, linger_s
        # The window: at most this many batches and (beyond the first) bytes unacked.
        # A client logging to many runs drains one batch per run, so a small count
        # window made it wait for many group commits per drain (soak: ack p50 2.0 s
        # with 8, 0.44 s with 64); the byte bound keeps large batches from piling up
        # on the server.
        self.max_inflight, self.max_inflight_bytes = max_inflight, max_inflight_bytes
        self._inflight_bytes = 0
        self.client_id = uuid.uuid4().hex
        self._options = channel_options or []
        self._credentials = credentials
        self._metadata = metadata
        self._seq = 0
        self._inflight: OrderedDict[int, _Inflight] = OrderedDict()
        self._retry: list[int] = []  # seqs the server asked us to resend later
        # Drained and encoded, waiting for a window slot. Its bytes stay counted
        # in the accumulator until acked, so this is bounded too.
        self._queued: deque[_Inflight] = deque()
        self._acked: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._wake: asyncio.Event | None = None
        self._closing = False
        self.error: MetricflowError | None = None
        self.acked_points = 0
        self.reconnects = 0
        acc.on_full_batch = self.wake
        self._thread = threading.Thread(target=self._run, name="metricflow-sender", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------- thread API
    def wake(self) -> None:
        if self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def close(self, timeout: float) -> None:
        self._closing = True
        self.wake()
        self._thread.join(timeout)

    def take_error(self) -> MetricflowError | None:
        err, self.error = self.error, None
        return err

    # ------------------------------------------------------------ the loop
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        # grpc.aio may still deliver completion callbacks to this loop after the
        # channel closed; let them drain instead of closing the loop under them.
        self._loop.run_until_complete(asyncio.sleep(0.05))

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        backoff = 0.05
        while True:
            if (self._closing and not self._inflight and not self._queued
                    and not self.acc.used_bytes):
                return
            try:
                await self._stream_once()
                backoff = 0.05
            except (grpc.aio.AioRpcError, ConnectionError) as e:
                self.reconnects += 1
                # Loud only when data is waiting; an idle client reconnects quietly.
                level = logging.WARNING if self.acc.used_bytes else logging.DEBUG
                log.log(level, "metricflow stream to %s broke (%s); retrying in %.2fs",
                        self.target, str(e).splitlines()[0] if str(e) else e, backoff)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 5.0)

    def _channel(self) -> grpc.aio.Channel:
        if self._credentials is not None:
            return grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
        return grpc.aio.insecure_channel(self.target, options=self._options)

    async def _stream_once(self) -> None:
        async with self._channel() as channel:
            call = channel.stream_stream(
                "/metricflow.ingest.v1.IngestService/Write",
                request_serializer=pb.WriteBatch.SerializeToString,
                response_deserializer=pb.WriteAck.FromString,
            )(metadata=self._metadata or None)
            self._retry.clear()  # everything unacknowledged is resent below anyway
            reader = asyncio.ensure_future(self._read_acks(call))
            try:
                # Resend what the previous stream left unacknowledged, in order.
                for item in list(self._inflight.values()):
                    await call.write(item.msg)
                await self._send_loop(call, reader)
            finally:
                reader.cancel()
                call.cancel()

    async def _send_loop(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Future) -> None:
        while True:
            _raise_if_done(reader)
            if (self._closing and not self.acc.buffered_points and not self._retry
                    and not self._queued):
                if not self._inflight:
                    await call.done_writing()
                    return
                await asyncio.sleep(0.01)
                continue
            if not self._queued:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.linger_s)  # type: ignore[union-attr]
                except TimeoutError:
                    pass
                self._wake.clear()  # type: ignore[union-attr]
            await self._write_retries(call)
            for batch in self.acc.drain():
                msg = self._encode(batch)
                self._queued.append(_Inflight(msg, batch.nbytes, len(batch.values)))
            while self._queued:
                await self._wait_window(call, reader, self._queued[0].nbytes)
                item = self._queued.popleft()
                # In flight before the write: if the stream breaks now, it is resent.
                self._inflight[item.msg.seq] = item
                self._inflight_bytes += item.nbytes
                await call.write(item.msg)

    async def _write_retries(self, call: grpc.aio.StreamStreamCall) -> None:
        retry, self._retry = self._retry, []
        for seq in retry:
            if (item := self._inflight.get(seq)) is not None:
                await call.write(item.msg)

    def _window_full(self, nbytes: int) -> bool:
        return bool(self._inflight) and (
            len(self._inflight) >= self.max_inflight
            or self._inflight_bytes + nbytes > self.max_inflight_bytes)

    async def _wait_window(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Future,
                           nbytes: int) -> None:
        """Wait for a free in-flight slot; give up if the ack stream died meanwhile.

        Batches the server pushed back stay in flight until resent, so while
        waiting we also write the retries that fall due (they free the slots).
        """
        while self._window_full(nbytes):
            _raise_if_done(reader)
            await self._write_retries(call)
            self._acked.clear()  # type: ignore[union-attr]
            waiter = asyncio.ensure_future(self._acked.wait())  # type: ignore[union-attr]
            try:
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    def _encode(self, b: DrainedBatch) -> pb.WriteBatch:
        self._seq += 1
        msg = pb.WriteBatch(client_id=self.client_id, seq=self._seq, run_id=b.run_id)
        encode_metrics(msg.metrics, b.keys, b.key_index, b.steps, b.timestamps, b.values)
        return msg

    async def _read_acks(self, call: grpc.aio.StreamStreamCall) -> None:
        async for ack in call:
            item = self._inflight.get(ack.seq)
            if item is None:
                continue  # an ack of a resent batch that was already acked
            if ack.ok:
                self.acked_points += ack.points  # before _finish frees the buffer space
                self._finish(ack.seq, item)
                continue
            err = error_from_code(ack.error_code, ack.error_message,
                                  retry_after_s=ack.retry_after_s)
            if err.retriable:
                delay = ack.retry_after_s or 0.1
                asyncio.get_running_loop().call_later(
                    delay * (0.5 + random.random()), self._resend, ack.seq)
            else:
                log.error("metricflow rejected a batch of run %s: %s", item.msg.run_id, err)
                self.error = err
                self._finish(ack.seq, item)

    def _resend(self, seq: int) -> None:
        # Writes happen only in the send loop (gRPC forbids concurrent writes).
        self._retry.append(seq)
        self._wake.set()  # type: ignore[union-attr]
        self._acked.set()  # type: ignore[union-attr] - wakes a full-window wait too

    def _finish(self, seq: int, item: _Inflight) -> None:
        del self._inflight[seq]
        self._inflight_bytes -= item.nbytes
        self._acked.set()  # type: ignore[union-attr]
        self.acc.release(item.nbytes)


def _raise_if_done(reader: asyncio.Future) -> None:
    """Re-raise the ack reader's failure (or report its end) as a broken stream."""
    if reader.done():
        reader.result()
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                   grpc.aio.Metadata(), "ack stream ended")
