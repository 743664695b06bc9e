"""Store value types -> query protobuf messages."""

from __future__ import annotations

from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.store._applier import run_info_to_pb
from metricflow.store._types import Run


def run_to_pb(run: Run, out: qpb.Run | None = None) -> qpb.Run:
    m = out if out is not None else qpb.Run()
    run_info_to_pb(run.info, m.info)
    m.params.update(run.params)
    m.tags.update(run.tags)
    for s in run.metrics.values():
        pb = m.metrics.add(key=s.key, last_value=s.last_value, last_step=s.last_step,
                           last_timestamp=s.last_timestamp, min_value=s.min_value,
                           max_value=s.max_value)
        if s.count is not None:  # unset on the wire = not counted (search)
            pb.count = s.count
    return m
