"""Predictions logged as metrics: one run per (variant, version, serve process).

Points go into the metricflow client's columnar buffer with drop-when-full, so the
request path never waits on the network; what is dropped is counted. A run is
created before its variant version takes traffic (on the loading thread); if the
tracking server is down then, the version serves anyway and the run is retried in
the background (its requests' points are counted as dropped until it exists).

Contract with the deployment report (docs/serving.md): experiment
`serving/<deployment>`; run `<deployment>/<variant>/v<version>/<instance>` with tags
`mf.serving.deployment`, `mf.serving.variant`, `mf.serving.version`,
`mf.serving.instance`, `mf.serving.role` (primary | shadow); one point per request per
key at step = the run's request sequence from 1: `latency_ms`, `status`, `error`,
`prediction`; feedback `outcome.<name>` at the same step. A request id is
`<run_id>-<step>`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any

from metricflow.serving._naming import (
    TAG_DEPLOYMENT,
    TAG_INSTANCE,
    TAG_ROLE,
    TAG_VARIANT,
    TAG_VERSION,
    experiment_name,
)

log = logging.getLogger(__name__)

_RID = re.compile(r"^([0-9a-f]{32})-([1-9][0-9]{0,17})$")


def parse_request_id(rid: str) -> tuple[str, int] | None:
    """(run_id, step) of a request id, or None if it is not one."""
    m = _RID.match(rid)
    return None if m is None else (m.group(1), int(m.group(2)))


class RunLog:
    """One (variant, version) run of this process: its id and its request sequence."""

    __slots__ = ("key", "role", "run_id", "seq")

    def __init__(self, key: tuple[str, str], role: str) -> None:
        self.key = key
        self.role = role
        self.run_id = os.urandom(16).hex()
        self.seq = 0

    def next_step(self) -> int:
        self.seq += 1
        return self.seq


class PredictionLog:
    """Creates the runs; logs one point per key per request, never blocking."""

    def __init__(self, client: Any, deployment: str, instance: str, *,
                 retry_s: float = 2.0) -> None:
        self.client = client
        self.retry_s = retry_s
        self.deployment = deployment
        self.instance = instance
        self._exp_id: str | None = None
        self._ready: dict[tuple[str, str], RunLog] = {}
        self._retry: dict[tuple[str, str], RunLog] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._loop, name="prediction-runs", daemon=True)
        self._thread.start()

    def runlog(self, variant: str, version: str) -> RunLog | None:
        return self._ready.get((variant, version))

    def ensure(self, variant: str, version: str, role: str) -> None:
        """Create the (variant, version) run now (blocking; called off the event loop);
        on failure it is retried in the background."""
        key = (variant, version)
        with self._lock:
            if key in self._ready or key in self._retry:
                return
            rl = RunLog(key, role)
        try:
            self._create(rl)
        except Exception as e:  # tracking server unreachable: serve anyway, retry later
            self._note(e)
            with self._lock:
                self._retry[key] = rl
            self._wake.set()

    def _create(self, rl: RunLog) -> None:
        if self._exp_id is None:
            self._exp_id = self.client.get_or_create_experiment(experiment_name(self.deployment))
        variant, version = rl.key
        vpart = f"v{version}" if version else "endpoint"
        self.client.create_run(
            experiment_id=self._exp_id, run_id=rl.run_id,
            run_name=f"{self.deployment}/{variant}/{vpart}/{self.instance}",
            tags={TAG_DEPLOYMENT: self.deployment, TAG_VARIANT: variant, TAG_VERSION: version,
                  TAG_INSTANCE: self.instance, TAG_ROLE: rl.role})
        with self._lock:
            self._ready[rl.key] = rl
            self._retry.pop(rl.key, None)

    def _note(self, e: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(e).__name__}: {e}"
        log.warning("prediction logging for %s: %s", self.deployment, self.last_error)

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.retry_s)
            self._wake.clear()
            with self._lock:
                todo = list(self._retry.values())
            for rl in todo:
                if self._stop:
                    return
                try:
                    self._create(rl)
                except Exception as e:  # still down: next round
                    self._note(e)
            if todo and self._retry:
                time.sleep(self.retry_s)

    def record(self, rl: RunLog | None, step: int, ts_ms: int,
               metrics: dict[str, float]) -> bool:
        """Buffer one request's points; False if dropped (no run, buffer full, client error)."""
        if rl is None:
            self.dropped += 1
            return False
        try:
            before = self.client.dropped_points
            self.client.log_metrics(rl.run_id, metrics, step=step, timestamp=ts_ms)
            if self.client.dropped_points != before:
                self.dropped += 1
                return False
        except Exception as e:  # a background send failure surfaces here: count, go on
            self._note(e)
            self.dropped += 1
            return False
        return True

    def outcome(self, run_id: str, step: int, values: dict[str, float]) -> None:
        """Log feedback for a request at its step in its run."""
        self.client.log_metrics(run_id, values, step=step, timestamp=int(time.time() * 1000))

    def close(self, timeout: float = 10.0) -> None:
        self._stop = True
        self._wake.set()
        try:
            self.client.flush(timeout=timeout)
        except Exception as e:  # the server may be gone at shutdown
            log.warning("prediction log flush at shutdown: %s", e)
        self.client.close(timeout=timeout)
