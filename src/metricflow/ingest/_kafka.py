"""KafkaSink: the distributed IngestSink. Batches go to Apache Kafka, acked with acks=all.

The value of a metrics message is the WriteBatch exactly as the client sent it
(header kind=metrics); run state, params and tags travel as serialized
LogRecord (kind=record). The key is the run_id, so one run's messages stay in
one partition, in order. A batch's future resolves only after Kafka acked it;
a failed produce fails the future with UNAVAILABLE and the client resends the
same (client_id, seq), which the writer's dedup makes harmless.

Bytes handed to the producer and not yet acked are bounded: beyond the bound
`submit_*` raise ResourceExhausted at once, with a retry hint from the recent
ack rate, and nothing is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics
from metricflow.errors import ResourceExhausted, Unavailable
from metricflow.ingest import _kafka_metrics as km
from metricflow.ingest import _metrics as m
from metricflow.ingest._kafka_codec import use_lz4_level
from metricflow.ingest._kafka_config import KafkaSinkConfig, TopicConfig, compression_arg
from metricflow.ingest._startup_log import limit_client_errors

log = logging.getLogger(__name__)

KIND_METRICS = b"metrics"
KIND_RECORD = b"record"


def message_kind(record: Any) -> bytes:
    """A consumed ingest-log message's `kind` header (KIND_METRICS or KIND_RECORD)."""
    for k, v in record.headers or ():
        if k == "kind":
            return bytes(v)
    return KIND_METRICS  # producers before headers existed only wrote metrics


def batch_id_header(batch_id: tuple[str, int]) -> bytes:
    """The `batch_id` header: b"<client_id>:<seq>"."""
    return f"{batch_id[0]}:{batch_id[1]}".encode()


