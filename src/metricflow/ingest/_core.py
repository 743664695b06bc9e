"""TrackingCore: the write-side rules of runs, params, tags and metrics.

Shared by every front end (the gRPC IngestService, the MLflow REST API): they
validate the same way and hand records to the same sink, so a run's history is
consistent whichever API wrote it. Requests are the ingest protobuf messages.
"""

from __future__ import annotations

import asyncio
import getpass
import time
import uuid
from typing import Any

from metricflow._env import PARAM_MEMORY_S
from metricflow._events import emit_run_created, emit_run_ended
from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._validation import (
    DEFAULT_LIMITS,
    Limits,
    check_params,
    check_run_id,
    check_run_name,
    check_tags,
)
from metricflow._wire import DecodedMetrics, decode_metrics
from metricflow.auth import caller, current
from metricflow.entities import RunInfo
from metricflow.entities.pb import run_info_from_pb, run_info_to_pb
from metricflow.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from metricflow.ingest import _metrics as m
from metricflow.ingest._applier import merge_update
from metricflow.ingest._audit_batch import AuditBatcher
from metricflow.ingest._known_params import KnownParams
from metricflow.ingest._names import random_run_name
from metricflow.ingest._param_guard import ParamGuard
from metricflow.ingest._sink import IngestSink
from metricflow.store import MAX_FORK_DEPTH, MetricStore

FORKED_FROM_TAG = "metricflow.forkedFrom"
"""System tag of a fork: its parent's run id (search: tags.`metricflow.forkedFrom` = '<id>')."""
FORK_STEP_TAG = "metricflow.forkStep"
"""System tag of a fork: the last step read from its parent."""


class RunCache:
    """Recently seen run states, so the hot path rarely queries the store."""

    def __init__(self, store: MetricStore, ttl_s: float = 30.0, max_size: int = 100_000) -> None:
        self.store, self.ttl_s, self.max_size = store, ttl_s, max_size
        self._runs: dict[str, tuple[float, RunInfo]] = {}

    def put(self, info: RunInfo) -> None:
        if len(self._runs) >= self.max_size:
            self._runs.clear()
        self._runs[info.run_id] = (time.monotonic(), info)

    async def info(self, run_id: str) -> RunInfo | None:
        """The run as last seen (None when neither the cache nor the store knows it)."""
        return await self.find(run_id, self.store)

    async def find(self, run_id: str, lookup: Any, wait_s: float = 0.0) -> RunInfo | None:
        """The run from the cache, else from `lookup` (anything with `get_run_infos`),
        asking again for up to `wait_s` while it does not show the run.

        A run seen here before (created through this process) stays known when the lookup
        does not show it yet: the writer lags, the run exists.
        """
        hit = self._runs.get(run_id)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        deadline = time.monotonic() + wait_s
        while True:
            infos = await asyncio.to_thread(lookup.get_run_infos, [run_id])
            info = infos.get(run_id)
            if info is not None:
                self.put(info)
                return info
            if hit is not None:
                return hit[1]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(0.1, left))

    async def stage(self, run_id: str) -> str | None:
        info = await self.info(run_id)
        return None if info is None else info.lifecycle_stage


