"""DirectSink: the embedded in-process writer with group commit.

Accepted batches and records wait in a bounded buffer, in arrival order. Two
threads move them on:

- the log thread cuts a group every `linger_s` or once `max_group_points` are
  waiting (at once when it holds a run record: those are interactive calls),
  appends the group's run records to the RecordLog and fsyncs it (_record_log.py),
  and acknowledges those records: that append is their durable write;
- the apply thread applies the groups to the MetricStore through the LogApplier,
  in order, merging every group that waits into one (so the per-insert cost of a
  run record is shared by all records that arrived during the previous insert),
  and acknowledges metric batches only after their insert returned, as before.
  Under a steady stream of writes, acknowledged groups may wait up to
  `apply_linger_s` for those behind them (fewer, larger inserts); see the field.

Reads see every acknowledged write: while records are logged but not yet
applied, the store's read barrier (`MetricStore.set_read_barrier`) makes a
reading thread wait for the apply. A run created through this sink is also held
whole in memory (`hot_run`, ingest/_hot_runs.py), updated before each acknowledgement,
so reading it (MLflow's runs/get) never waits for the apply. A failed apply is
retried with backoff (the records are durable); its metric batches fail at once and
their clients resend.

Without a log directory (a data plane that is not a local chDB path, or
`DirectSinkConfig.record_log=False`) run records are acknowledged after their
insert, in the apply thread (the behaviour before the log existed).

Measured figures: docs/ingest.md, "Run lifecycle: where the time went".
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._uris import DATA, backend_key
from metricflow._wire import DecodedMetrics, decode_metrics
from metricflow.errors import MetricflowError, ResourceExhausted, Unavailable
from metricflow.ingest import _metrics as m
from metricflow.ingest._applier import LogApplier
from metricflow.ingest._hot_runs import HotRun, HotRuns
from metricflow.ingest._record_log import RecordLog
from metricflow.store import MetricStore

log = logging.getLogger(__name__)

_Batch = tuple[DecodedMetrics, tuple[str, int], asyncio.Future[None], bytes]
_Record = tuple[pb.LogRecord, asyncio.Future[None]]
_KIND_RECORD, _KIND_BATCH = b"R", b"M"  # the first byte of a log entry


@dataclass(frozen=True)
class DirectSinkConfig:
    linger_s: float = 0.1
    """Longest time a batch waits before its group is committed."""
    max_group_points: int = 100_000
    """Commit as soon as this many points wait."""
    max_pending_points: int = 2_000_000
    """Bound of the buffer; beyond it submits fail with RESOURCE_EXHAUSTED (clients
    keep their own bounded buffers and resend after the retry hint)."""
    max_insert_points: int = 500_000
    """Largest single insert; a backlog is written as several inserts of this size,
    which bounds the writer's peak memory (Arrow table + ClickHouse sort)."""
    dedup_window: int = 200_000
    """How many recent batch ids are remembered to ack retries without a re-insert."""
    record_log: bool = True
    """Acknowledge run records once fsync'd to a local log (applied right after, or
    within `apply_linger_s` while writes keep coming); off: once inserted."""
    record_log_dir: str | None = None
    """Where the log lives (default: `ingest-log/<database>` next to a chdb:// data path)."""
    max_pending_records: int = 200_000
    """Records logged but not yet applied; beyond it submits are RESOURCE_EXHAUSTED."""
    read_barrier_timeout_s: float = 30.0
    """Longest a read waits for logged records to be applied (then UNAVAILABLE)."""
    apply_linger_s: float = 0.2
    """Longest acknowledged work waits after it was queued to be inserted together with
    what follows it. Each store insert has a fixed cost that does not depend on its size
    (about 13 ms for a table with its search views, idle, on chDB), so a sweep's small
    run records are cheaper in fewer, larger inserts. Only while writes keep coming (the
    last apply ended less than this long ago: the first group after a quiet spell goes
    at once, so a lone write and the read after it wait as before) and only work nobody
    waits for: every queued record and batch is already acknowledged (durable in the
    log), no read waits at the barrier (a read ends the linger), and the queue holds
    less than `max_insert_points` points and `apply_linger_records` records. 0: never."""
    apply_linger_records: int = 2_000
    """Run records queued beyond which the apply goes at once (see apply_linger_s)."""
    log_batch_points: int = 20_000
    """Metric batches up to this size go through the log too (a short run's points, an
    MLflow REST request); larger ones (streaming clients) are acknowledged after their
    insert, which is cheaper for the bulk of a stream than writing it twice."""

    def __post_init__(self) -> None:
        for name, lo, hi in _CONFIG_RANGES:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"DirectSinkConfig.{name} must be a number in [{lo}, {hi}], "
                                 f"got {v!r}")


