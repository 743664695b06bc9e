"""Prometheus metrics of the write path (one registry, declared once)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POINTS_IN = Counter("metricflow_ingest_points_total", "Metric points accepted by ingest")
BATCHES_IN = Counter("metricflow_ingest_batches_total", "Metric batches accepted by ingest")
BYTES_IN = Counter("metricflow_ingest_bytes_total", "Bytes of metric batches accepted")
REJECTED = Counter("metricflow_ingest_rejected_total", "Rejected inputs by reason", ["reason"])
DUPLICATE_BATCHES = Counter("metricflow_ingest_duplicate_batches_total",
                            "Retried batches acked without a second insert")
BATCH_SECONDS = Histogram("metricflow_ingest_batch_seconds",
                          "From receipt of a batch to its ack",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10))
POINTS_WRITTEN = Counter("metricflow_writer_points_total", "Metric points inserted into the store")
INSERT_SECONDS = Histogram("metricflow_writer_insert_seconds", "Duration of store inserts",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
INSERT_ROWS = Histogram("metricflow_writer_insert_rows", "Rows per store insert",
                        buckets=(100, 1000, 10_000, 50_000, 100_000, 250_000, 1_000_000))
ADMISSION_WAITING_BYTES = Gauge("metricflow_ingest_admission_waiting_bytes",
                                "Bytes of batches waiting for room in a full sink")
