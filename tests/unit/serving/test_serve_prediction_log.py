"""PredictionLog with a fake client: runs created before traffic, retried in the background
when the tracking server is down, points dropped (and counted) rather than waited for."""

from __future__ import annotations

import time
from typing import Any

from metricflow.serving._serve_log import PredictionLog, parse_request_id


class _Client:
    def __init__(self, down: int = 0) -> None:
        self.down = down  # how many calls fail before the server "comes back"
        self.runs: dict[str, dict[str, str]] = {}
        self.points: list[tuple[str, dict[str, float], int]] = []
        self.dropped_points = 0
        self.full = False

    def get_or_create_experiment(self, name: str) -> str:
        if self.down:
            self.down -= 1
            raise ConnectionError("tracking server down")
        assert name == "serving/dep"
        return "7"

    def create_run(self, *, experiment_id: str, run_id: str, run_name: str,
                   tags: dict[str, str]) -> None:
        assert experiment_id == "7"
        self.runs[run_id] = {"name": run_name, **tags}

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int,
                    timestamp: int) -> None:
        if self.full:  # drop-when-full: the client counts, never blocks
            self.dropped_points += len(metrics)
            return
        self.points.append((run_id, metrics, step))

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_runs_are_tagged_per_variant_version_and_steps_count_from_one():
    c = _Client()
    pl = PredictionLog(c, "dep", "host-1")
    pl.ensure("champion", "3", "primary")
    pl.ensure("mirror", "4", "shadow")
    rl = pl.runlog("champion", "3")
    assert rl is not None
    assert c.runs[rl.run_id] == {
        "name": "dep/champion/v3/host-1", "mf.serving.deployment": "dep",
        "mf.serving.variant": "champion", "mf.serving.version": "3",
        "mf.serving.instance": "host-1", "mf.serving.role": "primary"}
    assert c.runs[pl.runlog("mirror", "4").run_id]["mf.serving.role"] == "shadow"
    steps = [rl.next_step() for _ in range(3)]
    assert steps == [1, 2, 3]
    assert pl.record(rl, 3, 0, {"latency_ms": 1.5, "status": 200.0})
    assert c.points == [(rl.run_id, {"latency_ms": 1.5, "status": 200.0}, 3)]
    assert parse_request_id(f"{rl.run_id}-3") == (rl.run_id, 3)
    pl.close()


def test_a_down_tracking_server_drops_points_and_the_run_is_made_later():
    c = _Client(down=2)
    pl = PredictionLog(c, "dep", "host-1", retry_s=0.05)
    pl.ensure("champion", "1", "primary")  # fails: retried in the background
    assert pl.runlog("champion", "1") is None
    assert not pl.record(pl.runlog("champion", "1"), 1, 0, {"latency_ms": 1.0})
    assert pl.dropped == 1 and pl.errors >= 1 and "down" in pl.last_error
    _wait(lambda: pl.runlog("champion", "1") is not None)
    c.full = True
    assert not pl.record(pl.runlog("champion", "1"), 1, 0, {"latency_ms": 1.0})
    assert pl.dropped == 2
    pl.close()
