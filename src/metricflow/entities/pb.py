"""Protobuf converters of the entities (the wire encoding of "unset" is 0 / "" / absent).

A module of its own so that importing `metricflow.entities` loads no protobuf code:
the store uses the value types and never the wire format.
"""

from __future__ import annotations

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.entities._run import MetricSummary, Run, RunInfo

__all__ = ["run_from_pb", "run_info_from_pb", "run_info_to_pb", "run_to_pb", "status_name"]

_STATUS_NAMES = {v: k for k, v in pb.RunStatus.items()}


def status_name(code: int) -> str:
    """The run status name of a `RunStatus` value; unspecified (0) reads as RUNNING."""
    return _STATUS_NAMES.get(code, "RUNNING") if code else "RUNNING"


def run_info_from_pb(m: pb.RunInfo) -> RunInfo:
    return RunInfo(
        run_id=m.run_id, experiment_id=m.experiment_id, run_name=m.run_name, user_id=m.user_id,
        status=status_name(m.status), start_time=m.start_time, end_time=m.end_time or None,
        parent_run_id=m.parent_run_id or None, lifecycle_stage=m.lifecycle_stage or "active",
        artifact_uri=m.artifact_uri, forked_from=m.forked_from or None,
        fork_step=m.fork_step if m.forked_from else None, resume_count=m.resume_count,
    )


def run_info_to_pb(info: RunInfo, out: pb.RunInfo | None = None) -> pb.RunInfo:
    m = out if out is not None else pb.RunInfo()
    m.run_id, m.experiment_id, m.run_name = info.run_id, info.experiment_id, info.run_name
    m.user_id, m.status = info.user_id, pb.RunStatus.Value(info.status)
    m.start_time, m.end_time = info.start_time, info.end_time or 0
    m.parent_run_id = info.parent_run_id or ""
    m.lifecycle_stage, m.artifact_uri = info.lifecycle_stage, info.artifact_uri
    m.forked_from, m.fork_step = info.forked_from or "", info.fork_step or 0
    m.resume_count = info.resume_count
    return m


def run_to_pb(run: Run, out: qpb.Run | None = None) -> qpb.Run:
    m = out if out is not None else qpb.Run()
    run_info_to_pb(run.info, m.info)
    m.params.update(run.params)
    m.tags.update(run.tags)
    for s in run.metrics.values():
        sm = m.metrics.add(key=s.key, last_value=s.last_value, last_step=s.last_step,
                           last_timestamp=s.last_timestamp, min_value=s.min_value,
                           max_value=s.max_value)
        if s.count is not None:  # unset on the wire = not counted (search)
            sm.count = s.count
    return m


def run_from_pb(m: qpb.Run) -> Run:
    metrics = {s.key: MetricSummary(s.key, s.last_value, s.last_step, s.last_timestamp,
                                    s.min_value, s.max_value,
                                    s.count if s.HasField("count") else None)
               for s in m.metrics}
    return Run(run_info_from_pb(m.info), dict(m.params), dict(m.tags), metrics)
