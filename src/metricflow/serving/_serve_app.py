"""The serve process's state: the routing table, its live updates and the guardrails.

Every `poll_s` the deployment is read from the control plane (aliases already
resolved). A variant whose version (or endpoint) changed gets the new model loaded
beside the old one on a worker thread; then one new routing table replaces the old
(the switch), and the old model drains its in-flight requests before it is
unloaded. A version that fails to load leaves the old one serving and is reported.
Once a second the guardrails look at each routed variant's sliding window and take
a breached variant (never the fallback) out of rotation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metricflow.entities import (
    STATE_LOAD_FAILED,
    STATE_OUT_OF_ROTATION,
    STATE_SERVING,
    Deployment,
    Variant,
    VariantStatus,
)
from metricflow.serving._serve_guard import Window, breach
from metricflow.serving._serve_log import PredictionLog
from metricflow.serving._serve_metrics import ServeMetrics
from metricflow.serving._serve_models import (
    LocalModel,
    ProxyModel,
    check_endpoint,
    load_pyfunc,
)
from metricflow.serving._serve_router import Slot, Table
from metricflow.serving._serve_source import DeploymentSource

log = logging.getLogger(__name__)

RETRY_FAILED_LOAD_S = 30.0


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one `metricflow serve` process."""

    deployment: str
    control_url: str
    """HTTP address of the control plane (/api/v1, MLflow REST for model artifacts)."""
    host: str = "127.0.0.1"
    port: int = 8080
    tracking_uri: str | None = None
    """grpc://host:port for prediction logging; None turns it off."""
    token: str | None = None
    poll_s: float = 2.0
    """How often the deployment is re-read (alias moves, weight changes). Each read costs
    the control plane ~1.6 ms and this process ~0.7 ms of CPU in a thread; on the 2-core
    test machine reading every 1 s instead of 2-3 s added ~0.5 ms to the p99 latency
    (docs/serving.md)."""
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch_rows: int = 2048
    max_csv_rows: int = 100_000
    """Lines of one text/csv body (header and blank lines included); more is a 413."""
    drain_timeout_s: float = 30.0
    log_outputs: bool = True
    """Also log each request's first numeric output as `prediction`."""
    log_linger_ms: int = 5000
    """How long the request log's points wait in the client's buffer before they are sent
    (a full batch goes at once): each send is one insert on the tracking server (and, on a
    shared machine, a burst of its CPU beside the answers). On the 2-core test machine
    1 s added 0.5-1.8 ms more to the p99 latency than 5 s, and 200 ms ~2x the p99
    (docs/serving.md). The report and the run charts lag by up to this much; the
    guardrails do not (they read this process's own windows)."""
    shadow_max_inflight: int = 256
    """A shadow with this many mirrored requests pending gets no more (counted as skipped)."""
    shadow_linger_s: float = 0.25
    """Mirrored requests wait up to this long (or until 64 rows) to be answered in one
    model call: a shadow then stops the event loop, which the callers' requests share,
    once per many requests instead of once per request."""
    instance: str = ""
    """This process's id in reports and run tags (default: host:port-pid)."""
    allow_private_endpoints: bool = False
    """Let endpoint variants proxy to loopback and private addresses (never link-local)."""


def _target(v: Variant) -> str:
    if v.endpoint:
        return v.endpoint
    return f"v{v.resolved_version}" if v.resolved_version else ""


