"""Typed settings of the Kafka log (topic, producer, consumer), validated at construction.

The role CLI flags, and the `METRICFLOW_KAFKA_*` / `METRICFLOW_WRITER_*`
variables they default to (declared in `metricflow._env`), set these fields
(`metricflow.app.settings_from_args`).
"""

from __future__ import annotations

from dataclasses import dataclass

from metricflow.errors import InvalidArgument

_COMPRESSIONS = ("lz4", "zstd", "gzip", "snappy", "none")


@dataclass(frozen=True)
class TopicConfig:
    """Where the ingest log lives and how it is created if missing."""

    bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers."""
    topic: str = "metricflow.ingest.v1"
    """Topic name; metrics, run state, params and tags share it (keyed by run_id)."""
    partitions: int = 12
    """Partitions at creation; writers scale out up to this number."""
    replication: int = 1
    """Replication factor at creation; use 3 with min.insync.replicas=2 in production."""
    retention_ms: int = 7 * 24 * 3600 * 1000
    """How long the log is kept: the window in which writers can fall behind and recover."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Topic max.message.bytes; a client batch (up to the gRPC message limit) must fit."""

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise InvalidArgument("kafka bootstrap must not be empty", field="bootstrap")
        if not self.topic or len(self.topic) > 249:
            raise InvalidArgument(f"topic must be 1..249 chars, got {self.topic!r}",
                                  field="topic", received=self.topic)
        for name in ("partitions", "replication"):
            if getattr(self, name) < 1:
                raise InvalidArgument(f"{name} must be >= 1, got {getattr(self, name)}",
                                      field=name)


@dataclass(frozen=True)
class KafkaSinkConfig:
    """Producer side of the ingest node."""

    topic: TopicConfig = TopicConfig()
    """The log to write to."""
    compression: str = "lz4"
    """lz4, zstd, gzip, snappy or none (cramjam codecs).

    lz4 at `lz4_level` is the default. aiokafka's own lz4 level is 9 (LZ4HC), which
    took a large share of the ingest node's CPU, so zstd level 3 was the default
    until the level could be set (ingest/_kafka_codec.py). lz4 level 1 compresses
    several times faster than zstd and the writer decompresses it faster too
    (figures: docs/operations.md, "lz4 level 1")."""
    lz4_level: int = 1
    """Compression level when compression is lz4 (1 fast ... 9+ high compression)."""
    max_inflight_bytes: int = 256 * 1024 * 1024
    """Bound of bytes handed to the producer and not yet acked; beyond: RESOURCE_EXHAUSTED."""
    linger_ms: int = 2
    """Producer linger: small, batches are already large."""
    max_batch_bytes: int = 1024 * 1024
    """Producer record-batch size; a larger single message gets its own batch."""
    request_timeout_ms: int = 15_000
    """A produce that takes longer fails back to the client, which retries the same batch id."""
    dedup_window: int = 100_000
    """Recent acked batch ids; a client retry of one is acked without producing it again."""

    def __post_init__(self) -> None:
        if self.compression not in _COMPRESSIONS:
            raise InvalidArgument(f"compression must be one of {_COMPRESSIONS}, got "
                                  f"{self.compression!r}", field="compression")
        if not 1 <= self.lz4_level <= 16:
            raise InvalidArgument(f"lz4_level must be in [1, 16], got {self.lz4_level}",
                                  field="lz4_level", received=self.lz4_level)
        if self.max_inflight_bytes < 1024 * 1024:
            raise InvalidArgument("max_inflight_bytes must be at least 1 MiB",
                                  field="max_inflight_bytes", received=self.max_inflight_bytes)


@dataclass(frozen=True)
class WriterConfig:
    """Consumer side: the writer group that inserts into ClickHouse."""

    topic: TopicConfig = TopicConfig()
    """The log to read."""
    group_id: str = "metricflow-writer"
    """Consumer group; every writer of one ClickHouse database shares it."""
    max_rows: int = 1_000_000
    """Insert once this many points are pending.

    Each insert has a fixed cost (three inserts and two views in ClickHouse,
    new parts that are merged later), so a writer that is behind drains faster
    with larger inserts (figures in docs/operations.md); at low rates
    `linger_ms` cuts inserts much smaller anyway."""
    max_bytes: int = 64 * 1024 * 1024
    """Insert once this many value bytes are pending; bounds the writer's memory."""
    linger_ms: int = 200
    """Insert at the latest this long after the first pending message arrived."""
    backoff_initial_s: float = 0.2
    """First backoff after a failed insert; doubles up to backoff_max_s, with jitter."""
    backoff_max_s: float = 10.0
    """Longest backoff between insert attempts while ClickHouse is down."""
    lag_interval_s: float = 1.0
    """How often consumer lag per partition is measured."""
    session_timeout_ms: int = 10_000
    """Group session timeout: how fast a dead writer's partitions move to another."""

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < 1024:
            raise InvalidArgument("max_rows must be >= 1 and max_bytes >= 1024",
                                  field="max_rows")
        if self.linger_ms < 0:
            raise InvalidArgument("linger_ms must be >= 0", field="linger_ms")


def compression_arg(name: str) -> str | None:
    """aiokafka's compression_type for a config value ("none" -> None)."""
    return None if name == "none" else name
