"""Apply a group of ingest-log records (protobuf) to the MetricStore (typed rows, Arrow).

Used by the embedded in-process writer and by the Kafka writer, so both
deployments resolve run state, params and tags the same way. Records of one
run arrive in order (one writer thread; Kafka keyed by run_id), which makes the
read-modify-write of run state safe.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence, Set

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow.entities import TERMINAL_STATUSES, DecodedMetrics, RunInfo
from metricflow.entities.pb import run_info_from_pb
from metricflow.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidState,
    MetricflowError,
    NotFound,
)
from metricflow.store import InsertTables, MetricStore, build_insert


def merge_update(base: RunInfo, upd: pb.UpdateRunRequest, now_ms: int) -> RunInfo:
    """The run state after applying `upd` to `base`."""
    changes: dict[str, object] = {}
    if upd.resume:  # continue after preemption: running again, re-logged steps win
        changes.update(status="RUNNING", end_time=None, resume_count=base.resume_count + 1)
    elif upd.status:
        status = pb.RunStatus.Name(upd.status)
        changes["status"] = status
        if status in TERMINAL_STATUSES:
            changes["end_time"] = upd.end_time or now_ms
        elif status == "RUNNING":
            changes["end_time"] = None
    elif upd.end_time:
        changes["end_time"] = upd.end_time
    if upd.run_name:
        changes["run_name"] = upd.run_name
    if upd.lifecycle_stage:
        changes["lifecycle_stage"] = upd.lifecycle_stage
    return base.with_changes(**changes)


class LogApplier:
    """Turns records into inserts; returns one error (or None) per record."""

    def __init__(self, store: MetricStore, cache_runs: int = 0) -> None:
        """Args:
            cache_runs: remember the state and params of this many recently applied
                runs instead of reading them before each group. Only for the store's
                sole writer (the embedded sink), whose cache then equals the store;
                0 (the Kafka writer: partitions move between writers) reads every time.
        """
        self.store = store
        self._last_version = 0
        self.param_conflicts = 0
        self.cache_runs = cache_runs
        self._states: OrderedDict[str, RunInfo] = OrderedDict()
        self._params: OrderedDict[str, dict[str, str]] = OrderedDict()

    def _version(self) -> int:
        self._last_version = max(self._last_version + 1, time.time_ns())
        return self._last_version

    def apply(
        self, batches: Sequence[DecodedMetrics], records: Sequence[pb.LogRecord],
        new_runs: Set[str] = frozenset(),
    ) -> list[MetricflowError | None]:
        """`new_runs`: ids of runs being created that cannot exist yet (ids the server
        drew at random), so their existence is not read from the store."""
        return self.apply_prepared(build_insert(batches) if batches else None, records,
                                   new_runs)

    def apply_prepared(
        self, tables: InsertTables | None, records: Sequence[pb.LogRecord],
        new_runs: Set[str] = frozenset(),
    ) -> list[MetricflowError | None]:
        """Like apply(), with the metric batches already built into insert tables
        (a caller can build the next group while this one is being inserted)."""
        errors: list[MetricflowError | None] = [None] * len(records)
        forks: list[RunInfo] = []
        if records:
            try:
                forks = self._apply_records(records, errors, new_runs)
            except BaseException:
                self._states.clear()  # partly inserted: read the store again
                self._params.clear()
                raise
        if tables is not None:
            self.store.insert_metrics(tables)
        # After this group's points: a parent's last points may share the group (the
        # embedded sink acknowledges logged batches before it applies them).
        for c in forks:
            self.store.seed_fork(c.run_id, c.forked_from or "", c.fork_step or 0)
        return errors

    def _apply_records(
        self, records: Sequence[pb.LogRecord], errors: list[MetricflowError | None],
        new_runs: Set[str] = frozenset(),
    ) -> list[RunInfo]:
        """Apply the records; returns the forks created (their summaries are seeded
        once the group's points are in)."""
        create_ids = {r.run_create.run_id for r in records
                      if r.WhichOneof("body") == "run_create"}
        wanted = set()
        for r in records:
            kind = r.WhichOneof("body")
            if kind == "run_update":
                wanted.add(r.run_update.run_id)
            elif kind == "params_tags":
                wanted.add(r.params_tags.run_id)
        # Runs being created are looked up too: a create record never overwrites an
        # existing run. A replay of its own create (same experiment) is a no-op; a
        # create in another experiment is refused, so a client-chosen run id accepted
        # by an ingest node that could not see the run never moves it.
        look = wanted | create_ids
        current = {r: self._states[r] for r in look if r in self._states}
        unknown = look - set(current) - (new_runs & create_ids)
        if unknown:
            current.update(self.store.get_run_infos(unknown))
        existing = set(current) & create_ids
        param_ids = {r.params_tags.run_id for r in records
                     if r.WhichOneof("body") == "params_tags" and r.params_tags.params}
        params = {r: dict(self._params[r]) for r in param_ids if r in self._params}
        params.update({r: {} for r in param_ids & new_runs & create_ids if r not in params})
        if param_ids - set(params):
            params.update(self.store.get_params(param_ids - set(params)))
        runs: dict[str, RunInfo] = {}
        created: list[RunInfo] = []  # as created, before this group's updates
        reseed: list[RunInfo] = []
        param_rows: list[tuple[str, str, str]] = []
        tag_rows: list[tuple[str, str, str, int]] = []
        now_ms = int(time.time() * 1000)
        for i, rec in enumerate(records):
            kind = rec.WhichOneof("body")
            try:
                if kind == "run_create":
                    info = run_info_from_pb(rec.run_create)
                    if info.run_id in existing:
                        if current[info.run_id].experiment_id != info.experiment_id:
                            raise AlreadyExists(
                                f"run {info.run_id!r} already exists in another experiment",
                                field="run_id", received=info.run_id)
                        if info.forked_from:  # its seed may not have been written before
                            reseed.append(info)  # a crash; writing it again is idempotent
                        continue  # replayed (or repeated) create: the run stays as it is
                    existing.add(info.run_id)
                    runs[info.run_id] = current[info.run_id] = info
                    created.append(info)
                elif kind == "run_update":
                    rid = rec.run_update.run_id
                    base = current.get(rid)
                    if base is None:
                        raise NotFound(f"run {rid!r} does not exist", field="run_id")
                    runs[rid] = current[rid] = merge_update(base, rec.run_update, now_ms)
                elif kind == "params_tags":
                    self._params_tags(rec.params_tags, current, params, param_rows, tag_rows)
            except MetricflowError as e:
                errors[i] = e
        # New runs first, as created: the search views file each param and tag row
        # under its run's experiment as it is inserted, and a run they cannot see yet
        # files the row under '' (found, but every search on that key then folds ''
        # rows). The group's final run states go last, as before: if an insert fails
        # and the group is applied again, a delete in it is not yet stored, so the
        # params and tags logged before it are still accepted.
        stage_change = any(r.WhichOneof("body") == "run_update" and r.run_update.lifecycle_stage
                           for r in records)
        if not stage_change:
            # No delete or restore in the group: one runs insert, before the params and
            # tags, holds the new runs as created and every changed state after them
            # (a larger version wins), instead of two inserts.
            fresh = {id(c) for c in created}
            rows = created + [r for r in runs.values() if id(r) not in fresh]
            if rows:
                self.store.insert_runs(rows, [self._version() for _ in rows])
        elif created and (param_rows or tag_rows):
            self.store.insert_runs(created, [self._version() for _ in created])
        if param_rows:
            self.store.insert_params(param_rows, self._version())
        if tag_rows:
            self.store.insert_tags(tag_rows, self._version())
        if runs and stage_change:
            self.store.insert_runs(list(runs.values()), [self._version() for _ in runs])
        if self.cache_runs:
            for c in created:  # a run that did not exist has no params but these
                params.setdefault(c.run_id, {})
            self._remember(runs, params)
        return [c for c in created if c.forked_from] + reseed

    def _remember(self, runs: dict[str, RunInfo], params: dict[str, dict[str, str]]) -> None:
        """What this group stored: the cache stays equal to the store."""
        for rid, info in runs.items():
            self._states[rid] = info
            self._states.move_to_end(rid)
        for rid, p in params.items():
            self._params[rid] = p
            self._params.move_to_end(rid)
        for cache in (self._states, self._params):
            while len(cache) > self.cache_runs:
                cache.popitem(last=False)

    def _params_tags(self, req: pb.LogBatchRequest, current: dict[str, RunInfo],
                     params: dict[str, dict[str, str]], param_rows: list, tag_rows: list) -> None:
        rid = req.run_id
        info = current.get(rid)
        if info is None:
            raise NotFound(f"run {rid!r} does not exist", field="run_id")
        if info.lifecycle_stage != "active":
            raise InvalidState(f"run {rid!r} is deleted; restore it before logging to it",
                               field="run_id")
        existing = params.setdefault(rid, {})
        new_params = []
        for p in req.params:
            old = existing.get(p.key)
            if old is not None and old != p.value:
                self.param_conflicts += 1
                raise InvalidArgument(
                    f"param {p.key!r} of run {rid} is already {old!r}; params are immutable, "
                    f"so it cannot be changed to {p.value!r}",
                    field=f"params[{p.key!r}]", received=p.value,
                )
            if old is None:
                new_params.append((rid, p.key, p.value))
        # Only commit when the whole request is valid.
        for _, k, v in new_params:
            existing[k] = v
        param_rows.extend(new_params)
        tag_rows.extend((rid, t.key, "" if t.deleted else t.value, int(t.deleted))
                        for t in req.tags)