class ServeState:
    """Routing table, loaded models, windows and reports of one serve process."""

    def __init__(self, cfg: ServeConfig, source: DeploymentSource, *,
                 predictions: PredictionLog | None = None,
                 loader: Callable[[str], Any] = load_pyfunc) -> None:
        self.cfg = cfg
        self.source = source
        self.predictions = predictions
        self.loader = loader
        self.instance = cfg.instance or f"{cfg.host}:{cfg.port}-{os.getpid()}"
        self.metrics = ServeMetrics(cfg.deployment)
        self.table = Table((), (), None, "")
        self.deployment: Deployment | None = None
        self.windows: dict[tuple[str, str], Window] = {}
        self._targets: dict[str, str] = {}
        self._specs: dict[str, tuple[str, float]] = {}
        self._tripped_at: dict[str, int] = {}
        self._failed: dict[str, tuple[str, float]] = {}
        self.last_sync_error = ""
        self.synced = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ reports
    def _report(self, variant: str, state: str, version: str, reason: str = "") -> None:
        st = VariantStatus(variant=variant, state=state, version=version, reason=reason[:1000],
                           reporter=self.instance, timestamp=int(time.time() * 1000))

        def send() -> None:
            try:
                self.source.report(self.cfg.deployment, st)
            except Exception as e:  # the control plane may be down: the log keeps it
                log.warning("could not report %s=%s for %s: %s", variant, state, version, e)

        self.spawn(asyncio.to_thread(send))

    def spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # -------------------------------------------------------------------- sync
    def _load(self, dep: Deployment, v: Variant) -> Any:
        """On a worker thread: the variant's new model (raises if it cannot be loaded)."""
        if v.endpoint:
            check_endpoint(v.endpoint, self.cfg.allow_private_endpoints)
            model: Any = ProxyModel(v.endpoint, allow_private=self.cfg.allow_private_endpoints)
        else:
            uri = f"models:/{dep.model_name}/{v.resolved_version}"
            model = LocalModel(self.loader(uri), v.resolved_version,
                               max_batch_rows=self.cfg.max_batch_rows,
                               isolate_failures=not v.shadow,
                               linger_s=self.cfg.shadow_linger_s if v.shadow else 0.0)
        if self.predictions is not None:
            self.predictions.ensure(v.name, model.version, "shadow" if v.shadow else "primary")
        return model

    async def sync_once(self) -> None:
        """Read the deployment, load what changed, switch, retire what was replaced."""
        dep = await asyncio.to_thread(self.source.get, self.cfg.deployment)
        old = self.table
        current = {s.name: s for s in old.routed + old.shadows}
        slots: list[Slot] = []
        retire: list[Any] = []
        out = set()
        for v in dep.variants:
            target = _target(v)
            cur = current.get(v.name)
            model, version = (cur.model, cur.version) if cur is not None else (None, "")
            if target and self._targets.get(v.name) != target:
                failed = self._failed.get(v.name)
                if failed and failed[0] == target and time.monotonic() < failed[1]:
                    pass  # failed recently: keep the old one, retry later
                else:
                    try:
                        new = await asyncio.to_thread(self._load, dep, v)
                    except Exception as e:
                        reason = f"{target} failed to load: {type(e).__name__}: {e}"
                        log.error("deployment %s variant %s: %s (still serving %s)",
                                  dep.name, v.name, reason, self._targets.get(v.name) or "none")
                        self._failed[v.name] = (target, time.monotonic() + RETRY_FAILED_LOAD_S)
                        self.metrics.load_failures.labels(dep.name, v.name,
                                                          v.resolved_version).inc()
                        self._report(v.name, STATE_LOAD_FAILED, v.resolved_version, reason)
                    else:
                        if model is not None:
                            retire.append(model)
                        model, version = new, new.version
                        self._targets[v.name] = target
                        self._failed.pop(v.name, None)
                        self.metrics.switches.labels(dep.name, v.name).inc()
                        self.metrics.loaded.labels(dep.name, v.name).set(
                            float(version) if version.isdigit() else 0.0)
                        self._report(v.name, STATE_SERVING, version,
                                     f"serving {target} on {self.instance}")
            spec = (self._targets.get(v.name, ""), v.weight)
            st = dep.status_of(v.name)
            restored = (st is not None and st.state != STATE_OUT_OF_ROTATION
                        and st.timestamp > self._tripped_at.get(v.name, 0))
            if v.name in old.out and self._specs.get(v.name) == spec:
                if restored:  # `deploy restore`: back in, judged on a fresh window
                    self.windows.pop((v.name, version), None)
                    self._tripped_at.pop(v.name, None)
                else:
                    out.add(v.name)  # stays out until the variant changes or is restored
            if (not v.shadow and st is not None and st.state == STATE_OUT_OF_ROTATION
                    and st.version == version and v.name != dep.fallback):
                # A serve process tripped it; the control plane clears the report when the
                # variant is changed, as this process clears its own trip (above).
                out.add(v.name)
            self._specs[v.name] = spec
            slots.append(Slot(v.name, model, version, v.weight, v.shadow))
        names = {v.name for v in dep.variants}
        for name, s in current.items():
            if name not in names and s.model is not None:
                retire.append(s.model)
                self._targets.pop(name, None)
        self.deployment = dep
        self.table = Table(tuple(s for s in slots if not s.shadow),
                           tuple(s for s in slots if s.shadow), dep.sticky_key, dep.fallback,
                           frozenset(out))
        for name in names:
            self.metrics.tripped.labels(dep.name, name).set(1.0 if name in out else 0.0)
        for m in retire:
            self.spawn(self._retire(m))
        self.synced.set()

    async def _retire(self, model: Any) -> None:
        drained = await model.drain(self.cfg.drain_timeout_s)
        if not drained:
            log.warning("model %s still had %d requests after %.0fs; unloading", model.version,
                        model.inflight, self.cfg.drain_timeout_s)
        model.close()

    async def poll_forever(self) -> None:
        while True:
            try:
                await self.sync_once()
                self.last_sync_error = ""
            except Exception as e:  # control plane down: keep serving what is loaded
                msg = f"{type(e).__name__}: {e}"
                if msg != self.last_sync_error:
                    log.warning("reading deployment %s: %s", self.cfg.deployment, msg)
                self.last_sync_error = msg
            await asyncio.sleep(self.cfg.poll_s)

    # -------------------------------------------------------------- guardrails
    def window(self, variant: str, version: str) -> Window:
        w = self.windows.get((variant, version))
        if w is None:
            g = self.deployment.guardrails if self.deployment is not None else None
            w = self.windows[(variant, version)] = Window(g.window_s if g else 30.0)
        return w

    def check_guardrails(self) -> None:
        dep = self.deployment
        if dep is None or not dep.guardrails.enabled:
            return
        g = dep.guardrails
        table = self.table
        for s in table.routed:
            if s.name == table.fallback or s.name in table.out or s.model is None:
                continue
            w = self.windows.get((s.name, s.version))
            if w is None:
                continue
            reason = breach(w.stats(), max_error_rate=g.max_error_rate,
                            max_p99_ms=g.max_latency_p99_ms, min_requests=g.min_requests)
            if reason is None:
                continue
            self.table = self.table.with_out(self.table.out | {s.name})
            self._tripped_at[s.name] = int(time.time() * 1000)
            self.metrics.tripped.labels(dep.name, s.name).set(1.0)
            msg = f"guardrail breached: {reason}; traffic goes to {table.fallback}"
            log.error("deployment %s variant %s v%s: %s", dep.name, s.name, s.version, msg)
            self._report(s.name, STATE_OUT_OF_ROTATION, s.version, msg)

    async def guard_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.check_guardrails()
            except Exception:  # a bug here must not stop serving
                log.exception("guardrail check failed")

    # ---------------------------------------------------------------- shutdown
    async def close(self) -> None:
        table = self.table
        for s in table.routed + table.shadows:
            if s.model is not None:
                await s.model.drain(self.cfg.drain_timeout_s)
                s.model.close()
