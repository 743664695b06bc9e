"""Prometheus metrics of a serve process (one registry per process, no globals)."""

from __future__ import annotations

from typing import Any

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServeMetrics:
    """Counters and histograms per variant and version; children cached per label set."""

    def __init__(self, deployment: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deployment = deployment
        self.requests = Counter("metricflow_serve_requests", "Requests answered, per variant, "
                                "version and HTTP status", ["deployment", "variant", "version",
                                                            "status"], registry=r)
        self.errors = Counter("metricflow_serve_errors", "Requests the model failed (5xx)",
                              ["deployment", "variant", "version"], registry=r)
        self.bad_input = Counter("metricflow_serve_bad_input", "Requests refused as bad input "
                                 "(4xx)", ["deployment", "variant", "version"], registry=r)
        self.latency = Histogram("metricflow_serve_latency_seconds", "Time from request parsed "
                                 "to answer ready", ["deployment", "variant", "version"],
                                 buckets=_BUCKETS, registry=r)
        self.shadow = Counter("metricflow_serve_shadow_requests", "Mirrored requests per shadow "
                              "variant and outcome", ["deployment", "variant", "version",
                                                      "outcome"], registry=r)
        self.load_failures = Counter("metricflow_serve_load_failures", "Versions that failed to "
                                     "load (traffic stayed on the old one)",
                                     ["deployment", "variant", "version"], registry=r)
        self.switches = Counter("metricflow_serve_switches", "Variants switched to a new "
                                "version or endpoint", ["deployment", "variant"], registry=r)
        self.tripped = Gauge("metricflow_serve_variant_out_of_rotation", "1 while a guardrail "
                             "holds the variant out of rotation", ["deployment", "variant"],
                             registry=r)
        self.loaded = Gauge("metricflow_serve_variant_loaded_version", "The version a variant "
                            "serves (0 for an endpoint)", ["deployment", "variant"], registry=r)
        self.batch_size = Histogram("metricflow_serve_batch_requests", "Requests per model call "
                                    "(adaptive batching)", ["deployment", "variant"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.log_dropped = Counter("metricflow_serve_prediction_logs_dropped", "Prediction "
                                   "points dropped (no run yet, or the client buffer full)",
                                   ["deployment"], registry=r)
        self._children: dict[tuple[str, ...], tuple[Any, ...]] = {}

    def observe(self, variant: str, version: str, status: int, seconds: float) -> None:
        key = (variant, version, str(status))
        ch = self._children.get(key)
        if ch is None:
            d = self.deployment
            ch = (self.requests.labels(d, variant, version, str(status)),
                  self.latency.labels(d, variant, version),
                  self.errors.labels(d, variant, version) if status >= 500 else
                  self.bad_input.labels(d, variant, version) if status >= 400 else None)
            self._children[key] = ch
        ch[0].inc()
        ch[1].observe(seconds)
        if ch[2] is not None:
            ch[2].inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))
