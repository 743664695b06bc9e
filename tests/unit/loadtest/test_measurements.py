"""Histogram percentiles, Prometheus parsing, phase labels and the rate interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from loadtests.loadtest._collect import Collector, phase_at
from loadtests.loadtest._hist import LatencyHist
from loadtests.loadtest._resources import parse_prometheus
from loadtests.loadtest._scenario import Phases


def test_hist_percentiles_match_numpy_within_bucket_resolution() -> None:
    rng = np.random.default_rng(1)
    xs = rng.lognormal(mean=3.0, sigma=1.2, size=50_000)
    h = LatencyHist()
    h.record(xs[:25_000])
    other = LatencyHist()
    other.record(xs[25_000:])
    h.add_sparse(*other.take())
    assert other.total == 0  # take() resets
    assert h.total == xs.size
    for q in (50, 95, 99):
        assert h.percentile(q) == pytest.approx(np.percentile(xs, q), rel=0.06)
    assert h.summary()["max"] == pytest.approx(xs.max(), rel=1e-6)


def test_empty_hist_reports_none() -> None:
    assert LatencyHist().summary() == {"p50": None, "p95": None, "p99": None, "max": None,
                                       "count": 0}


def test_parse_prometheus_sums_labelled_samples() -> None:
    text = """# HELP process_cpu_seconds_total x
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.048576e+08
metricflow_ingest_points_total{node="a"} 100.0
metricflow_ingest_points_total{node="b"} 50.0
metricflow_ingest_points_created 1.7e9
"""
    got = parse_prometheus(text, ("process_cpu_seconds_total", "process_resident_memory_bytes",
                                  "metricflow_ingest_points_total"))
    assert got == {"process_cpu_seconds_total": 12.5,
                   "process_resident_memory_bytes": 104857600.0,
                   "metricflow_ingest_points_total": 150.0}


def test_phase_at() -> None:
    p = Phases(ramp_up_s=10, steady_s=20, soak_s=30)
    assert [phase_at(p, t) for t in (-1, 0, 9.9, 10, 29.9, 30, 59.9, 60)] == [
        "startup", "ramp_up", "ramp_up", "steady", "steady", "soak", "soak", "drain"]
    assert phase_at(Phases(0, 0, 0), 1000) == "steady"  # step-bound scenarios


def _msg(proc: int, t: float, logged: int) -> dict:
    return {"kind": "tick", "proc": proc, "t": t, "logged": logged, "acked": logged,
            "ack": [], "ack_max": 0.0, "art": [], "art_max": 0.0, "lag": [], "errors": {}}


def test_rates_are_interpolated_not_aliased() -> None:
    """Two processes at 1,000 points/s each, ticking out of phase with the controller."""
    col = Collector(Phases(0, 100, 0), t0=0.0)
    for k in range(0, 40):
        t = k * 0.5
        col.on_message(_msg(0, t + 0.1, int(1000 * (t + 0.1))))
        col.on_message(_msg(1, t + 0.37, int(1000 * (t + 0.37))))
    rates = [col.tick(now, {}, None, 0)["acked_per_s"] for now in np.arange(3.0, 19.0, 1.0)]
    assert all(r == pytest.approx(2000, rel=0.01) for r in rates[1:]), rates