_CONFIG_RANGES: tuple[tuple[str, float, float], ...] = (
    ("linger_s", 0.0, 60.0), ("max_group_points", 1, 100_000_000),
    ("max_pending_points", 1, 10_000_000_000), ("max_insert_points", 1, 100_000_000),
    ("dedup_window", 0, 100_000_000), ("max_pending_records", 1, 100_000_000),
    ("read_barrier_timeout_s", 0.001, 86_400.0), ("apply_linger_s", 0.0, 3_600.0),
    ("apply_linger_records", 1, 100_000_000), ("log_batch_points", 0, 100_000_000))
"""What DirectSinkConfig accepts for each numeric field (NaN is refused too)."""


@dataclass
class _Group:
    batches: list[_Batch]
    records: list[_Record]
    points: int
    logged_batches: int  # the first n batches were in the log append
    seq: int  # records logged up to and including this group
    segment: int  # the log segment of its records (-1: none logged)
    acked: bool  # its records were acknowledged at the log append
    new_runs: set[str]  # runs it creates that cannot exist yet
    queued_at: float = 0.0  # time.monotonic() when it reached the apply queue


def _log_dir(store: MetricStore, config: DirectSinkConfig) -> str | None:
    if not config.record_log:
        return None
    if config.record_log_dir:
        return config.record_log_dir
    dsn = getattr(store, "dsn", "")
    if isinstance(dsn, str) and backend_key(DATA, dsn) == "chdb":
        path = os.path.realpath(dsn[len("chdb://"):].split("?", 1)[0])
        # One log per database: tests and tools open several databases on one path.
        return os.path.join(os.path.dirname(path), "ingest-log", str(store.db))
    return None


