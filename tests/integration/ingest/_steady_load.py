"""A paced, deterministic logging load for fault tests, and what it should leave stored.

Each run is logged by its own thread at `steps_per_s` steps of `keys` keys, through
the real metricflow Client, until `stop()`. Values are a function of (seed, run,
step, key), so the expected count and sum are known exactly afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

_TABLE_ROWS = 1024  # step s of run r logs row s % _TABLE_ROWS of run r's table


class SteadyLoad:
    """Logs deterministic points for `run_ids` from one thread per run until stopped."""

    def __init__(self, client: object, run_ids: list[str], *, keys: int = 10,
                 steps_per_s: float = 200.0, seed: int = 0) -> None:
        self.client, self.run_ids, self.keys = client, list(run_ids), keys
        self.steps_per_s = steps_per_s
        self.names = [f"m{k}" for k in range(keys)]
        self.tables = [np.random.default_rng(seed * 1000 + r).random((_TABLE_ROWS, keys)) * 100
                       for r in range(len(run_ids))]
        self.steps = [0] * len(run_ids)
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._one, args=(r,), daemon=True,
                                          name=f"load-{r}") for r in range(len(run_ids))]

    def _one(self, r: int) -> None:
        rows = self.tables[r].tolist()
        tick = 0.05
        per_tick = max(1, round(self.steps_per_s * tick))
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                for _ in range(per_tick):
                    step = self.steps[r]
                    self.client.log_metrics(  # type: ignore[attr-defined]
                        self.run_ids[r], dict(zip(self.names, rows[step % _TABLE_ROWS])),
                        step=step)
                    self.steps[r] = step + 1
                next_at += tick
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as e:  # reported by stop()
            self.errors.append(e)

    def start(self) -> SteadyLoad:
        for t in self._threads:
            t.start()
        return self

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def logged(self) -> int:
        """Points handed to log_metrics so far."""
        return sum(self.steps) * self.keys

    def stop(self, flush_timeout: float = 180.0) -> None:
        """Stop logging and flush; raises what a logging thread raised."""
        self._stop.set()
        for t in self._threads:
            t.join(30)
        if self.errors:
            raise self.errors[0]
        self.client.flush(timeout=flush_timeout)  # type: ignore[attr-defined]

    def expected(self) -> tuple[int, float]:
        """(count, sum of values) of every point logged."""
        total = 0.0
        for table, n in zip(self.tables, self.steps):
            full, rest = divmod(n, _TABLE_ROWS)
            total += float(table.sum()) * full + float(table[:rest].sum())
        return self.logged, total


class Progress:
    """Samples a counter in a thread; answers when it first reached a value, and the
    longest time it stood still."""

    def __init__(self, read: Callable[[], int], interval: float = 0.1) -> None:
        self._read, self._interval = read, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                value = int(self._read())
                self.samples.append((time.monotonic(), value))  # taken after the read
            except Exception:  # the source is down during a fault: no sample
                pass
            self._stop.wait(self._interval)

    def start(self) -> Progress:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def value_at(self, t: float) -> int:
        """The last sample taken at or before `t` (0 before the first)."""
        value = 0
        for at, v in self.samples:
            if at > t:
                break
            value = v
        return value

    def reached(self, target: int, after: float) -> float | None:
        """Seconds from `after` until a sample was >= `target` (None: never)."""
        for at, v in self.samples:
            if at >= after and v >= target:
                return at - after
        return None

    def longest_stall(self, start: float, end: float) -> float:
        """Longest span within [start, end] over which the counter did not grow."""
        window = [(at, v) for at, v in self.samples if start <= at <= end]
        longest, since, last = 0.0, None, None
        for at, v in window:
            if last is None or v > last:
                since, last = at, v
            assert since is not None
            longest = max(longest, at - since)
        return longest
