"""A metric summary's unknown `count` (not counted) survives protobuf and the client,
and stays wire compatible with the plain uint64 it was (the store side:
tests/component/query/test_count_presence.py)."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.entities import MetricSummary, Run, RunInfo
from metricflow.entities.pb import run_from_pb, run_to_pb


def _run(count: int | None) -> Run:
    s = MetricSummary("loss", 0.5, 9, 19, 0.1, 1.0, count)
    return Run(RunInfo("ab" * 16, "1"), metrics={"loss": s})


@pytest.mark.parametrize("count", [None, 0, 1, 1000])
def test_count_presence_survives_proto_and_client(count: int | None) -> None:
    m = run_to_pb(_run(count))
    assert m.metrics[0].HasField("count") is (count is not None)
    back = run_from_pb(qpb.Run.FromString(m.SerializeToString()))
    assert back.metrics["loss"].count == count


def _old_summary_class():
    """MetricSummary as it was before `optional`: count a plain proto3 uint64."""
    fd = descriptor_pb2.FileDescriptorProto()
    qpb.DESCRIPTOR.message_types_by_name["MetricSummary"].file.CopyToProto(fd)
    msg = next(m for m in fd.message_type if m.name == "MetricSummary")
    old = descriptor_pb2.FileDescriptorProto(name="old_summary.proto",
                                             package="oldq", syntax="proto3")
    om = old.message_type.add()
    om.CopyFrom(msg)
    del om.oneof_decl[:]
    for f in om.field:
        f.ClearField("oneof_index")
        f.ClearField("proto3_optional")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(old)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("oldq.MetricSummary"))


def test_count_presence_is_wire_compatible_with_the_old_field() -> None:
    old_cls = _old_summary_class()
    assert not old_cls.DESCRIPTOR.fields_by_name["count"].has_presence
    # counted: the same bytes either way, and each side reads the other's
    old = old_cls(key="loss", last_value=0.5, count=1000)
    new = qpb.MetricSummary(key="loss", last_value=0.5, count=1000)
    assert new.SerializeToString() == old.SerializeToString()
    assert qpb.MetricSummary.FromString(old.SerializeToString()).count == 1000
    # not counted: an old server never sent 0, a new client reads that as unknown,
    # and an old client reading a new server's "unknown" sees the 0 it always saw
    assert not qpb.MetricSummary.FromString(old_cls(key="loss").SerializeToString()
                                            ).HasField("count")
    assert old_cls.FromString(qpb.MetricSummary(key="loss").SerializeToString()).count == 0