async def ensure_topic(cfg: TopicConfig, timeout_s: float = 30.0) -> bool:
    """Create the topic if missing; return True if this call created it."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # server extra
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap,
                                request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        if cfg.topic in await admin.list_topics():
            return False
        topic = NewTopic(cfg.topic, cfg.partitions, cfg.replication, topic_configs={
            "max.message.bytes": str(cfg.max_message_bytes),
            "retention.ms": str(cfg.retention_ms),
            # acks=all must mean "on every in-sync replica", and never on just one.
            "min.insync.replicas": str(min(2, cfg.replication)),
        })
        try:
            resp = await admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
        except TopicAlreadyExistsError:
            return False
        for _, code, *rest in getattr(resp, "topic_errors", []):
            if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS (a concurrent creator)
                raise Unavailable(f"creating topic {cfg.topic!r} failed: error {code} {rest}")
        log.info("created topic %s (%d partitions, rf=%d)", cfg.topic, cfg.partitions,
                 cfg.replication)
        return True
    finally:
        await admin.close()


METADATA_RETRY_S = 0.1


def pace_metadata_updates(client: Any, backoff_s: float) -> None:
    """After a failed metadata update, wait `backoff_s` before the next one can start.

    With the broker down, aiokafka's producer asks for metadata again as soon as an
    update fails (its sender loop waits only for the update), and a refused
    connection fails at once: the ingest node spent a whole core (1,002 of 1,000
    possible CPU ticks in 10 s, measured) and logged up to 12,000 lines a second.
    The wait is inside the update, so every waiter of it waits too. aiokafka's client
    calls `self._metadata_update`, so an attribute of the instance replaces it.
    """
    update = client._metadata_update

    async def paced(cluster: Any, topics: Any) -> Any:
        ok = await update(cluster, topics)
        if not ok:
            await asyncio.sleep(backoff_s)
        return ok

    client._metadata_update = paced


FATAL_PRODUCER_ERRORS = frozenset({
    "OutOfOrderSequenceNumber", "InvalidProducerEpoch", "ProducerFenced",
    "InvalidProducerIdMapping", "UnknownProducerId"})
"""aiokafka's errors (class names, aiokafka.errors) after which an idempotent producer's
sends keep failing: replace it."""
RESTART_MIN_INTERVAL_S = 1.0
RETIRE_TIMEOUT_S = 30.0


class KafkaSink:
    """IngestSink that produces to Kafka with an idempotent, acks=all producer."""

    def __init__(self, config: KafkaSinkConfig | None = None) -> None:
        self.config = config or KafkaSinkConfig()
        self._producer: Any = None
        self._inflight_bytes = 0
        self.peak_inflight_bytes = 0
        self._acked: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._pending: dict[tuple[str, int], asyncio.Future[None]] = {}
        self._rate_bytes_s = 50e6  # optimistic until the first acks are measured
        self._win_t0, self._win_bytes = time.monotonic(), 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart_lock: asyncio.Lock | None = None
        self._last_restart = -RESTART_MIN_INTERVAL_S
        self._started = False
        km.INFLIGHT_LIMIT.set(self.config.max_inflight_bytes)

    @property
    def inflight_bytes(self) -> int:
        """Bytes handed to the producer and not yet acked or failed."""
        return self._inflight_bytes

    @property
    def ready(self) -> bool:
        """True once the producer is connected and its sender is alive."""
        p = self._producer
        return bool(self._started and p is not None and not p._closed
                    and not p._sender.sender_task.done())

    def _new_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer  # server extra

        c = self.config
        limit_client_errors()
        if c.compression == "lz4":
            use_lz4_level(c.lz4_level)
        producer = AIOKafkaProducer(
            bootstrap_servers=c.topic.bootstrap, acks="all", enable_idempotence=True,
            compression_type=compression_arg(c.compression), linger_ms=c.linger_ms,
            max_batch_size=c.max_batch_bytes, max_request_size=c.topic.max_message_bytes,
            request_timeout_ms=c.request_timeout_ms, retry_backoff_ms=100,
        )
        pace_metadata_updates(producer.client, METADATA_RETRY_S)
        return producer

    async def start(self) -> None:
        """Create the topic if missing and connect the producer (retrying until it works)."""
        self._restart_lock = asyncio.Lock()
        delay = 0.2
        while True:
            try:
                await ensure_topic(self.config.topic)
                self._producer = self._new_producer()
                await self._producer.start()
                break
            except Exception as e:  # Kafka not up yet: wait for it
                if self._producer is not None:
                    await self._producer.stop()
                    self._producer = None
                log.warning("kafka at %s not ready (%s); retrying in %.1fs",
                            self.config.topic.bootstrap, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._started = True

    # ------------------------------------------------------------------ submit
    def _admit(self, nbytes: int) -> None:
        limit = self.config.max_inflight_bytes
        if self._inflight_bytes and self._inflight_bytes + nbytes > limit:
            m.REJECTED.labels(reason="kafka_inflight_full").inc()
            # Time to drain what is in flight at the recent ack rate, with bounds.
            hint = min(2.0, max(0.05, self._inflight_bytes / max(self._rate_bytes_s, 1.0)))
            raise ResourceExhausted(
                f"ingest node has {self._inflight_bytes} bytes in flight to Kafka; the limit "
                f"is {limit}", retry_after_s=hint, field="inflight_bytes", limit=limit)
        if not self._started:
            raise Unavailable("ingest node is not connected to Kafka yet")

    def submit_metrics(self, batch: DecodedMetrics, raw: bytes,
                       batch_id: tuple[str, int]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if batch_id in self._acked:
            km.CLIENT_RETRIES.inc()
            m.DUPLICATE_BATCHES.inc()
            fut: asyncio.Future[None] = loop.create_future()
            fut.set_result(None)
            return fut
        pending = self._pending.get(batch_id)
        if pending is not None and not pending.done():
            km.CLIENT_RETRIES.inc()
            return asyncio.shield(pending)  # the earlier send will ack both
        self._admit(len(raw))
        headers = [("kind", KIND_METRICS), ("batch_id", batch_id_header(batch_id))]
        fut = self._spawn(raw, batch.run_id, headers, "metrics", batch_id)
        self._pending[batch_id] = fut
        return fut

    def submit_record(self, record: pb.LogRecord, key: str) -> asyncio.Future[None]:
        value = record.SerializeToString()
        self._admit(len(value))
        return self._spawn(value, key, [("kind", KIND_RECORD)], "record", None)

    def _spawn(self, value: bytes, key: str, headers: list[tuple[str, bytes]], kind: str,
               batch_id: tuple[str, int] | None) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._inflight_bytes += len(value)
        km.INFLIGHT_BYTES.set(self._inflight_bytes)
        if self._inflight_bytes > self.peak_inflight_bytes:
            self.peak_inflight_bytes = self._inflight_bytes
            km.INFLIGHT_PEAK.set(self._inflight_bytes)
        task = loop.create_task(self._produce(value, key, headers, kind, batch_id, fut))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fut

    async def _produce(self, value: bytes, key: str, headers: list[tuple[str, bytes]],
                       kind: str, batch_id: tuple[str, int] | None,
                       fut: asyncio.Future[None]) -> None:
        t0 = time.perf_counter()
        try:
            producer = self._producer
            delivery = await producer.send(self.config.topic.topic, value=value,
                                           key=key.encode(), headers=headers)
            await delivery
        except Exception as e:  # every failure goes back to the client
            km.PRODUCER_ERRORS.labels(error=type(e).__name__).inc()
            log.warning("produce of a %s message failed: %s: %s", kind, type(e).__name__, e)
            if not fut.done():
                fut.set_exception(Unavailable(f"kafka produce failed: {type(e).__name__}: {e}",
                                              retry_after_s=0.5))
            await self._maybe_restart(producer, e)
        else:
            dt = time.perf_counter() - t0
            km.PRODUCE_SECONDS.observe(dt)
            km.PRODUCED_MESSAGES.labels(kind=kind).inc()
            km.PRODUCED_BYTES.labels(kind=kind).inc(len(value))
            self._note_acked(len(value))
            if batch_id is not None:
                self._acked[batch_id] = None
                if len(self._acked) > self.config.dedup_window:
                    self._acked.popitem(last=False)
            if not fut.done():
                fut.set_result(None)
        finally:
            self._inflight_bytes -= len(value)
            km.INFLIGHT_BYTES.set(self._inflight_bytes)
            if batch_id is not None and self._pending.get(batch_id) is fut:
                del self._pending[batch_id]

    def _note_acked(self, nbytes: int) -> None:
        # Ack rate over ~0.5 s windows (EWMA) feeds the RESOURCE_EXHAUSTED retry hint.
        self._win_bytes += nbytes
        now = time.monotonic()
        if now - self._win_t0 >= 0.5:
            rate = self._win_bytes / (now - self._win_t0)
            self._rate_bytes_s = 0.5 * self._rate_bytes_s + 0.5 * rate
            self._win_t0, self._win_bytes = now, 0

    async def _maybe_restart(self, failed: Any, error: BaseException | None = None) -> None:
        """Replace the producer if its sender died, or if `error` says the broker no longer
        takes its idempotent sequence (`FATAL_PRODUCER_ERRORS`).

        After a broker restart, a producer can get OutOfOrderSequenceNumber for a
        partition on every send while its sender stays alive: no send of it to that
        partition succeeds again, and its clients retried for good. A new producer gets
        a new producer id and fresh sequences; what the old one had in flight fails back
        to its clients, whose retries the writers deduplicate by batch id.
        """
        assert self._restart_lock is not None
        async with self._restart_lock:
            p = self._producer
            if p is not failed or p is None:
                return  # someone already replaced it
            alive = not p._closed and not p._sender.sender_task.done()
            fatal = error is not None and type(error).__name__ in FATAL_PRODUCER_ERRORS
            if alive and not fatal:
                return
            wait = self._last_restart + RESTART_MIN_INTERVAL_S - time.monotonic()
            if wait > 0:  # a new producer failing the same way: do not spin
                await asyncio.sleep(wait)
            km.PRODUCER_RESTARTS.inc()
            log.warning("kafka producer %s; starting a new one",
                        "is dead" if not alive else f"got {type(error).__name__}")
            self._last_restart = time.monotonic()
            fresh = self._new_producer()
            try:
                await fresh.start()
            except Exception as e:  # the old one stays; the next failed send tries again
                log.warning("starting a new kafka producer failed: %s: %s",
                            type(e).__name__, e)
                with contextlib.suppress(Exception):
                    await fresh.stop()
                if alive:
                    return
            else:
                self._producer = fresh
            # The old one goes in the background: its stop() waits for its pending
            # batches, which an idempotent producer never expires while a partition is
            # unreachable; new sends must not wait for that.
            task = asyncio.get_running_loop().create_task(self._retire(p))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _retire(self, p: Any) -> None:
        try:
            await asyncio.wait_for(p.stop(), RETIRE_TIMEOUT_S)
        except Exception as e:  # timed out or failed: it is replaced either way
            log.warning("the replaced kafka producer did not stop cleanly: %s: %s",
                        type(e).__name__, e)

    async def close(self) -> None:
        """Wait for in-flight produces (bounded by the request timeout), then stop."""
        self._started = False
        if self._tasks:
            await asyncio.wait(list(self._tasks),
                               timeout=self.config.request_timeout_ms / 1000 + 5)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
