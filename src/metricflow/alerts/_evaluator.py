"""Evaluator: alert rules over the stream of committed metric batches and run records.

`submit(batches, records)` is the hook the writers call after each committed group
(embedded: the DirectSink's apply thread; distributed: the alerts role's own Kafka
consumer). It only appends to a bounded queue and returns: evaluation runs on the
evaluator's thread, so rules never slow a writer. When the queue is full the
batch is dropped and counted (`dropped_points`), never waited for.

Per batch (one run's columns): `reduce_batch` groups the points by key with numpy
and `CompiledRules.breaches` compares every metric rule at once; Python work is
only for rules whose alert may change state. A timer (`tick_s`) fires alerts whose
condition has held for the rule's `for` duration, checks stalled runs, reloads
changed rules and re-checks run filters.

States per (rule, run): pending (condition true, `for` not yet held), firing,
resolved (or inactive: a pending alert whose condition ended). Firing and
resolving are written with their deliveries in one transaction
(`AlertStore.transitions`); the states are loaded back at start, so a restarted
evaluator neither repeats nor forgets a notification.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metricflow._events import ALERT_FIRING, ALERT_RESOLVED, Event
from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._wire import DecodedMetrics
from metricflow.alerts import _metrics as am
from metricflow.alerts._model import Rule
from metricflow.alerts._rules import CompiledRules, compare, reduce_batch
from metricflow.alerts._store import AlertState, AlertStore, Delivery, now_ms
from metricflow.alerts._windows import Window, change_values

log = logging.getLogger(__name__)

RunFilter = Callable[[Sequence[str], str, Sequence[str]], set[str]]
"""`(experiment_ids, filter, run_ids) -> the run_ids that match` (the search grammar)."""
RunLookup = Callable[[Sequence[str]], dict[str, Any]]
"""`run_ids -> {run_id: RunInfo}` for runs the evaluator has not seen created."""


@dataclass(frozen=True)
class EvaluatorConfig:
    tick_s: float = 0.25
    """The timer: `for` durations, stalled runs, rule reloads."""
    rules_poll_s: float = 1.0
    """How often the timer asks the control plane whether rules changed in another
    process (a change through this process reloads them at once: `reload_rules`). The
    question was 90% of an idle tick's CPU when asked every tick."""
    min_interval_s: float = 0.05
    """Evaluate at most this often: what arrives meanwhile is merged per run and reduced
    once, so the per-batch cost does not grow with how small the clients' batches are
    (at most this much added to an alert's latency)."""
    max_queued_points: int = 5_000_000
    """Bound of the queue between the writers and the evaluator, with the batches parked
    while their run is looked up. The embedded writer's batches beyond it are dropped
    (counted), never waited for; the alerts role's Kafka consumer instead waits for room
    before it reads more (`has_room`): the log keeps what it has not read, and no point
    goes unevaluated."""
    filter_refresh_s: float = 5.0
    """How often run filters are re-checked for known runs (tags change)."""
    unknown_run_wait_s: float = 30.0
    """How long a batch of a run not yet visible (Kafka: the writer lags) is kept."""
    run_idle_s: float = 3600.0
    """A run with no point and no record for this long is forgotten (memory)."""
    sweep_s: float = 30.0
    """How often the timer looks through every known run for idle ones to forget, when no
    stalled rule makes it look every tick (a server may know thousands of runs: with no
    rules, a tick through 10,000 cost ~7 ms of CPU, four times a second)."""


@dataclass
class _Run:
    run_id: str
    experiment_id: str = ""
    status: str = "RUNNING"
    last_point_ms: int = 0
    filters: dict[tuple[tuple[str, ...], str], bool] = field(default_factory=dict)
    mask: np.ndarray | None = None  # per compiled metric rule: in scope
    others: list[Rule] = field(default_factory=list)  # stalled/failed rules in scope
    ready: bool = False
    seen_ms: int = 0


@dataclass
class _Alert:
    state: str
    pending_since: int | None = None
    fired_at: int | None = None
    cond: bool = False
    value: float | None = None
    step: int | None = None


