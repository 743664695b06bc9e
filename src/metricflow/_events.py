"""Events: what happened in the control plane and on runs, for webhooks and alerts.

Any layer may emit (the metadata store, ingest, the registry, governance, serving):

    from metricflow._events import emit
    emit(metadata, "model_version.created", subject="model:m",
         data={"name": "m", "version": "3", ...}, actor="ann")

`emit(owner, ...)` puts the event on `owner.events` (an `EventBus`: every
`SqlMetadataStore` has one, and views that pass attributes through reach it) and
returns at once. It never blocks and never raises: the bus is a bounded queue
drained by its own thread; when it is full, or the owner has no bus, the event is
dropped and counted (`EventBus.dropped`). So a slow or dead webhook receiver can
never slow or fail ingest or the registry: subscribers (the webhook dispatcher, the
alert evaluator) run on the bus thread, never on the caller's.

Inside a metadata-store write transaction use the store's `_event(conn, ...)`: it
emits only after the transaction commits.

Event names are those of MLflow's webhooks where MLflow has the event
(`model_version.created`, `model_version_alias.created`/`.deleted`,
`registered_model.created`); the rest are metricflow's. `EVENTS` lists them all;
docs/alerts.md gives each payload.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RUN_CREATED = "run.created"
RUN_FINISHED = "run.finished"
"""A run ended FINISHED or KILLED (`data.status` says which)."""
RUN_FAILED = "run.failed"
ALERT_FIRING = "alert.firing"
ALERT_RESOLVED = "alert.resolved"
REGISTERED_MODEL_CREATED = "registered_model.created"
MODEL_VERSION_CREATED = "model_version.created"
MODEL_VERSION_ALIAS_CREATED = "model_version_alias.created"
"""An alias set (created or moved to another version): MLflow's name."""
MODEL_VERSION_ALIAS_DELETED = "model_version_alias.deleted"
MODEL_VERSION_STAGE_CHANGED = "model_version.stage_changed"
APPROVAL_REQUESTED = "approval.requested"
APPROVAL_DECIDED = "approval.decided"
DEPLOYMENT_CHANGED = "deployment.changed"

EVENTS = frozenset({
    RUN_CREATED, RUN_FINISHED, RUN_FAILED, ALERT_FIRING, ALERT_RESOLVED,
    REGISTERED_MODEL_CREATED, MODEL_VERSION_CREATED, MODEL_VERSION_ALIAS_CREATED,
    MODEL_VERSION_ALIAS_DELETED, MODEL_VERSION_STAGE_CHANGED, APPROVAL_REQUESTED,
    APPROVAL_DECIDED, DEPLOYMENT_CHANGED,
})
"""Every event name a webhook may subscribe to."""


@dataclass(frozen=True)
class Event:
    """One thing that happened. `subject` orders deliveries: events of one subject
    reach each receiver in the order they were emitted (`run:<id>`, `model:<name>`,
    `deployment:<name>`, `alert:<rule>:<run>`)."""

    name: str
    subject: str
    data: Mapping[str, Any]
    actor: str = ""
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)


Handler = Callable[[Event], None]


