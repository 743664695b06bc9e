"""CreateRun with a client-chosen run id cannot take over an existing run.

The write path applies a run-create record as the run's new state, so without
this check a user with EDIT on their own experiment could re-create someone
else's run id there and then read and write it.
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb

CREATE = "/metricflow.ingest.v1.IngestService/CreateRun"


def _create(channel: grpc.Channel, md: tuple, **kw: str) -> ipb.CreateRunResponse:
    call = channel.unary_unary(CREATE, ipb.CreateRunRequest.SerializeToString,
                               ipb.CreateRunResponse.FromString)
    return call(ipb.CreateRunRequest(**kw), metadata=md, timeout=30)


def test_an_existing_run_id_cannot_be_recreated_elsewhere(secured, channel) -> None:
    admin = secured.client("admin")
    try:
        victim_exp = admin.registry.create_experiment(f"victim-{uuid.uuid4().hex[:6]}")
        mine = admin.registry.create_experiment(f"mine-{uuid.uuid4().hex[:6]}")
        victim = admin.create_run(victim_exp).run_id
    finally:
        admin.close()
    secured.store.set_experiment_permission(mine, "carol", "EDIT", actor="admin")
    md = secured.md("carol")
    with pytest.raises(grpc.RpcError) as ei:
        _create(channel, md, experiment_id=mine, run_id=victim)
    assert ei.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert victim in (ei.value.details() or "")
    # The run stayed where it was, and carol still cannot read it.
    reads = secured.client("admin")
    try:
        assert reads.get_run(victim).info.experiment_id == victim_exp
    finally:
        reads.close()
    from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb

    get = channel.unary_unary("/metricflow.query.v1.QueryService/GetRun",
                              qpb.GetRunRequest.SerializeToString, qpb.Run.FromString)
    with pytest.raises(grpc.RpcError) as ei:
        get(qpb.GetRunRequest(run_id=victim), metadata=md, timeout=30)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND  # unreadable: answered as missing
    # A fresh client-chosen id is fine.
    fresh = uuid.uuid4().hex
    assert _create(channel, md, experiment_id=mine, run_id=fresh).run.run_id == fresh
