"""The controller's aggregation of per-process ticks into totals and a time series."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from loadtests.loadtest._hist import LatencyHist
from loadtests.loadtest._resources import ResourceSample
from loadtests.loadtest._scenario import Phases

_CUMULATIVE = ("logged", "acked", "steps", "behind", "runs_started", "runs_done",
               "art_n", "art_bytes", "lag_timeouts")


def phase_at(p: Phases, t: float) -> str:
    """Phase name at t seconds after t0."""
    if t < 0:
        return "startup"
    if t < p.ramp_up_s:
        return "ramp_up"
    if t < p.ramp_up_s + p.steady_s or p.total_s == 0:
        return "steady"
    return "soak" if t < p.total_s else "drain"


def _pct(h: LatencyHist, q: float) -> float | None:
    v = h.percentile(q)
    return None if v is None else round(v, 3)


class Collector:
    """Folds process messages, query deltas and resource samples into one record."""

    def __init__(self, phases: Phases, t0: float) -> None:
        self.phases, self.t0 = phases, t0
        self.latest: dict[int, dict[str, Any]] = {}
        self.ack = LatencyHist()
        self.art = LatencyHist()
        self.lag = LatencyHist()
        self.lag_samples: list[tuple[float, float]] = []
        self.errors: Counter[str] = Counter()
        self.ack_method: str | None = None
        self.series: dict[str, list[Any]] = {k: [] for k in (
            "t_s", "phase", "logged_per_s", "acked_per_s", "ack_p50_ms", "ack_p95_ms",
            "ack_p99_ms", "lag_p50_ms", "lag_p99_ms", "search_p50_ms", "search_p99_ms",
            "history_p50_ms", "history_p99_ms", "server_cpu_pct", "server_rss_mb",
            "server_ingest_points_per_s", "errors_total")}
        self._tick_ack = LatencyHist()
        self._tick_lag = LatencyHist()
        self._points: dict[int, list[tuple[float, int, int]]] = {}
        self._prev: tuple[float, int, int] | None = None
        self._prev_res: tuple[float, ResourceSample] | None = None
        self.first_res: tuple[float, ResourceSample] | None = None
        self.last_res: tuple[float, ResourceSample] | None = None
        self.cpu_peak_pct = 0.0
        self.rss_peak_mb = 0.0

    def on_message(self, m: dict[str, Any]) -> None:
        """A 'tick' or 'final' message from a load process."""
        self.latest[m["proc"]] = m
        pts = self._points.setdefault(m["proc"], [])
        pts.append((m["t"], int(m["logged"]), int(m["acked"])))
        del pts[:-64]
        self.ack.add_sparse(m["ack"], m["ack_max"])
        self._tick_ack.add_sparse(m["ack"], m["ack_max"])
        self.art.add_sparse(m["art"], m["art_max"])
        for t, ms in m["lag"]:
            self.lag.record(ms)
            self._tick_lag.record(ms)
            self.lag_samples.append((round(t - self.t0, 3), round(ms, 3)))
        self.ack_method = self.ack_method or m.get("ack_method")

    def total(self, key: str) -> int:
        return sum(int(m.get(key, 0)) for m in self.latest.values())

    def process_errors(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for m in self.latest.values():
            c.update(m.get("errors", {}))
        return c

    def _counters_at(self, t: float) -> tuple[int, int]:
        """Logged and acked totals at time t, interpolated per process from its ticks.

        Process ticks are not aligned with the controller's; reading 'the latest'
        of each would alias into a saw-tooth, so rates come from interpolation.
        """
        logged = acked = 0.0
        for pts in self._points.values():
            ts = [p[0] for p in pts]
            logged += float(np.interp(t, ts, [p[1] for p in pts], left=0))
            acked += float(np.interp(t, ts, [p[2] for p in pts], left=0))
        return int(logged), int(acked)

    def tick(self, now: float, queries: dict[str, tuple[list[tuple[int, int]], float]],
             res: ResourceSample | None, query_errors: int, final: bool = False) -> dict[str, Any]:
        """Close one display interval; append a row to the series and return it.

        Counter rates are evaluated 0.6 s in the past (process ticks come every
        0.5 s), or at the newest tick when `final`.
        """
        if final:
            now = max([now] + [p[-1][0] for p in self._points.values()])
        t_eval = now if final else now - 0.6
        logged, acked = self._counters_at(t_eval)
        prev = self._prev or (t_eval, logged, acked)
        dt = t_eval - prev[0]
        row: dict[str, Any] = {"t_s": round(t_eval - self.t0, 3),
                               "phase": phase_at(self.phases, t_eval - self.t0)}
        row["logged_per_s"] = round((logged - prev[1]) / dt, 1) if dt > 0 else 0.0
        row["acked_per_s"] = round((acked - prev[2]) / dt, 1) if dt > 0 else 0.0
        self._prev = (t_eval, logged, acked)
        for q in (50, 95, 99):
            row[f"ack_p{q}_ms"] = _pct(self._tick_ack, q)
        row["lag_p50_ms"], row["lag_p99_ms"] = _pct(self._tick_lag, 50), _pct(self._tick_lag, 99)
        self._tick_ack, self._tick_lag = LatencyHist(), LatencyHist()
        for kind in ("search", "history"):
            h = LatencyHist()
            pairs, mx = queries.get(kind, ([], 0.0))
            h.add_sparse(pairs, mx)
            row[f"{kind}_p50_ms"], row[f"{kind}_p99_ms"] = _pct(h, 50), _pct(h, 99)
        row["server_cpu_pct"] = row["server_rss_mb"] = row["server_ingest_points_per_s"] = None
        if res is not None:
            if self.first_res is None:
                self.first_res = (now, res)
            if self._prev_res is not None:
                pt, pr = self._prev_res
                if now > pt:
                    row["server_cpu_pct"] = round(100 * (res.cpu_s - pr.cpu_s) / (now - pt), 1)
                    self.cpu_peak_pct = max(self.cpu_peak_pct, row["server_cpu_pct"])
                    if res.ingest_points is not None and pr.ingest_points is not None:
                        row["server_ingest_points_per_s"] = round(
                            (res.ingest_points - pr.ingest_points) / (now - pt), 1)
            row["server_rss_mb"] = round(res.rss_mb, 1)
            self.rss_peak_mb = max(self.rss_peak_mb, res.rss_mb)
            self._prev_res = self.last_res = (now, res)
        row["errors_total"] = sum(self.process_errors().values()) + query_errors
        for k, v in row.items():
            self.series[k].append(v)
        return row

    def sustained(self, ingest_end_s: float) -> tuple[float | None, dict[str, float | None]]:
        """Acked points/s over steady+soak up to ingest end, and per phase."""
        t, acked_rate = self.series["t_s"], self.series["acked_per_s"]
        phases = self.series["phase"]
        by_phase: dict[str, float | None] = {}
        for name in ("ramp_up", "steady", "soak"):
            vals = [r for ts, r, ph in zip(t, acked_rate, phases)
                    if ph == name and ts <= ingest_end_s + 1e-9]
            by_phase[name] = round(sum(vals) / len(vals), 1) if vals else None
        vals = [r for ts, r, ph in zip(t, acked_rate, phases)
                if ph in ("steady", "soak") and ts <= ingest_end_s + 1e-9]
        return (round(sum(vals) / len(vals), 1) if vals else None), by_phase