class TrackingCore:
    """Validates writes and submits them to the sink; returns once they are durable."""

    def __init__(self, sink: IngestSink, store: MetricStore, metadata: Any,
                 limits: Limits = DEFAULT_LIMITS, strict_runs: bool = True,
                 guard_params: bool | None = None, *, upstream: Any = None,
                 run_wait_s: float = 0.0,
                 param_memory_s: float = PARAM_MEMORY_S.default) -> None:
        """Args:
            store: the data plane's runs (MetricStore), or an ingest node's NoRunLookup
                (`sees_all_runs = False`: it knows no run) when it has no --clickhouse.
            strict_runs: refuse writes to runs the store does not show (embedded); off in
                Kafka mode, where a run created a moment ago may not be in ClickHouse yet.
            guard_params: check params against stored and recently accepted ones at the
                call (default: when not strict_runs, i.e. when the sink applies them later;
                the embedded sink applies them before the call returns).
            upstream: where a node without a store reads runs and params off the hot
                path (UpstreamRuns over --query-upstream); None = the store.
            run_wait_s: Kafka mode: how long a lifecycle call or a child's parent waits
                for a run the lookup does not show yet (created through another process
                within the writer's lag).
            param_memory_s: ParamGuard's memory of accepted params (the settings pass
                METRICFLOW_PARAM_MEMORY_S; default its declared 5 minutes).
        """
        self.sink, self.store, self.metadata, self.limits = sink, store, metadata, limits
        self.runs = RunCache(store)
        # Run audit entries of concurrent calls share a transaction (_audit_batch.py).
        write_many = getattr(metadata, "record_audit_many", None)
        self._audit = AuditBatcher(write_many) if write_many is not None else None
        self.strict_runs = strict_runs
        self.run_wait_s = 0.0 if strict_runs else run_wait_s
        # Off the hot path (lifecycle calls, parents, stored params) a node without a
        # store reads through its upstream; with neither it knows only its own runs.
        self.lookup: Any = upstream if upstream is not None else (
            store if getattr(store, "sees_all_runs", True) else None)
        if guard_params is None:
            guard_params = not strict_runs
        self.params = (ParamGuard(getattr(self.lookup, "get_params", None), param_memory_s)
                       if guard_params else None)
        # The embedded sink may acknowledge run records once they are durable in its
        # log, before it applies them: then what the applier would refuse (a changed
        # param, a client-chosen run id of another experiment) is refused here, and
        # this process, the store's only writer, knows each run's params exactly.
        self.acks_before_apply = bool(getattr(sink, "acks_before_apply", False))
        self.known_params = (KnownParams(store.get_params)
                             if self.acks_before_apply and self.params is None else None)
        if self.acks_before_apply:
            # Every run write goes through this object (create and update put the new
            # state here), so a cached state never goes stale: reading it again after
            # 30 s made each call of a long run wait for the sink's apply.
            self.runs.ttl_s = float("inf")

    async def find_run(self, run_id: str) -> RunInfo | None:
        """The run for a lifecycle call or as a parent: this process's cache, else the
        store or upstream, waiting up to `run_wait_s` for a run it does not show yet.

        None when the run is not found, and also when this process has no way to look
        runs up (an ingest node with neither --clickhouse nor --query-upstream).
        """
        if self.lookup is None:
            return await self.runs.info(run_id)
        return await self.runs.find(run_id, self.lookup, self.run_wait_s)

    async def check_run_active(self, run_id: str) -> None:
        check_run_id(run_id)
        stage = await self.runs.stage(run_id)
        if stage is None and self.strict_runs:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id", received=run_id)
        if stage == "deleted":
            raise InvalidState(f"run {run_id!r} is deleted; restore it before logging to it",
                               field="run_id", received=run_id)

    async def write_metrics(self, decoded: DecodedMetrics, raw: bytes,
                            batch_id: tuple[str, int]) -> None:
        """Submit one validated metric batch and wait until it is durable."""
        await self.check_run_active(decoded.run_id)
        await self._check_fork_steps(decoded)
        await self.sink.submit_metrics(decoded, raw, batch_id)
        m.POINTS_IN.inc(decoded.n)

    async def log_batch(self, request: pb.LogBatchRequest) -> None:
        """Params, tags and (optionally) metrics of one run, all or nothing per part."""
        await self.check_run_active(request.run_id)
        params = {p.key: p.value for p in request.params}
        if len(params) != len(request.params):
            raise InvalidArgument("params has the same key twice", field="params")
        check_params(params, self.limits)
        check_tags({t.key: t.value for t in request.tags}, self.limits)
        decoded = None
        cols = request.metrics
        if request.HasField("metrics") and (cols.values or cols.steps or cols.timestamps
                                            or cols.key_index or cols.keys):
            # any column present means a batch: decode validates all of them
            decoded = decode_metrics(request.run_id, request.metrics, self.limits)
            await self._check_fork_steps(decoded)
        if request.params or request.tags:
            rec = pb.LogRecord(params_tags=pb.LogBatchRequest(
                run_id=request.run_id, params=request.params, tags=request.tags),
                logged_at_ns=time.time_ns())
            reserved: list[str] = []
            guard = self.params if self.params is not None else self.known_params
            if guard is not None and params:
                reserved = await guard.reserve(request.run_id, params)
            try:
                await self.sink.submit_record(rec, request.run_id)
            except BaseException:
                if guard is not None:
                    guard.release(request.run_id, reserved)
                raise
        if decoded is not None:
            bid = (request.client_id or uuid.uuid4().hex, request.seq)
            # Every sink forwards a WriteBatch as-is: the Kafka writer parses exactly that
            # (bare MetricColumns bytes were dropped there as malformed).
            wb = pb.WriteBatch(client_id=bid[0], seq=bid[1], run_id=request.run_id,
                               metrics=request.metrics)
            await self.sink.submit_metrics(decoded, wb.SerializeToString(), bid)
            m.POINTS_IN.inc(decoded.n)

    async def _check_fork_steps(self, decoded: DecodedMetrics) -> None:
        """A fork's own points come after its fork step (steps up to it are the parent's)."""
        if not decoded.n:
            return
        info = await self.runs.info(decoded.run_id)
        if info is not None and info.forked_from and info.fork_step is not None:
            low = int(decoded.steps.min())
            if low <= info.fork_step:
                raise InvalidArgument(
                    f"run {decoded.run_id!r} is a fork of {info.forked_from!r} at step "
                    f"{info.fork_step}: its steps up to {info.fork_step} are the parent's, so "
                    f"a step must be greater than {info.fork_step}, got {low}",
                    field="step", limit=info.fork_step + 1, received=low)

    async def _fork_parent(self, request: pb.CreateRunRequest) -> RunInfo:
        """The run a fork is created from, checked: it exists, is active, and its lineage
        is short enough for reads to follow (MAX_FORK_DEPTH)."""
        check_run_id(request.fork_from, "fork_from")
        if not 0 <= request.fork_step < (1 << 63) - 1:  # the fork needs a step after it
            raise InvalidArgument(f"fork_step must be in [0, {(1 << 63) - 2}], got "
                                  f"{request.fork_step}", field="fork_step",
                                  limit=(1 << 63) - 2, received=request.fork_step)
        parent = await self.find_run(request.fork_from)
        if parent is None:
            raise NotFound(f"run {request.fork_from!r} to fork from does not exist",
                           field="fork_from", received=request.fork_from)
        if parent.lifecycle_stage != "active":
            raise InvalidState(f"run {request.fork_from!r} is deleted; restore it before "
                               "forking from it", field="fork_from", received=request.fork_from)
        depth, cur = 1, parent
        while cur.forked_from:
            depth += 1
            if depth > MAX_FORK_DEPTH:
                raise InvalidArgument(
                    f"run {request.fork_from!r} is already {depth - 1} forks deep; a fork "
                    f"chain may be at most {MAX_FORK_DEPTH} runs long", field="fork_from",
                    limit=MAX_FORK_DEPTH, received=depth)
            nxt = await self.find_run(cur.forked_from)
            if nxt is None:
                break
            cur = nxt
        return parent

    async def create_run(self, request: pb.CreateRunRequest, *,
                         user_tag: bool = True) -> RunInfo:
        """Create a run with its system tags; `user_tag=False` leaves out `mlflow.user`
        (MLflow's server keeps only the tags its client sent).

        A fork (`fork_from`, `fork_step`) reads its parent's history up to fork_step
        through a pointer; it defaults to the parent's experiment."""
        exp_id = request.experiment_id
        fork_parent = None
        if request.fork_from:
            fork_parent = await self._fork_parent(request)
            if not exp_id:  # the guard checked Default; the fork goes to the parent's
                await _check_may_edit(fork_parent.experiment_id)
                exp_id = fork_parent.experiment_id
        elif request.fork_step:
            raise InvalidArgument("fork_step needs fork_from (the run to fork)",
                                  field="fork_step", received=request.fork_step)
        if request.parent_run_id:
            check_run_id(request.parent_run_id, "parent_run_id")
            if not exp_id:
                exp_id = await self._parent_experiment(request.parent_run_id)
        exp_id = exp_id or "0"
        exp = await asyncio.to_thread(self.metadata.get_experiment, exp_id)
        exp_id = exp.experiment_id  # canonical: '02', ' 2', '+2' are experiment 2
        if exp.lifecycle_stage != "active":
            raise InvalidState(f"experiment {exp_id!r} is deleted; runs cannot be created in it",
                               field="experiment_id", received=exp_id)
        run_id = request.run_id or uuid.uuid4().hex
        check_run_id(run_id)
        if request.run_id and self.acks_before_apply:
            # A client-chosen id: the applier would refuse one of another experiment
            # after the call was acknowledged; refuse it here. The same experiment is a
            # retry: the applier leaves the run as it is (exactly once).
            known = await self.find_run(run_id)
            if known is not None and known.experiment_id != exp_id:
                raise AlreadyExists(f"run {run_id!r} already exists in another experiment",
                                    field="run_id", received=run_id)
        tags = {t.key: t.value for t in request.tags}
        check_tags(tags, self.limits)
        name = check_run_name(request.run_name or tags.get("mlflow.runName") or random_run_name())
        info = RunInfo(
            run_id=run_id, experiment_id=exp_id, run_name=name,
            # With auth on the run belongs to the authenticated caller, whatever it claims.
            user_id=caller(request.user_id),  # the one rule (auth._context.caller)
            status="RUNNING", start_time=request.start_time or int(time.time() * 1000),
            parent_run_id=request.parent_run_id, lifecycle_stage="active",
            artifact_uri=f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts",
            forked_from=request.fork_from or None,
            fork_step=request.fork_step if fork_parent is not None else None,
        )
        rec = pb.LogRecord(logged_at_ns=time.time_ns())
        run_info_to_pb(info, rec.run_create)
        system = {"mlflow.runName": name}
        if user_tag:
            system["mlflow.user"] = info.user_id
        if info.parent_run_id:
            system["mlflow.parentRunId"] = info.parent_run_id
        if info.forked_from:  # searchable like any tag (tags.`metricflow.forkedFrom` = '...')
            system[FORKED_FROM_TAG] = info.forked_from
            system[FORK_STEP_TAG] = str(info.fork_step)
        all_tags = {**system, **tags}
        trec = pb.LogRecord(params_tags=pb.LogBatchRequest(
            run_id=run_id, tags=[pb.Tag(key=k, value=v) for k, v in all_tags.items()]),
            logged_at_ns=time.time_ns())
        if self.acks_before_apply:
            # Checked above: both records in one group, one durable append.
            await asyncio.gather(*self.sink.submit_records(  # type: ignore[attr-defined]
                [rec, trec], new_run="" if request.run_id else run_id))
            self.runs.put(info)
            if self.known_params is not None and not request.run_id:
                self.known_params.created(run_id)  # a new id: no params yet
            emit_run_created(self.metadata, info)
            await self._audit_run("create_run", run_id, None, _run_audit(info))
            return info
        # Otherwise the create must have succeeded before its tags are written: a
        # refused create (another experiment's run id) must not get them.
        await self.sink.submit_record(rec, run_id)
        self.runs.put(info)
        await self.sink.submit_record(trec, run_id)
        emit_run_created(self.metadata, info)
        await self._audit_run("create_run", run_id, None, _run_audit(info))
        return info

    async def _audit_run(self, action: str, run_id: str, before: dict[str, Any] | None,
                         after: dict[str, Any] | None) -> None:
        """A run's lifecycle change in the control plane's hash-chained audit log."""
        if self._audit is not None:  # None: a control plane without an audit log
            await self._audit.record(actor=caller(), action=action, entity_type="run",
                                     entity_id=run_id, before=before, after=after)

    async def _parent_experiment(self, parent_run_id: str) -> str:
        """The experiment a child run inherits when its request names none.

        Kafka mode: a parent created through another process a moment ago is waited
        for (`run_wait_s`). A parent that cannot be found is refused in every mode,
        never replaced by the Default experiment.
        """
        parent = await self.find_run(parent_run_id)
        if parent is not None:
            await _check_may_edit(parent.experiment_id)
            return parent.experiment_id
        where = ""
        if self.lookup is None:
            where = (" (this ingest node knows only the runs created through it: start it "
                     "with --query-upstream or --clickhouse to look others up)")
        raise NotFound(f"parent run {parent_run_id!r} does not exist, so the run has no "
                       f"experiment to inherit; pass experiment_id{where}",
                       field="parent_run_id", received=parent_run_id)

    async def update_run(self, request: pb.UpdateRunRequest) -> RunInfo | None:
        """Status/end time/name/lifecycle change; returns the new state when known.

        The run must exist: in Kafka mode it is found like a parent (`find_run`, so a
        run created through this process a moment ago is known at once). Raises
        NotFound otherwise; only a node with no way to look runs up takes the call
        unchecked (the writer drops it if the run does not exist) and returns None.
        """
        check_run_id(request.run_id)
        if request.lifecycle_stage not in ("", "active", "deleted"):
            raise InvalidArgument(
                f"lifecycle_stage must be 'active' or 'deleted', got {request.lifecycle_stage!r}",
                field="lifecycle_stage", received=request.lifecycle_stage)
        if request.run_name:
            check_run_name(request.run_name)
        known = await self.find_run(request.run_id)
        if known is None and (self.strict_runs or self.lookup is not None):
            raise NotFound(f"run {request.run_id!r} does not exist", field="run_id",
                           received=request.run_id)
        if request.resume and known is not None and known.lifecycle_stage != "active":
            raise InvalidState(f"run {request.run_id!r} is deleted; restore it before resuming "
                               "it", field="run_id", received=request.run_id)
        if request.resume and (request.status or request.end_time or request.lifecycle_stage):
            raise InvalidArgument("resume sets the status (RUNNING) and end time itself; send "
                                  "it alone", field="resume", received=True)
        if request.status in _TERMINAL and not request.end_time:
            # Stamp the end time here so the logged record is deterministic: a
            # replay of it (Kafka writer restart) must not move end_time.
            request = _with_end_time(request)
        rec = pb.LogRecord(run_update=request, logged_at_ns=time.time_ns())
        tag = None
        if request.run_name:
            tag = pb.LogRecord(params_tags=pb.LogBatchRequest(
                run_id=request.run_id, tags=[pb.Tag(key="mlflow.runName", value=request.run_name)]))
        if self.acks_before_apply and tag is not None:
            await asyncio.gather(*self.sink.submit_records([rec, tag]))  # type: ignore[attr-defined]
        else:
            await self.sink.submit_record(rec, request.run_id)
            if tag is not None:
                await self.sink.submit_record(tag, request.run_id)
        if self.strict_runs and not self.acks_before_apply:
            # The embedded sink has applied it: read what was stored.
            infos = await asyncio.to_thread(self.store.get_run_infos, [request.run_id])
            info = infos.get(request.run_id)
        else:
            # The writer applies it later: the state is the one known plus this change
            # (the writer merges it the same way), so this process sees it at once.
            # (Embedded with the record log: `known` is exact, this process being the
            # store's only writer.)
            info = (merge_update(known, request, int(time.time() * 1000))
                    if known is not None else None)
        if info is not None:
            self.runs.put(info)
        if request.status in _TERMINAL:
            emit_run_ended(self.metadata, request.run_id, pb.RunStatus.Name(request.status),
                           info, request.end_time)
        action = ("delete_run" if request.lifecycle_stage == "deleted" else "restore_run"
                  if request.lifecycle_stage == "active" else "resume_run" if request.resume
                  else "end_run" if request.status in _TERMINAL else "update_run")
        await self._audit_run(action, request.run_id,
                              _run_audit(known) if known is not None else None,
                              _run_audit(info) if info is not None else None)
        return info


def _run_audit(info: RunInfo) -> dict[str, Any]:
    """The audited fields of a run."""
    return {"experiment_id": info.experiment_id, "run_name": info.run_name,
            "status": info.status, "lifecycle_stage": info.lifecycle_stage,
            "user_id": info.user_id, "end_time": info.end_time}


async def _check_may_edit(experiment_id: str) -> None:
    """With auth on, the caller needs EDIT on an experiment its run inherits: the
    guard checked the request's experiment, which was empty (Default)."""
    cur = current()
    if cur is None:
        return
    from metricflow.auth import (
        Need,  # only with auth on
        Permission,
    )

    principal, authorizer = cur
    await asyncio.to_thread(authorizer.check, principal,
                            [Need("experiment", experiment_id, Permission.EDIT)])


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"



_TERMINAL = frozenset(pb.RunStatus.Value(s) for s in ("FINISHED", "FAILED", "KILLED"))


def _with_end_time(request: pb.UpdateRunRequest) -> pb.UpdateRunRequest:
    out = pb.UpdateRunRequest()
    out.CopyFrom(request)
    out.end_time = int(time.time() * 1000)
    return out


__all__ = ["RunCache", "TrackingCore", "run_info_from_pb"]
