"""One meaning of unset: None, whatever encoding (0, "", an absent field) a value came from."""

from __future__ import annotations

import dataclasses

import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.entities import MetricSummary, Run, RunInfo
from metricflow.entities.pb import run_from_pb, run_info_from_pb, run_info_to_pb, run_to_pb

RID = "ab" * 16


def test_a_run_that_has_not_ended_has_no_end_time_and_a_top_level_run_no_parent() -> None:
    info = RunInfo(RID, "1", end_time=0, parent_run_id="")  # a storage row's encoding
    assert info.end_time is None and info.parent_run_id is None
    assert RunInfo(RID, "1") == info
    ended = info.with_changes(end_time=5, parent_run_id="cd" * 16)
    assert (ended.end_time, ended.parent_run_id) == (5, "cd" * 16)
    assert ended.with_changes(end_time=0).end_time is None  # back to RUNNING


def test_run_info_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunInfo(RID, "1").end_time = 3  # type: ignore[misc]


@pytest.mark.parametrize("end_time, parent", [(None, None), (1234, "cd" * 16)])
def test_run_info_round_trips_protobuf(end_time: int | None, parent: str | None) -> None:
    info = RunInfo(RID, "1", "name", "me", "FINISHED" if end_time else "RUNNING", 1000,
                   end_time, parent, "active", "file:///a")
    m = pb.RunInfo.FromString(run_info_to_pb(info).SerializeToString())
    assert m.end_time == (end_time or 0) and m.parent_run_id == (parent or "")
    assert run_info_from_pb(m) == info


def test_unspecified_status_on_the_wire_reads_as_running() -> None:
    assert run_info_from_pb(pb.RunInfo(run_id=RID, experiment_id="1")).status == "RUNNING"


def test_a_searched_run_keeps_its_uncounted_metric_unknown_through_the_client_path() -> None:
    # search_runs does not count points: count stays None (not 0) on the wire and after.
    summary = MetricSummary("loss", 0.5, 999, 1999, 0.1, 1.0)
    assert summary.count is None
    run = Run(RunInfo(RID, "1"), {"lr": "0.1"}, {"t": "v"}, {"loss": summary})
    back = run_from_pb(qpb.Run.FromString(run_to_pb(run).SerializeToString()))
    assert back == run and back.metrics["loss"].count is None and back.run_id == RID
