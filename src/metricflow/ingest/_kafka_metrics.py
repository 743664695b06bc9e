"""Prometheus metrics of the distributed write path (Kafka producer and writer group).

Declared once per process on the default registry; the embedded path's metrics
(`ingest/_metrics.py`) are reused where they mean the same thing (points in,
insert rows and seconds).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LAT = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300)

# ---------------------------------------------------------------- ingest -> Kafka
PRODUCED_MESSAGES = Counter("metricflow_kafka_produced_messages_total",
                            "Messages acked by Kafka (acks=all)", ["kind"])
PRODUCED_BYTES = Counter("metricflow_kafka_produced_bytes_total",
                         "Value bytes acked by Kafka", ["kind"])
PRODUCE_SECONDS = Histogram("metricflow_kafka_produce_seconds",
                            "From handing a message to the producer to its Kafka ack",
                            buckets=_LAT)
PRODUCER_ERRORS = Counter("metricflow_kafka_producer_errors_total",
                          "Messages whose produce failed (the client retries them)", ["error"])
PRODUCER_RESTARTS = Counter("metricflow_kafka_producer_restarts_total",
                            "Producers replaced after a fatal error")
CLIENT_RETRIES = Counter("metricflow_kafka_client_retries_total",
                         "Batches a client sent again; acked from the recent-id window when "
                         "already durable, produced again otherwise")
INFLIGHT_BYTES = Gauge("metricflow_kafka_inflight_bytes",
                       "Bytes handed to the producer and not yet acked")
INFLIGHT_PEAK = Gauge("metricflow_kafka_inflight_peak_bytes",
                      "Highest in-flight bytes since the process started")
INFLIGHT_LIMIT = Gauge("metricflow_kafka_inflight_limit_bytes",
                       "Bound of in-flight bytes; beyond it ingest answers RESOURCE_EXHAUSTED")

# ---------------------------------------------------------------- Kafka -> ClickHouse
CONSUMED_MESSAGES = Counter("metricflow_writer_consumed_messages_total",
                            "Messages taken from Kafka", ["kind"])
CONSUMED_BYTES = Counter("metricflow_writer_consumed_bytes_total", "Value bytes taken from Kafka")
WRITTEN_BATCHES = Counter("metricflow_writer_batches_total",
                          "Metric batches inserted (replays included)")
INSERT_BYTES = Histogram("metricflow_writer_insert_bytes", "Kafka value bytes per store insert",
                         buckets=(1e4, 1e5, 1e6, 4e6, 16e6, 64e6, 256e6))
INSERT_FAILURES = Counter("metricflow_writer_insert_failures_total",
                          "Store inserts that failed and will be retried after a backoff")
INSERT_BACKOFF = Gauge("metricflow_writer_backoff_seconds",
                       "Current backoff before the next insert attempt (0 = healthy)")
COMMITS = Counter("metricflow_writer_commits_total", "Offset commits after successful inserts")
COMMIT_FAILURES = Counter("metricflow_writer_commit_failures_total",
                          "Offset commits that failed (the batch is replayed; dedup hides it)")
DECODE_ERRORS = Counter("metricflow_writer_invalid_messages_total",
                        "Messages skipped because they cannot be decoded", ["reason"])
RECORD_ERRORS = Counter("metricflow_writer_record_errors_total",
                        "Log records rejected when applied (e.g. run does not exist)", ["reason"])
REBALANCES = Counter("metricflow_writer_rebalances_total", "Partition revocations and assignments",
                     ["event"])
DROPPED_ON_REVOKE = Counter("metricflow_writer_uncommitted_dropped_total",
                            "Uncommitted messages dropped on revoke (the next owner replays them)")
CONSUMER_LAG = Gauge("metricflow_writer_consumer_lag_messages",
                     "Log end offset minus committed offset", ["topic", "partition"])
PENDING_BYTES = Gauge("metricflow_writer_pending_bytes",
                      "Value bytes consumed and not yet inserted (bounded by max_bytes)")
PENDING_PEAK = Gauge("metricflow_writer_pending_peak_bytes",
                     "Highest pending bytes since the process started")
E2E_LAG = Histogram("metricflow_writer_e2e_lag_seconds",
                    "From the Kafka record timestamp (set when ingest produced it, before its "
                    "ack) to the end of its store insert: when it became queryable",
                    buckets=_LAG)