class DirectSink:
    """In-process writer into the MetricStore (embedded mode)."""

    def __init__(self, store: MetricStore, config: DirectSinkConfig | None = None) -> None:
        self.store = store
        self.config = config or DirectSinkConfig()
        directory = _log_dir(store, self.config)
        self.record_log = RecordLog(directory) if directory else None
        # With the log this process is the store's only writer: the applier keeps the
        # state and params of recent runs instead of reading them before each group.
        self.applier = LogApplier(store, cache_runs=50_000 if self.record_log else 0)
        # Only with the log do reads wait for an apply; without it the store is current.
        self.hot = HotRuns() if self.record_log else None
        self._cond = threading.Condition()
        self._batches: list[_Batch] = []
        self._records: list[_Record] = []
        self._pending_points = 0
        self._new_runs: set[str] = set()
        self._urgent = False
        self._first_pending_at = 0.0
        self._committed: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._apply_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._applyq: deque[_Group] = deque()
        self._apply_cond = threading.Condition()
        self._logged_seq = 0  # records appended to the log (guarded by _apply_cond)
        self._applied_seq = 0  # of those, applied to the store
        self._barrier_waiters = 0  # reads waiting in wait_applied (guarded by _apply_cond)
        self._last_apply_end = 0.0  # monotonic end of the last apply (the apply thread's)
        self._unapplied_records = 0
        self._apply_error: BaseException | None = None
        self._health: dict[str, list[float]] = {"append": [0.0, 0.0], "apply": [0.0, 0.0]}
        """Per stage (the log append, the group commit): monotonic times of its last
        failure and its last success. Each stage is judged on its own: an earlier group
        committed after a later append failed does not show that appends work."""
        self._local = threading.local()  # marks the apply thread (no read barrier)
        self.record_errors = 0
        self._commit_listeners: list[Callable[[list[DecodedMetrics], list[pb.LogRecord]],
                                              None]] = []

    @property
    def ready(self) -> bool:
        """False while writes fail: the last log append, or the last group commit, failed
        with none of the same kind through since, and that failure is under FAILING_S
        old (with no writes arriving, nothing can show that the store recovered)."""
        now = time.monotonic()
        return not any(failed > ok and now - failed < self.FAILING_S
                       for failed, ok in self._health.values())

    FAILING_S = 30.0

    def add_commit_listener(self, fn: Callable[[list[DecodedMetrics], list[pb.LogRecord]],
                                               None]) -> None:
        """Call `fn(batches, records)` once per committed item (the alert evaluator's
        hook): on the log thread when its log append made it durable, else on the apply
        thread after its insert. `fn` must return at once (queue, never block); an
        exception from it is logged and ignored."""
        self._commit_listeners.append(fn)

    def _notify_commit(self, batches: list[DecodedMetrics],
                       records: list[pb.LogRecord]) -> None:
        if not (batches or records):
            return
        for fn in self._commit_listeners:
            try:
                fn(batches, records)
            except Exception:
                log.exception("a commit listener failed")

    def hot_run(self, run_id: str) -> HotRun | None:
        """The run as every acknowledged write left it, from memory, when this sink
        holds it whole (created here, recently; see _hot_runs.py); else None (read the
        store, whose barrier waits for the apply)."""
        return self.hot.get(run_id) if self.hot is not None else None

    @property
    def acks_before_apply(self) -> bool:
        """Run records are acknowledged once durable in the log, before they are
        applied: the caller must refuse what the applier would refuse."""
        return self.record_log is not None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.record_log is not None:
            await asyncio.to_thread(self._replay)
            set_barrier = getattr(self.store, "set_read_barrier", None)
            if set_barrier is not None:
                set_barrier(self.wait_applied)
            # A local chDB path is this process's alone: every write comes through here.
            mark = getattr(self.store, "mark_sole_writer", None)
            if mark is not None:
                mark()
        self._apply_thread = threading.Thread(target=self._apply_loop,
                                              name="metricflow-writer", daemon=True)
        self._apply_thread.start()
        self._thread = threading.Thread(target=self._run, name="metricflow-log", daemon=True)
        self._thread.start()

    def _replay(self) -> None:
        """Apply what a previous process logged (idempotent), then drop the log."""
        assert self.record_log is not None
        records: list[pb.LogRecord] = []
        batches: list[DecodedMetrics] = []
        skipped = 0
        for entry in self.record_log.replay():
            kind, body = entry[:1], entry[1:]
            try:
                if kind == _KIND_RECORD:
                    records.append(pb.LogRecord.FromString(body))
                elif kind == _KIND_BATCH:
                    wb = pb.WriteBatch.FromString(body)
                    batches.append(decode_metrics(wb.run_id, wb.metrics))
                else:
                    skipped += 1
            except Exception:  # checked when it was accepted; never stops the start
                skipped += 1
        self._local.applying = True
        try:
            for lo in range(0, max(len(records), 1), 5000):
                errors = self.applier.apply([], records[lo:lo + 5000])
                self.record_errors += sum(e is not None for e in errors)
            point_cap = self.config.max_insert_points
            chunk: list[DecodedMetrics] = []
            for b in batches + [None]:  # type: ignore[list-item]
                if b is None or (chunk and sum(x.n for x in chunk) + b.n > point_cap):
                    if chunk:
                        self.applier.apply(chunk, [])
                    chunk = []
                if b is not None:
                    chunk.append(b)
        finally:
            self._local.applying = False
        if records or batches or skipped:
            log.info("replayed the ingest log: %d run records, %d metric batches (%d "
                     "unreadable entries skipped)", len(records), len(batches), skipped)
        self.record_log.release_all()

    def _future(self) -> asyncio.Future[None]:
        assert self._loop is not None, "DirectSink.start() was not awaited"
        return self._loop.create_future()

    def submit_metrics(self, batch: DecodedMetrics, raw: bytes,
                       batch_id: tuple[str, int]) -> asyncio.Future[None]:
        fut = self._future()
        with self._cond:
            if batch_id in self._committed:
                m.DUPLICATE_BATCHES.inc()
                fut.set_result(None)
                return fut
            # An empty buffer always takes one batch (its size is capped by the
            # per-batch limit): otherwise a batch larger than the bound would be
            # refused forever and its client would retry without end.
            if (self._pending_points
                    and self._pending_points + batch.n > self.config.max_pending_points):
                m.REJECTED.labels(reason="sink_full").inc()
                raise ResourceExhausted(
                    f"ingest buffer holds {self._pending_points} points; the limit is "
                    f"{self.config.max_pending_points}", retry_after_s=self.config.linger_s,
                    field="pending_points", limit=self.config.max_pending_points,
                )
            first = not self._batches and not self._records
            if first:
                self._first_pending_at = time.monotonic()
            self._batches.append((batch, batch_id, fut, raw))
            self._pending_points += batch.n
            # Wake the log thread on the first item (it starts the linger clock) and
            # when a group is full; in between it sleeps until the linger ends.
            # A batch that goes through the log (a short run's points, an MLflow REST
            # request) is appended at once, like a run record: lingering would only
            # delay its acknowledgement; the apply groups it with the rest anyway.
            urgent = self.record_log is not None and batch.n <= self.config.log_batch_points
            if urgent:
                self._urgent = True
            if first or urgent or self._pending_points >= self.config.max_group_points:
                self._cond.notify()
        return fut

    def submit_record(self, record: pb.LogRecord, key: str) -> asyncio.Future[None]:
        return self.submit_records([record])[0]

    def submit_records(self, records: list[pb.LogRecord], new_run: str = ""
                       ) -> list[asyncio.Future[None]]:
        """Several records at once, in order: they land in one group. `new_run`: the id
        of a run they create that cannot exist (drawn at random by the server)."""
        futs = [self._future() for _ in records]
        with self._cond:
            if self._unapplied_records >= self.config.max_pending_records:
                m.REJECTED.labels(reason="sink_full").inc()
                raise ResourceExhausted(
                    f"{self._unapplied_records} run records wait to be applied; the limit "
                    f"is {self.config.max_pending_records}", retry_after_s=0.1,
                    field="pending_records", limit=self.config.max_pending_records)
            if not self._batches and not self._records:
                self._first_pending_at = time.monotonic()
            self._records.extend(zip(records, futs))
            if new_run:
                self._new_runs.add(new_run)
            self._unapplied_records += len(records)
            # Run lifecycle and params are interactive calls: commit them promptly.
            self._cond.notify()
        return futs

    # ---------------------------------------------------------------- log thread
    def _take_group(self) -> tuple[list[_Batch], list[_Record], int, set[str]] | None:
        with self._cond:
            while True:
                if self._batches or self._records:
                    waited = time.monotonic() - self._first_pending_at
                    urgent = (self._records or self._urgent
                              or self._pending_points >= self.config.max_group_points)
                    if urgent or waited >= self.config.linger_s or self._closing:
                        return self._cut_group()
                    self._cond.wait(self.config.linger_s - waited)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _cut_group(self) -> tuple[list[_Batch], list[_Record], int, set[str]]:
        """Take all records and up to max_insert_points of batches (lock held)."""
        cap, taken, n = self.config.max_insert_points, 0, 0
        for b, _, _, _ in self._batches:
            if n and taken + b.n > cap:
                break
            taken += b.n
            n += 1
        batches, self._batches = self._batches[:n], self._batches[n:]
        records, self._records = self._records, []
        new_runs, self._new_runs = self._new_runs, set()
        self._urgent = False
        if self._batches:
            self._first_pending_at = time.monotonic() - self.config.linger_s  # due now
        return batches, records, taken, new_runs

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            batches, records, points, new_runs = group
            segment, acked = -1, False
            if self.record_log is not None:
                limit = self.config.log_batch_points
                # Loggable batches first (the order of the apply: records before points
                # is kept by the applier, so only their grouping matters here).
                small = [b for b in batches if b[0].n <= limit]
                batches = small + [b for b in batches if b[0].n > limit]
                entries = ([_KIND_RECORD + r.SerializeToString() for r, _ in records]
                           + [_KIND_BATCH + raw for _, _, _, raw in small])
                if entries:
                    try:
                        with self._apply_cond:
                            segment = self.record_log.append(entries)
                            self._logged_seq += len(entries)
                        acked = True
                        self._health["append"][1] = time.monotonic()
                    except Exception as e:  # disk full, I/O error: nothing acknowledged
                        self._health["append"][0] = time.monotonic()
                        log.exception("appending %d entries to the ingest log failed",
                                      len(entries))
                        err = Unavailable(f"ingest log append failed: {e}")
                        self._resolve([f for _, f in records], err)
                        with self._cond:
                            self._unapplied_records -= len(records)
                        records = []
                if acked:
                    if self.hot is not None:  # before anyone hears of the ack
                        self.hot.acknowledged([r for r, _ in records],
                                              [b[0] for b in small], new_runs)
                    self._resolve([f for _, f in records], None)
                    self._resolve([f for _, _, f, _ in small], None)
                    # Durable now: listeners see them at once, not after the apply.
                    if self._commit_listeners:
                        self._notify_commit([b[0] for b in small], [r for r, _ in records])
                    with self._cond:
                        for _, bid, _, _ in small:
                            self._committed[bid] = None
                logged_batches = len(small) if acked else 0
            else:
                logged_batches = 0
            with self._apply_cond:
                seq = self._logged_seq
                self._applyq.append(_Group(batches, records, points, logged_batches, seq,
                                           segment, acked, new_runs, time.monotonic()))
                self._apply_cond.notify_all()
        with self._apply_cond:
            self._applyq.append(_Group([], [], 0, 0, -1, -1, False, set()))  # the end
            self._apply_cond.notify_all()

    # -------------------------------------------------------------- apply thread
    def _next_groups(self) -> list[_Group] | None:
        """Every group that waits (at least one), up to max_insert_points of batches."""
        with self._apply_cond:
            while not self._applyq:
                self._apply_cond.wait()
            due = self._applyq[0].queued_at + self.config.apply_linger_s
            while self._may_linger() and (left := due - time.monotonic()) > 0:
                self._apply_cond.wait(left)
            out: list[_Group] = []
            points = 0
            while self._applyq:
                g = self._applyq[0]
                if g.seq < 0:  # the end marker
                    if out:
                        return out
                    return None
                if out and points + g.points > self.config.max_insert_points:
                    break
                out.append(self._applyq.popleft())
                points += g.points
            return out

    def _may_linger(self) -> bool:
        """May the queued groups wait for more (lock held)? See `apply_linger_s`."""
        linger = self.config.apply_linger_s
        if linger <= 0 or self._barrier_waiters:
            return False
        if time.monotonic() - self._last_apply_end > linger:
            return False  # after a quiet spell: a lone write is applied at once
        points = records = 0
        for g in self._applyq:
            if g.seq < 0 or not g.acked or g.logged_batches < len(g.batches):
                return False  # the end, or a caller waits for this group's insert
            points += g.points
            records += len(g.records)
        return (points < self.config.max_insert_points
                and records < self.config.apply_linger_records)

    def _apply_loop(self) -> None:
        self._local.applying = True
        while (groups := self._next_groups()) is not None:
            self._apply(groups)

    def _apply(self, groups: list[_Group]) -> None:
        # (item, acknowledged already at the log append)
        batches = [(b, i < g.logged_batches) for g in groups for i, b in enumerate(g.batches)]
        n_records = sum(len(g.records) for g in groups)
        records = [(r, f, g.acked) for g in groups for r, f in g.records]
        new_runs = set().union(*(g.new_runs for g in groups))
        release = [b for b, _ in batches]
        backoff = 0.05
        while True:
            t0 = time.perf_counter()
            try:
                errors = self.applier.apply([b[0] for b, _ in batches],
                                            [r for r, _, _ in records], new_runs)
                break
            except Exception as e:  # every waiter must hear about it
                self._health["apply"][0] = time.monotonic()
                log.exception("group commit failed")
                err = e if isinstance(e, MetricflowError) else Unavailable(
                    f"store insert failed: {e}")
                self._resolve([b[2] for b, acked in batches if not acked], err)
                self._resolve([f for _, f, acked in records if not acked], err)
                batches = [x for x in batches if x[1]]
                records = [x for x in records if x[2]]
                if not (batches or records) or self._closing:
                    # Nothing acknowledged waits (or the process stops: the log keeps
                    # what was acknowledged and the next start applies it).
                    self._release_points(release)
                    self._applied(groups, n_records, done=not (batches or records))
                    return
                # Logged entries were acknowledged: keep applying them (reads wait).
                with self._apply_cond:
                    self._apply_error = err
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        m.INSERT_SECONDS.observe(time.perf_counter() - t0)
        self._last_apply_end = time.monotonic()
        if batches or records:  # an empty apply (a group whose append failed) shows nothing
            self._health["apply"][1] = time.monotonic()
        points = sum(b[0].n for b, _ in batches)
        m.POINTS_WRITTEN.inc(points)
        m.INSERT_ROWS.observe(points)
        with self._cond:
            for b, acked in batches:
                if not acked:
                    self._committed[b[1]] = None
            while len(self._committed) > self.config.dedup_window:
                self._committed.popitem(last=False)
        self._release_points(release)
        if self.hot is not None:
            self.hot.acknowledged([], [b[0] for b, acked in batches if not acked], frozenset())
        self._resolve([b[2] for b, acked in batches if not acked], None)
        # What the log append acknowledged, listeners had then (`_run`).
        if self._commit_listeners:
            self._notify_commit([b[0] for b, acked in batches if not acked],
                                [r for r, _, acked in records if not acked])
        for (rec, fut, acked), rec_err in zip(records, errors):
            if not acked:
                self._resolve([fut], rec_err)
            elif rec_err is not None:
                # Acknowledged already: the call checked what the applier checks, so
                # this is a race those checks could not see; counted and logged.
                self.record_errors += 1
                log.warning("a logged run record was refused when applied: %s", rec_err)
                if self.hot is not None:  # the store says otherwise now: read it
                    self.hot.forget([_record_run(rec)])
        self._applied(groups, n_records)

    def _release_points(self, batches: list[_Batch]) -> None:
        with self._cond:
            self._pending_points -= sum(b[0].n for b in batches)

    def _applied(self, groups: list[_Group], n_records: int, done: bool = True) -> None:
        last = groups[-1]
        with self._cond:
            self._unapplied_records -= n_records
        with self._apply_cond:
            self._apply_error = None
            if not done:
                return
            if last.seq > self._applied_seq:
                self._applied_seq = last.seq
            if self.record_log is not None:
                if self._applied_seq >= self._logged_seq:
                    self.record_log.release_all()
                elif last.segment >= 0:
                    self.record_log.release(last.segment)
            self._apply_cond.notify_all()

    def wait_applied(self) -> None:
        """The read barrier: return once every record logged so far is applied.

        Called by the store before a read on any thread but the apply thread (a no-op
        when nothing waits, the usual case). Raises Unavailable if the store keeps
        failing for `read_barrier_timeout_s`.
        """
        if getattr(self._local, "applying", False):
            return
        with self._apply_cond:
            target = self._logged_seq
            if self._applied_seq >= target:
                return
            deadline = time.monotonic() + self.config.read_barrier_timeout_s
            self._barrier_waiters += 1
            self._apply_cond.notify_all()  # a lingering apply goes now
            try:
                while self._applied_seq < target:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Unavailable(
                            f"logged run records are not applied yet (the store: "
                            f"{self._apply_error or 'busy'}); retry")
                    self._apply_cond.wait(left)
            finally:
                self._barrier_waiters -= 1

    def _resolve(self, futs: list[asyncio.Future[None]], err: BaseException | None) -> None:
        if not futs or self._loop is None:
            return

        def done() -> None:
            for f in futs:
                if not f.done():
                    f.set_exception(err) if err is not None else f.set_result(None)

        self._loop.call_soon_threadsafe(done)

    async def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        loop = asyncio.get_running_loop()
        for t in (self._thread, self._apply_thread):
            if t is not None:
                await loop.run_in_executor(None, t.join)
        set_barrier = getattr(self.store, "set_read_barrier", None)
        if self.record_log is not None:
            if set_barrier is not None:
                set_barrier(None)
            self.record_log.close()


def _record_run(rec: pb.LogRecord) -> str:
    body = rec.WhichOneof("body")
    return getattr(rec, body).run_id if body else ""


__all__ = ["DirectSink", "DirectSinkConfig"]
