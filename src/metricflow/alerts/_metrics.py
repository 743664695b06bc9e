"""Prometheus metrics of alerts and webhooks (one registry, declared once; on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVALUATED = Counter("metricflow_alerts_evaluated_points_total",
                    "Metric points the alert evaluator looked at")
DROPPED = Counter("metricflow_alerts_dropped_points_total",
                  "Metric points not evaluated: the evaluator's queue was full")
BACKPRESSURE = Counter("metricflow_alerts_consumer_wait_seconds_total",
                       "Time the alerts role's consumer waited for room in the evaluator's "
                       "queue before reading more (the log keeps what it has not read)")
TRANSITIONS = Counter("metricflow_alerts_transitions_total",
                      "Alert state changes announced", ["state"])
DELIVERIES = Counter("metricflow_webhook_attempts_total",
                     "Webhook delivery attempts by result", ["result"])
CPU = Counter("metricflow_alerts_cpu_seconds_total",
              "CPU time of the alerts threads by part: evaluate (rules over batches), "
              "timer, write (alert states and their deliveries), consume (the alerts role "
              "decoding what it read), dispatch (webhook sending)", ["part"])
STAGE = Histogram("metricflow_alerts_stage_seconds",
                  "Where an alert's latency goes, per stage: consume (Kafka: a poll's oldest "
                  "record produced -> read), queue (handed to the evaluator -> evaluated), "
                  "write (evaluated -> state and deliveries committed), deliver (claimed -> "
                  "the receiver answered)", ["stage"],
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0))
