"""AlertsService: the store, the webhook dispatcher and (optionally) the evaluator of
one process, wired together.

Every process with the control plane runs the dispatcher (it delivers the events its
metadata store emits, and whatever else the outbox holds). The evaluator runs where
metric batches pass: the embedded server (fed by the DirectSink's commit hook) and
the `alerts` role (fed by its own Kafka consumer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from metricflow._events import ALERT_FIRING, Event, bus_of
from metricflow.alerts._evaluator import Evaluator, EvaluatorConfig, RunFilter, RunLookup
from metricflow.alerts._model import SEVERITIES, Rule
from metricflow.alerts._store import AlertState, AlertStore
from metricflow.alerts._webhooks import Dispatcher, DispatcherConfig
from metricflow.errors import InvalidArgument

log = logging.getLogger(__name__)

MAX_TITLE = 256
MAX_TEXT = 8000


@dataclass(frozen=True)
class CodeAlertLimits:
    """`mf.alert` rate limits, per run."""

    same_title_s: float = 60.0
    """The same title from one run is sent at most once in this window (W&B's default
    wait between alerts of one title)."""
    per_minute: int = 10
    """At most this many alerts per run per minute."""


class AlertsService:
    """Owns the dispatcher and the evaluator of one process; see the module docstring."""

    def __init__(self, metadata: Any, *, evaluate: bool = False,
                 run_filter: RunFilter | None = None, run_lookup: RunLookup | None = None,
                 dispatcher: DispatcherConfig | None = None,
                 evaluator: EvaluatorConfig | None = None,
                 code_limits: CodeAlertLimits | None = None,
                 running_runs: Callable[[], Sequence[str]] | None = None) -> None:
        """`running_runs()`: the RUNNING runs when the evaluator starts, watched for
        stalls before their first point arrives (after a restart, runs that stopped)."""
        self.metadata = metadata
        self.store = AlertStore(metadata.engine)
        self.dispatcher = Dispatcher(self.store, dispatcher)
        self.evaluator = (Evaluator(self.store, run_filter, run_lookup,
                                    self.dispatcher.notify, evaluator,
                                    send_now=self.dispatcher.send_now) if evaluate else None)
        self.code_limits = code_limits or CodeAlertLimits()
        self._code_sent: dict[str, list[tuple[float, str]]] = {}
        self._code_lock = threading.Lock()
        self._unsubscribe: Any = None
        self._running_runs = running_runs
        self.consumer: Any = None
        """The alerts role's AlertsConsumer (set by the composition root; started last)."""

    def start(self) -> None:
        self.dispatcher.start()
        bus = bus_of(self.metadata)
        if bus is not None:
            self._unsubscribe = bus.subscribe(self.dispatcher.on_event)
        if self.evaluator is not None:
            self.evaluator.start()
            if self._running_runs is not None:
                threading.Thread(target=self._watch_running, name="metricflow-alerts-watch",
                                 daemon=True).start()

    def _watch_running(self) -> None:
        assert self.evaluator is not None and self._running_runs is not None
        try:
            self.evaluator.watch_runs(self._running_runs())
        except Exception:
            log.exception("alerts: the RUNNING runs could not be listed; stalls are "
                          "checked from each run's next point or record")

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.evaluator is not None:
            self.evaluator.stop()
        self.dispatcher.stop()

    def on_commit(self, batches: Sequence[Any], records: Sequence[Any]) -> None:
        """The writers' hook (never blocks): hand a committed group to the evaluator."""
        if self.evaluator is not None:
            self.evaluator.submit(batches, records)

    def rules_changed(self) -> None:
        """A rule was created, muted or deleted through this process: the evaluator here
        applies it to the next batch (another process's evaluator within a second:
        EvaluatorConfig.rules_poll_s)."""
        if self.evaluator is not None:
            self.evaluator.reload_rules()

    def validate_filter(self, rule: Rule) -> None:
        """At creation: the rule's experiments exist and its run filter parses (the
        error quotes only the filter as given)."""
        for e in rule.experiment_ids:
            self.metadata.get_experiment(e)  # NotFound names it
        if rule.run_filter:
            from metricflow.query import parse_filter

            parse_filter(rule.run_filter)

    # ---------------------------------------------------------------- mf.alert
    def code_alert(self, run_id: str, experiment_id: str, title: str, text: str,
                   level: str, actor: str = "") -> dict[str, Any]:
        """An alert from training code (`mf.alert`): to every webhook subscribed to
        alert.firing (in the run's experiment), rate-limited per run."""
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
            raise InvalidArgument(f"title must be 1..{MAX_TITLE} characters", field="title",
                                  limit=MAX_TITLE, received=str(title)[:80])
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise InvalidArgument(f"text is longer than {MAX_TEXT} characters", field="text",
                                  limit=MAX_TEXT, received=len(str(text)))
        lv = (level or "info").lower()
        lv = {"warn": "warning"}.get(lv, lv)
        if lv not in SEVERITIES:
            raise InvalidArgument(f"level must be one of {', '.join(SEVERITIES)}",
                                  field="level", received=level)
        now = time.monotonic()
        lim = self.code_limits
        with self._code_lock:
            sent = [(t, ti) for t, ti in self._code_sent.get(run_id, []) if now - t < max(
                60.0, lim.same_title_s)]
            if any(ti == title and now - t < lim.same_title_s for t, ti in sent):
                return {"sent": False, "reason": "same title within "
                        f"{lim.same_title_s:g} s"}
            if sum(1 for t, _ in sent if now - t < 60.0) >= lim.per_minute:
                # Answered, not raised: a retriable error would have the client retry
                # and stall the training loop.
                return {"sent": False, "reason": f"run {run_id} sent {lim.per_minute} "
                        "alerts in the last minute; the limit is that many"}
            sent.append((now, title))
            self._code_sent[run_id] = sent
        st = AlertState(0, run_id, "firing", fired_at=int(time.time() * 1000))
        ev = Event(ALERT_FIRING, f"alert:code:{run_id}", {
            "rule_id": None, "rule_name": None, "title": title, "text": text, "severity": lv,
            "condition": "code", "metric_key": None, "run_id": run_id,
            "experiment_id": experiment_id or None, "state": "firing", "value": None,
            "step": None, "fired_at": st.fired_at, "resolved_at": None, "for_s": 0.0,
            "source": "code"}, actor)
        n = self.store.queue_event(ev, experiment_id)
        self.dispatcher.notify()
        return {"sent": True, "deliveries": n}


def running_runs(core: Any, limit: int = 10_000) -> Callable[[], list[str]]:
    """The RUNNING runs of every experiment, over a QueryCore (up to `limit`)."""
    def running() -> list[str]:
        page = core.search_run_ids([], "attributes.status = 'RUNNING'", [], limit, "",
                                   "active")
        return list(page.run_ids)
    return running


def search_run_filter(core: Any) -> RunFilter:
    """A RunFilter over a QueryCore: the rule's filter AND the run ids asked about."""
    def run_filter(experiment_ids: Sequence[str], filt: str, run_ids: Sequence[str]
                   ) -> set[str]:
        ids = ", ".join("'" + r.replace("'", "''") + "'" for r in run_ids)
        text = f"{filt} AND attributes.run_id IN ({ids})" if filt else \
            f"attributes.run_id IN ({ids})"
        page = core.search_run_ids(list(experiment_ids), text, [], max(len(run_ids), 1), "",
                                   "active")
        return set(page.run_ids)
    return run_filter
