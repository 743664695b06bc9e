"""Prometheus metrics of alerts and webhooks (one registry, declared once; on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

EVALUATED = Counter("metricflow_alerts_evaluated_points_total",
                    "Metric points the alert evaluator looked at")
DROPPED = Counter("metricflow_alerts_dropped_points_total",
                  "Metric points not evaluated: the evaluator's queue was full")
TRANSITIONS = Counter("metricflow_alerts_transitions_total",
                      "Alert state changes announced", ["state"])
DELIVERIES = Counter("metricflow_webhook_attempts_total",
                     "Webhook delivery attempts by result", ["result"])
CPU = Counter("metricflow_alerts_cpu_seconds_total",
              "CPU time of the alert evaluator's threads (evaluation and timer)", ["part"])