class Evaluator:
    """Evaluates rules on batches handed to `submit`; see the module docstring."""

    def __init__(self, store: AlertStore, run_filter: RunFilter | None,
                 run_lookup: RunLookup | None, notify: Callable[[], None] = lambda: None,
                 config: EvaluatorConfig | None = None,
                 send_now: Callable[[list[Delivery]], None] | None = None) -> None:
        """`send_now(deliveries)`: hands the deliveries an alert's transaction claimed to
        the dispatcher (None: they are left to its poll)."""
        self.store, self.run_filter, self.run_lookup = store, run_filter, run_lookup
        self.notify = notify
        self.send_now = send_now
        self.config = config or EvaluatorConfig()
        self._q: deque[tuple[list[DecodedMetrics], list[pb.LogRecord]]] = deque()
        self._queued_points = 0
        self._oldest_queued = 0.0  # monotonic time the oldest queued item was submitted
        self._read_until: float | None = None  # Kafka: all produced before is read
        self._tl = threading.local()  # per thread: CPU seconds of state writes (`_write`)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # state shared by the evaluator and the timer
        self._threads: list[threading.Thread] = []
        self.rules: dict[int, Rule] = {}
        self.compiled = CompiledRules([])
        self._stamp: tuple[int, int, int] | None = None
        self.runs: dict[str, _Run] = {}
        self.alerts: dict[tuple[int, str], _Alert] = {}
        self._active: dict[str, set[int]] = {}  # run -> rules with a pending/firing alert
        self._parked: dict[str, list[DecodedMetrics]] = {}
        self._parked_points = 0  # in `_parked`: counted against max_queued_points too
        self._windows: dict[str, Window] = {}  # per run: change rules' history
        self._last_filter_refresh = 0.0
        self._last_rules_poll = float("-inf")
        self._last_sweep = time.monotonic()
        self.dropped_points = 0
        self.evaluated_points = 0
        self.fired = 0
        self.resolved = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.reload_rules(force=True)
        for key, st in self.store.load_states().items():
            self.alerts[key] = _Alert(st.state, st.pending_since, st.fired_at,
                                      st.state == "firing", st.value, st.step)
            self._track(key, True)
        for target, name in ((self._eval_loop, "metricflow-alerts"),
                             (self._timer_loop, "metricflow-alerts-timer")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(10)

    def submit(self, batches: Sequence[DecodedMetrics],
               records: Sequence[pb.LogRecord] = (), bounded: bool = True) -> None:
        """The writers' hook: queue and return at once (never blocks, never raises).
        `bounded`: drop the batches when the queue is full; False: queue them anyway
        (a caller that waits for `has_room` before it reads more: the queue then holds
        at most one read beyond its bound)."""
        try:
            n = sum(b.n for b in batches)
            with self._cond:
                if bounded and self._held() + n > self.config.max_queued_points and n:
                    self.dropped_points += n
                    am.DROPPED.inc(n)
                    batches = []
                    if not records:
                        return
                if not self._q:
                    self._oldest_queued = time.monotonic()
                self._q.append((list(batches), list(records)))
                self._queued_points += n
                self._cond.notify()
        except Exception:
            log.exception("alert evaluator: batch not queued")

    def has_room(self) -> bool:
        """Whether the queue and the parked batches are below their bound (unlocked
        reads: a moment's stale value only shifts a wait by a poll)."""
        return self._held() < self.config.max_queued_points

    def _held(self) -> int:
        """Points queued or parked: what the bound counts."""
        return self._queued_points + self._parked_points

    def note_read(self, until_s: float) -> None:
        """Kafka: everything produced before `until_s` (this host's `time.time()`) has
        been read and submitted (the consumer read every partition to its end)."""
        self._read_until = until_s

    def behind_s(self) -> float:
        """How far behind what was written the evaluator may be: since the Kafka
        consumer was last known to have read everything (growing while it is behind or
        stuck), or how long its queue's oldest item has waited (unlocked reads: a
        moment's stale value only shifts a stalled check by a tick)."""
        queued = time.monotonic() - self._oldest_queued if self._q else 0.0
        lag = 0.0 if self._read_until is None else max(0.0, time.time() - self._read_until)
        return max(lag, queued)

    def idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far was evaluated (tests, benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                if not self._q and not self._busy:
                    return True
            time.sleep(0.01)
        return False

    _busy = False

    # ---------------------------------------------------------------- rules
    def reload_rules(self, force: bool = False) -> None:
        stamp = self.store.rules_stamp()
        if not force and stamp == self._stamp:
            return
        rules = {r.rule_id: r for r in self.store.list_rules()}
        with self._lock:
            self._stamp = stamp
            self.rules = rules
            self.compiled = CompiledRules(list(rules.values()))
            self._windows.clear()  # they are keyed by the compiled key ids
            for key in [k for k in self.alerts if k[0] not in rules]:
                del self.alerts[key]
                self._track(key, False)
            for run in self.runs.values():
                run.mask = None  # recomputed on the next batch
                run.filters = {k: v for k, v in run.filters.items()
                               if any((r.experiment_ids, r.run_filter) == k
                                      for r in rules.values())}

    # ----------------------------------------------------------------- runs
    def _run(self, run_id: str) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = _Run(run_id, seen_ms=now_ms())
        return run

    def _apply_records(self, records: Iterable[pb.LogRecord]) -> list[tuple[_Run, str]]:
        """Run states from the log's records; returns (run, new status) changes."""
        changes = []
        for rec in records:
            if rec.HasField("run_create"):
                rc = rec.run_create
                run = self._run(rc.run_id)
                run.experiment_id = rc.experiment_id
                run.status = "RUNNING"
                run.last_point_ms = now_ms()
                run.mask = None
                run.ready = False
                changes.append((run, "RUNNING"))
            elif rec.HasField("run_update") and rec.run_update.status:
                ru = rec.run_update
                status = pb.RunStatus.Name(ru.status)
                run = self._run(ru.run_id)
                if run.status != status:
                    run.status = status
                    if status == "RUNNING":
                        run.last_point_ms = now_ms()
                    changes.append((run, status))
            elif rec.HasField("params_tags") and rec.params_tags.tags:
                tagged = self.runs.get(rec.params_tags.run_id)
                if tagged is not None:
                    run = tagged  # a tag may change what its filters match
                    run.filters.clear()
                    run.ready = False
                    run.mask = None
        return changes

    def _resolve_runs(self, runs: list[_Run]) -> None:
        """Experiment, status and filter matches of runs not ready yet."""
        unknown = [r.run_id for r in runs if not r.experiment_id]
        if unknown and self.run_lookup is not None:
            try:
                infos = self.run_lookup(unknown)
            except Exception:
                log.exception("alert evaluator: run lookup failed")
                infos = {}
            for rid, info in infos.items():
                run = self.runs[rid]
                run.experiment_id = info.experiment_id
                run.status = info.status
                if not run.last_point_ms:
                    run.last_point_ms = now_ms()
        scopes: dict[tuple[tuple[str, ...], str], list[_Run]] = {}
        for run in runs:
            if not run.experiment_id:
                continue
            for r in self.rules.values():
                key = (r.experiment_ids, r.run_filter)
                if r.run_filter and key not in run.filters and _in_experiments(r, run):
                    scopes.setdefault(key, []).append(run)
        for (exps, filt), members in scopes.items():
            ids = sorted({m.run_id for m in members})
            matched = self._match(exps, filt, ids)
            if matched is None:
                continue
            for m in members:
                m.filters[(exps, filt)] = m.run_id in matched
        for run in runs:
            if not run.experiment_id:
                continue
            need = {(r.experiment_ids, r.run_filter) for r in self.rules.values()
                    if r.run_filter and _in_experiments(r, run)}
            if need <= run.filters.keys():
                run.ready = True
                run.mask = None

    def _match(self, exps: Sequence[str], filt: str, ids: Sequence[str]) -> set[str] | None:
        if self.run_filter is None:
            return set()
        out: set[str] = set()
        try:
            for lo in range(0, len(ids), 200):
                out |= self.run_filter(exps, filt, ids[lo:lo + 200])
        except Exception as e:
            log.warning("alert evaluator: run filter %r failed: %s", filt, e)
            return set()  # a bad filter matches nothing (it was checked at creation)
        return out

    def _in_scope(self, r: Rule, run: _Run) -> bool:
        if not _in_experiments(r, run):
            return False
        return not r.run_filter or run.filters.get((r.experiment_ids, r.run_filter), False)

    def _mask(self, run: _Run) -> np.ndarray:
        if run.mask is None or len(run.mask) != len(self.compiled):
            run.mask = np.array([self._in_scope(r, run) for r in self.compiled.rules],
                                dtype=bool)
            run.others = [r for r in self.rules.values()
                          if r.condition in ("stalled", "failed") and self._in_scope(r, run)]
        return run.mask

    # ----------------------------------------------------------- evaluation
    def _eval_loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            wait = self.config.min_interval_s - (time.monotonic() - last)
            if wait > 0 and self._stop.wait(wait):
                return
            with self._cond:
                while not self._q and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                items = list(self._q)
                self._q.clear()
                self._busy = True
                oldest = self._oldest_queued
            last = time.monotonic()
            am.STAGE.labels(stage="queue").observe(last - oldest)
            c0 = time.thread_time()
            self._tl.write_s = 0.0
            try:
                with self._lock:
                    self._evaluate(items)
            except Exception:
                log.exception("alert evaluation failed")
            finally:
                am.CPU.labels(part="evaluate").inc(time.thread_time() - c0 - self._tl.write_s)
                with self._cond:
                    self._queued_points -= sum(b.n for bs, _ in items for b in bs)
                    self._busy = False

    def _evaluate(self, items: list[tuple[list[DecodedMetrics], list[pb.LogRecord]]]) -> None:
        out: list[tuple[AlertState, Event | None, Sequence[int], str]] = []
        now = now_ms()
        pending: list[DecodedMetrics] = []
        for batches, records in items:
            for run, status in self._apply_records(records):
                self._on_status(run, status, now, out)
            pending.extend(batches)
        pending = _merge(pending)
        parked_now: set[int] = set()
        for b in pending:
            run = self._run(b.run_id)
            run.last_point_ms = now
            if not run.ready:
                self._park(b)
                parked_now.add(id(b))
        if self._parked:
            self._resolve_runs([self.runs[r] for r in self._parked])
        for b in pending:
            if id(b) not in parked_now:
                self._eval_batch(self.runs[b.run_id], b, now, out)
        for rid in [rid for rid in self._parked if self.runs[rid].ready]:
            for b in self._unpark(rid):
                self._eval_batch(self.runs[rid], b, now, out)
        self._write(out)

    def _park(self, b: DecodedMetrics) -> None:
        """Keep a batch of a run not resolved yet (under `_lock`). Its points count
        against the queue's bound until it is evaluated: a writer that lags far behind
        (the alerts role sees points of runs it cannot look up yet) would otherwise
        hold up to `unknown_run_wait_s` of the whole stream here, unbounded."""
        self._parked.setdefault(b.run_id, []).append(b)
        self._parked_points += b.n

    def _unpark(self, run_id: str) -> list[DecodedMetrics]:
        """A run's parked batches, taken out of the bound's count (under `_lock`)."""
        batches = self._parked.pop(run_id, [])
        self._parked_points -= sum(b.n for b in batches)
        return batches

    def _eval_batch(self, run: _Run, b: DecodedMetrics, now: int,
                    out: list[tuple[AlertState, Event | None, Sequence[int], str]]) -> None:
        self.evaluated_points += b.n
        am.EVALUATED.inc(b.n)
        mask = self._mask(run)
        if run.run_id in self._active:
            for r in run.others:  # a point ends a stall
                if r.condition == "stalled":
                    self._cond_change(r, run, False, False, None, None, now, out)
        if not mask.any() or not b.n:
            return
        c = self.compiled
        kmap = c.key_map(b.keys)
        sel = mask & (kmap[c.rule_key] >= 0)
        if not sel.any():
            return
        bk = reduce_batch(b)
        has, any_b, last_b = c.breaches(bk, kmap)
        has &= mask
        j = kmap[c.rule_key]
        active = self._active.get(run.run_id)
        cand = has & ~c.is_change & any_b
        if active:  # alerts of this run that may resolve
            cand |= has & ~c.is_change & np.isin(c.rule_ids, np.fromiter(active, np.int64))
        for i in np.flatnonzero(cand).tolist():
            r = c.rules[i]
            jj = int(j[i])
            value = float(bk.last_value[jj])
            if any_b[i] and not last_b[i]:
                value = float(bk.fmax[jj] if c.op[i] <= 1 else bk.fmin[jj])
                if r.condition == "nonfinite":
                    value = float("nan")
            self._cond_change(r, run, bool(any_b[i]), bool(last_b[i]), value,
                              int(bk.last_step[jj]), now, out)
        chg = has & c.is_change
        if chg.any():
            self._changes(run, b, bk, np.flatnonzero(chg), kmap, active, now, out)

    def _changes(self, run: _Run, b: DecodedMetrics, bk: Any, idxs: np.ndarray,
                 kmap: np.ndarray, active: set[int] | None, now: int,
                 out: list[tuple[AlertState, Event | None, Sequence[int], str]]) -> None:
        """Relative-change rules at each key's last point (`_windows.change_values`:
        all keys and rules at once); Python only for rules that hold or are active."""
        c = self.compiled
        win, change, ok, s1 = change_values(self._windows.get(run.run_id), c, kmap, bk, b,
                                            idxs)
        self._windows[run.run_id] = win
        cond = ok & compare(c.op[idxs], change, c.threshold[idxs])
        look = cond.copy()
        if active:
            look |= np.isin(c.rule_ids[idxs], np.fromiter(active, np.int64))
        for k in np.flatnonzero(look).tolist():
            r = c.rules[int(idxs[k])]
            val = float(change[k]) if ok[k] else None
            self._cond_change(r, run, bool(cond[k]), bool(cond[k]), val, int(s1[k]), now, out)

    def _on_status(self, run: _Run, status: str, now: int,
                   out: list[tuple[AlertState, Event | None, Sequence[int], str]]) -> None:
        if not run.ready:
            self._resolve_runs([run])
        self._mask(run)
        for r in run.others:
            if r.condition == "failed":
                failed = status == "FAILED"
                self._cond_change(r, run, failed, failed, None, None, now, out)
            elif r.condition == "stalled" and status != "RUNNING":
                self._cond_change(r, run, False, False, None, None, now, out)

    # ----------------------------------------------------------- state machine
    def _track(self, key: tuple[int, str], active: bool) -> None:
        rule_id, run_id = key
        if active:
            self._active.setdefault(run_id, set()).add(rule_id)
        else:
            got = self._active.get(run_id)
            if got is not None:
                got.discard(rule_id)
                if not got:
                    del self._active[run_id]

    def _cond_change(self, r: Rule, run: _Run, any_true: bool, last_true: bool,
                     value: float | None, step: int | None, now: int,
                     out: list[tuple[AlertState, Event | None, Sequence[int], str]]) -> None:
        key = (r.rule_id, run.run_id)
        a = self.alerts.get(key)
        active = a is not None and a.state in ("pending", "firing")
        if not active:
            if not any_true:
                return
            if r.for_s <= 0:
                self._fire(r, run, value, step, now, out, None)
                if not last_true:
                    self._resolve(r, run, value, step, now, out)
            elif last_true:
                self.alerts[key] = _Alert("pending", now, None, True, value, step)
                self._track(key, True)
                out.append((AlertState(r.rule_id, run.run_id, "pending", value, step, now),
                            None, (), run.experiment_id))
            return
        assert a is not None
        a.cond, a.value, a.step = last_true, value if value is not None else a.value, step
        if a.state == "pending":
            if not last_true:
                del self.alerts[key]
                self._track(key, False)
                out.append((AlertState(r.rule_id, run.run_id, "inactive", value, step),
                            None, (), run.experiment_id))
            elif now - (a.pending_since or now) >= r.for_s * 1000:
                self._fire(r, run, value, step, now, out, a.pending_since)
        elif a.state == "firing" and not last_true:
            self._resolve(r, run, value, step, now, out)

    def _fire(self, r: Rule, run: _Run, value: float | None, step: int | None, now: int,
              out: list[tuple[AlertState, Event | None, Sequence[int], str]],
              pending_since: int | None) -> None:
        self.alerts[(r.rule_id, run.run_id)] = _Alert("firing", pending_since, now, True,
                                                      value, step)
        self._track((r.rule_id, run.run_id), True)
        st = AlertState(r.rule_id, run.run_id, "firing", value, step, pending_since, now)
        self.fired += 1
        am.TRANSITIONS.labels(state="firing").inc()
        out.append((st, self._event(ALERT_FIRING, r, run, st, now), r.channels,
                    run.experiment_id))

    def _resolve(self, r: Rule, run: _Run, value: float | None, step: int | None, now: int,
                 out: list[tuple[AlertState, Event | None, Sequence[int], str]]) -> None:
        a = self.alerts.get((r.rule_id, run.run_id))
        fired_at = a.fired_at if a is not None else None
        self.alerts.pop((r.rule_id, run.run_id), None)
        self._track((r.rule_id, run.run_id), False)
        st = AlertState(r.rule_id, run.run_id, "resolved", value, step, None, fired_at, now)
        self.resolved += 1
        am.TRANSITIONS.labels(state="resolved").inc()
        out.append((st, self._event(ALERT_RESOLVED, r, run, st, now), r.channels,
                    run.experiment_id))

    def _event(self, name: str, r: Rule, run: _Run, st: AlertState, now: int) -> Event | None:
        if r.muted_until > now:
            return None  # muted: tracked, not announced
        return Event(name, f"alert:{r.rule_id}:{run.run_id}", alert_data(r, run.run_id,
                                                                         run.experiment_id, st))

    def _write(self, out: list[tuple[AlertState, Event | None, Sequence[int], str]]) -> None:
        if not out:
            return
        claimed: list[Delivery] | None = [] if self.send_now is not None else None
        queued: list[int] = []
        t0, c0 = time.monotonic(), time.thread_time()
        try:
            done = self.store.transitions(out, claim=claimed, queued=queued)
        except Exception:
            log.exception("alert evaluator: %d state changes not stored", len(out))
            return
        finally:
            cpu = time.thread_time() - c0
            self._tl.write_s = getattr(self._tl, "write_s", 0.0) + cpu
            am.CPU.labels(part="write").inc(cpu)
        am.STAGE.labels(stage="write").observe(time.monotonic() - t0)
        if claimed and self.send_now is not None:
            self.send_now(claimed)  # it wakes the dispatcher for any it gives back
        if claimed is None:
            if any(d and ev is not None for d, (_, ev, _, _) in zip(done, out)):
                self.notify()
        elif sum(queued) > len(claimed):
            self.notify()  # deliveries behind their subject's earlier ones: the poller's

    # ----------------------------------------------------------------- timer
    def _timer_loop(self) -> None:
        while not self._stop.wait(self.config.tick_s):
            c0 = time.thread_time()
            self._tl.write_s = 0.0
            try:
                self.tick()
            except Exception:
                log.exception("alert evaluator tick failed")
            am.CPU.labels(part="timer").inc(time.thread_time() - c0 - self._tl.write_s)

    def tick(self, now: int | None = None) -> None:
        """`for` durations, stalled runs, rule reloads, parked batches, filters."""
        if time.monotonic() - self._last_rules_poll >= self.config.rules_poll_s:
            self._last_rules_poll = time.monotonic()
            self.reload_rules()
        now = now if now is not None else now_ms()
        out: list[tuple[AlertState, Event | None, Sequence[int], str]] = []
        # What the timer concludes from silence allows for how far behind what was
        # written the evaluator may be: points written before now - behind are evaluated.
        behind_ms = int(self.behind_s() * 1000)
        with self._lock:
            for (rule_id, run_id), a in list(self.alerts.items()):
                rr = self.rules.get(rule_id)
                if rr is None or a.state != "pending" or not a.cond:
                    continue
                # a point that ended the condition within `for` may still be unread
                if now - (a.pending_since or now) >= rr.for_s * 1000 + behind_ms:
                    self._fire(rr, self._run(run_id), a.value, a.step, now, out,
                               a.pending_since)
            stalled = any(r.condition == "stalled" for r in self.rules.values())
            # with no rule, no run's filters or scope matter (a new rule's first tick
            # refreshes them: the last refresh is then long past)
            refresh = bool(self.rules) and (time.monotonic() - self._last_filter_refresh
                                            >= self.config.filter_refresh_s)
            if refresh:
                self._last_filter_refresh = time.monotonic()
                for run in self.runs.values():
                    run.filters.clear()
                    run.ready = False
                self._resolve_runs(list(self.runs.values()))
            elif self._parked:
                self._resolve_runs([self.runs[r] for r in self._parked])
            for rid in list(self._parked):
                run = self.runs[rid]
                if run.ready or now - run.seen_ms > self.config.unknown_run_wait_s * 1000:
                    run.ready = True
                    for b in self._unpark(rid):
                        self._eval_batch(run, b, now, out)
            gone: set[str] = set()
            sweep = time.monotonic() - self._last_sweep >= self.config.sweep_s
            if sweep:
                self._last_sweep = time.monotonic()
            for run in list(self.runs.values()) if stalled or sweep else ():
                if stalled and run.ready and run.status == "RUNNING":
                    self._mask(run)
                    idle = now - (run.last_point_ms or run.seen_ms)
                    # stalled after T with no point evaluated, plus the allowance: a run
                    # that logs at least every T wrote a point before now - behind - T
                    for r in run.others:
                        if r.condition == "stalled" and idle >= r.stalled_s * 1000 + behind_ms:
                            self._cond_change(r, run, True, True, idle / 1000, None, now, out)
                if sweep and now - max(run.last_point_ms, run.seen_ms) \
                        > self.config.run_idle_s * 1000 \
                        and run.run_id not in self._active and run.run_id not in self._parked:
                    del self.runs[run.run_id]
                    gone.add(run.run_id)
            if gone:  # their change-rule windows too
                for rid in gone:
                    self._windows.pop(rid, None)
        self._write(out)

    def watch_runs(self, run_ids: Iterable[str]) -> None:
        """Start tracking runs that exist already (stalled checks before their first
        point arrives): the alerts service calls it with the RUNNING runs at start."""
        with self._lock:
            for rid in run_ids:
                run = self._run(rid)
                if not run.last_point_ms:
                    run.last_point_ms = now_ms()
                self._parked.setdefault(rid, [])


MERGE_POINTS = 16_384
"""`_merge` joins a run's waiting batches up to about this many points: past it, the
reduction's fixed cost is small beside the copy a join makes, and a batch left whole
keeps its layout (grouped by key, as metricflow's client sends it: reduced in place)."""


def _merge(batches: list[DecodedMetrics]) -> list[DecodedMetrics]:
    """Per (run, key tuple), its batches in order, consecutive small ones joined: when
    the evaluator is behind, many small batches waiting for it are evaluated together
    (one reduction instead of many). Each part is a point of evaluation, as each batch
    is when the evaluator keeps up: a breach that ends within one part can fire and
    resolve there, so how many notifications a burst makes depends on how it was cut."""
    if len(batches) < 2:
        return batches
    groups: dict[tuple[str, tuple[str, ...]], list[DecodedMetrics]] = {}
    for b in batches:
        groups.setdefault((b.run_id, tuple(b.keys)), []).append(b)
    if len(groups) == len(batches):
        return batches
    out: list[DecodedMetrics] = []
    for bs in groups.values():
        chunk: list[DecodedMetrics] = []
        size = 0
        for b in bs:
            if chunk and size + b.n > MERGE_POINTS:
                out.append(_joined(chunk))
                chunk, size = [], 0
            chunk.append(b)
            size += b.n
        out.append(_joined(chunk))
    return out


def _joined(bs: list[DecodedMetrics]) -> DecodedMetrics:
    if len(bs) == 1:
        return bs[0]
    return DecodedMetrics(
        bs[0].run_id, bs[0].keys, np.concatenate([b.key_index for b in bs]),
        np.concatenate([b.steps for b in bs]), np.concatenate([b.timestamps for b in bs]),
        np.concatenate([b.values for b in bs]))


def _in_experiments(r: Rule, run: _Run) -> bool:
    return not r.experiment_ids or run.experiment_id in r.experiment_ids


def alert_data(r: Rule, run_id: str, experiment_id: str, st: AlertState) -> dict[str, Any]:
    """The payload of alert.firing / alert.resolved (docs/alerts.md)."""
    what = {"threshold": f"metrics.{r.metric_key} {r.op} {r.threshold:g}",
            "nonfinite": f"metrics.{r.metric_key} is NaN or infinite",
            "stalled": f"no point for {r.stalled_s:g} s while RUNNING",
            "change": (f"metrics.{r.metric_key} changed {r.op} {r.threshold:+.0%} over "
                       f"{r.window_steps} steps"),
            "failed": "the run ended FAILED"}[r.condition]
    state = "firing" if st.state == "firing" else "resolved"
    text = f"{what} (run {run_id}"
    if st.value is not None:
        text += f", value {st.value:g}"
    if st.step is not None:
        text += f", step {st.step}"
    text += ")"
    return {"rule_id": str(r.rule_id), "rule_name": r.name, "title": r.name, "text": text,
            "severity": r.severity, "condition": r.condition, "metric_key": r.metric_key or None,
            "run_id": run_id, "experiment_id": experiment_id or None, "state": state,
            "value": st.value, "step": st.step, "fired_at": st.fired_at,
            "resolved_at": st.resolved_at, "for_s": r.for_s, "source": "rule"}
