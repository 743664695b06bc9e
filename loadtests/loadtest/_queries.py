"""Dashboard-like read load during ingest: searches and metric-history reads."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from loadtests.loadtest._hist import LatencyHist
from loadtests.loadtest._worker import error_key


class QueryLoad:
    """Threads issuing searches and history reads at target rates until stopped."""

    def __init__(self, client: Any, experiment_id: str, key: str, threads: int,
                 search_qps: float, history_qps: float) -> None:
        self.client, self.exp, self.key = client, experiment_id, key
        self.threads, self.search_qps, self.history_qps = threads, search_qps, history_qps
        self.hists = {"search": LatencyHist(), "history": LatencyHist()}
        self.total = {"search": LatencyHist(), "history": LatencyHist()}
        self.errors: Counter[str] = Counter()
        self.history_points = 0
        self._runs: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        if not self.threads or not (self.search_qps or self.history_qps):
            return
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, args=(i,), name=f"loadtest-query-{i}",
                                 daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(30)

    def take(self) -> dict[str, tuple[list[tuple[int, int]], float]]:
        """Per-kind histogram deltas since the last take (for the time series)."""
        return {k: h.take() for k, h in self.hists.items()}

    def _record(self, kind: str, ms: float) -> None:
        self.hists[kind].record(ms)
        self.total[kind].record(ms)

    def _loop(self, i: int) -> None:
        total_qps = self.search_qps + self.history_qps
        period = self.threads / total_qps
        p_search = self.search_qps / total_qps
        rnd = random.Random(i)
        next_t = time.monotonic() + rnd.random() * period
        while not self._stop.is_set():
            delay = next_t - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            next_t = max(next_t + period, time.monotonic() - period)
            with self._lock:
                runs = list(self._runs)
            if rnd.random() < p_search or not runs:
                self._search()
            else:
                self._history(rnd.choice(runs))

    def _search(self) -> None:
        t = time.perf_counter()
        try:
            runs, _ = self.client.search_runs(
                [self.exp], filter_string=f"metrics.{self.key} > 8",
                order_by=[f"metrics.{self.key} DESC"], max_results=100)
        except Exception as e:  # counted by type
            self.errors[error_key("search", e)] += 1
            return
        self._record("search", (time.perf_counter() - t) * 1000)
        if runs:
            with self._lock:
                self._runs = [r.info.run_id for r in runs]

    def _history(self, run_id: str) -> None:
        t = time.perf_counter()
        try:
            h = self.client.get_metric_history(run_id, self.key)
        except Exception as e:
            self.errors[error_key("history", e)] += 1
            return
        self._record("history", (time.perf_counter() - t) * 1000)
        self.history_points += len(h.values)