class EventBusCollector:
    """Prometheus figures of one bus: `metricflow_events_emitted_total` and
    `metricflow_events_dropped_total` (queue full or a bad payload), and the queue's
    length. Register with `prometheus_client.REGISTRY.register(EventBusCollector(bus))`."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield CounterMetricFamily("metricflow_events_emitted", "Events queued for "
                                  "webhooks and alerts", value=self.bus.emitted)
        yield CounterMetricFamily("metricflow_events_dropped", "Events dropped: the "
                                  "queue was full or the payload bad", value=self.bus.dropped)
        yield GaugeMetricFamily("metricflow_events_queued", "Events waiting for their "
                                "subscribers", value=len(self.bus._q))


class EventBus:
    """A bounded queue of events and one thread that hands them to subscribers.

    With no subscriber `emit` is a no-op. A subscriber that raises is logged and
    skipped; the others still get the event.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.dropped = 0
        self.emitted = 0
        self._handlers: list[Handler] = []
        self._q: deque[Event] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = False

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call `handler(event)` on the bus thread for every later event; returns the
        function that unsubscribes it."""
        with self._cond:
            self._handlers = [*self._handlers, handler]
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="metricflow-events",
                                                daemon=True)
                self._thread.start()

        def unsubscribe() -> None:
            with self._cond:
                self._handlers = [h for h in self._handlers if h is not handler]
        return unsubscribe

    def emit(self, name: str, subject: str, data: Mapping[str, Any], *,
             actor: str | None = None) -> None:
        """Queue an event; never blocks, never raises."""
        try:
            if not self._handlers or self._closed:
                return
            ev = Event(name, subject, dict(data), actor or "")
            with self._cond:
                if len(self._q) >= self.capacity:
                    self.dropped += 1
                    return
                self._q.append(ev)
                self.emitted += 1
                self._cond.notify()
        except Exception:  # a bad payload must not fail the caller
            self.dropped += 1
            log.exception("event %r not queued", name)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued event was handed to the subscribers (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._q or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._q and not self._closed:
                    self._cond.wait()
                if not self._q:
                    return
                ev = self._q.popleft()
                self._busy = True
                handlers = self._handlers
            for h in handlers:
                try:
                    h(ev)
                except Exception:
                    log.exception("event subscriber failed on %s", ev.name)
            with self._cond:
                self._busy = False
                self._cond.notify_all()


def bus_of(owner: Any) -> EventBus | None:
    """The bus of `owner` (anything with an `events` EventBus), or None."""
    try:
        bus = getattr(owner, "events", None)
    except Exception:
        return None
    return bus if isinstance(bus, EventBus) else None


def emit(owner: Any, name: str, *, subject: str, data: Mapping[str, Any],
         actor: str | None = None) -> None:
    """Emit `name` on `owner`'s bus (a metadata store or a view of one). Never blocks,
    never raises; without a bus the event is dropped."""
    bus = bus_of(owner)
    if bus is not None:
        bus.emit(name, subject, data, actor=actor)


def run_data(info: Any, status: str | None = None, end_time: int | None = None
             ) -> dict[str, Any]:
    """The payload of a run event, from a RunInfo."""
    return {
        "run_id": info.run_id, "experiment_id": info.experiment_id,
        "run_name": info.run_name, "user_id": info.user_id,
        "status": status or info.status, "start_time": info.start_time,
        "end_time": end_time or getattr(info, "end_time", None) or None,
        "parent_run_id": info.parent_run_id or None,
    }


def emit_run_created(owner: Any, info: Any) -> None:
    """`run.created` for a RunInfo (ingest's TrackingCore calls it)."""
    try:
        emit(owner, RUN_CREATED, subject=f"run:{info.run_id}", data=run_data(info),
             actor=info.user_id)
    except Exception:
        log.exception("run.created not emitted")


def emit_run_ended(owner: Any, run_id: str, status: str, info: Any = None,
                   end_time: int | None = None) -> None:
    """`run.failed` (status FAILED) or `run.finished` (FINISHED, KILLED)."""
    try:
        name = RUN_FAILED if status == "FAILED" else RUN_FINISHED
        data = (run_data(info, status, end_time) if info is not None
                else {"run_id": run_id, "status": status, "end_time": end_time or None})
        emit(owner, name, subject=f"run:{run_id}", data=data)
    except Exception:
        log.exception("%s not emitted", status)


__all__ = [
    "ALERT_FIRING", "ALERT_RESOLVED", "APPROVAL_DECIDED", "APPROVAL_REQUESTED",
    "DEPLOYMENT_CHANGED", "EVENTS", "MODEL_VERSION_ALIAS_CREATED", "MODEL_VERSION_ALIAS_DELETED",
    "MODEL_VERSION_CREATED", "MODEL_VERSION_STAGE_CHANGED", "REGISTERED_MODEL_CREATED",
    "RUN_CREATED", "RUN_FAILED", "RUN_FINISHED", "Event", "EventBus", "EventBusCollector", "bus_of",
    "emit",
    "emit_run_created", "emit_run_ended", "run_data",
]
