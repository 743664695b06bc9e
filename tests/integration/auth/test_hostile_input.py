"""Hostile input against a live server: nothing partial is stored, nothing crashes."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow.errors import InvalidArgument, MetricflowError

LOG_BATCH = "/metricflow.ingest.v1.IngestService/LogBatch"
WRITE = "/metricflow.ingest.v1.IngestService/Write"


@pytest.fixture(scope="module")
def run_id(secured):
    a = secured.client("admin")
    eid = a.get_or_create_experiment("hostile")
    rid = a.create_run(eid).info.run_id
    a.log_batch(rid, params={"p": "1"})
    a.close()
    return rid


def _cols(n: int, values_n: int | None = None, keys=("a",)) -> pb.MetricColumns:
    return pb.MetricColumns(keys=list(keys), key_index=np.zeros(n, "<i4").tobytes(),
                            steps=np.arange(n, dtype="<i8").tobytes(),
                            timestamps=np.zeros(n, "<i8").tobytes(),
                            values=np.ones(values_n if values_n is not None else n,
                                           "<f8").tobytes())


def test_truncated_and_malformed_batches_are_rejected_whole(secured, channel, run_id) -> None:
    md = secured.md("admin")
    log = channel.unary_unary(LOG_BATCH, pb.LogBatchRequest.SerializeToString,
                              pb.LogBatchResponse.FromString)
    bad = [pb.LogBatchRequest(run_id=run_id, params=[pb.Param(key="q", value="1")],
                              metrics=_cols(10, values_n=9)),
           pb.LogBatchRequest(run_id=run_id, metrics=pb.MetricColumns(
               keys=["a"], key_index=np.zeros(2, "<i4").tobytes(), steps=b"\0" * 15,
               timestamps=np.zeros(2, "<i8").tobytes(), values=np.ones(2, "<f8").tobytes()))]
    for req in bad:
        with pytest.raises(grpc.RpcError) as ei:
            log(req, metadata=md, timeout=20)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    write = channel.stream_stream(WRITE, lambda b: b, pb.WriteAck.FromString)
    raws = [b"\xff\xff\xff", pb.WriteBatch(run_id=run_id, seq=7, metrics=_cols(5, 4))
            .SerializeToString(), pb.WriteBatch(run_id=run_id, seq=8, metrics=pb.MetricColumns(
                keys=["a"], key_index=np.zeros(2, "<i4").tobytes(),
                steps=np.zeros(2, "<i8").tobytes(), timestamps=np.zeros(2, "<i8").tobytes(),
                values=np.ones(2, "<f4").tobytes())).SerializeToString()]  # float32: wrong dtype
    acks = list(write(iter(raws), metadata=md, timeout=30))
    assert len(acks) == 3 and not any(a.ok for a in acks)
    assert {a.error_code for a in acks} == {"INVALID_PARAMETER_VALUE"}
    a = secured.client("admin")
    try:
        run = a.get_run(run_id)
        assert "q" not in run.params and run.metrics == {}  # nothing partial stored
    finally:
        a.close()


def test_log_batch_with_empty_values_but_other_columns_is_rejected(secured, channel,
                                                                   run_id) -> None:
    log = channel.unary_unary(LOG_BATCH, pb.LogBatchRequest.SerializeToString,
                              pb.LogBatchResponse.FromString)
    req = pb.LogBatchRequest(run_id=run_id, metrics=pb.MetricColumns(
        keys=["a"], key_index=b"\0\0\0", steps=b"", timestamps=b"", values=b""))
    with pytest.raises(grpc.RpcError):
        log(req, metadata=secured.md("admin"), timeout=20)


def test_sql_injection_in_filters_is_harmless(secured, run_id) -> None:
    a = secured.client("admin")
    try:
        for f in ("params.p = '1' OR 1=1 --", "params.p = '1'; DROP TABLE runs; --'",
                  "tags.`x') OR ('1'='1` = 'a'", "metrics.a > 0 UNION SELECT * FROM system.users",
                  "attributes.status = 'x' OR '1'='1'"):
            try:
                runs, _ = a.search_runs([], filter_string=f)
            except InvalidArgument:
                continue
            assert all(r.params.get("p") == "1" for r in runs)
        for f in ("name = 'x' OR 1=1", "name LIKE '%'; DELETE FROM experiments; --"):
            try:
                a.registry.search_experiments(f)
            except InvalidArgument:
                pass
        assert a.get_run(run_id).params == {"p": "1"}  # tables intact
        assert a.registry.get_experiment_by_name("hostile") is not None
    finally:
        a.close()


def test_limits_answer_400_naming_the_field_not_500(secured) -> None:
    deep = "(" * 200 + "metrics.a > 1" + ")" * 200
    for path in ("/api/v1/runs/search", "/api/v1/experiments/search",
                 "/api/v1/registered-models/search", "/api/v1/model-versions/search"):
        r = secured.post("admin", path, {"filter": deep})
        assert r.status_code == 400, (path, r.text)
        assert "nests parentheses 200 deep; the limit is 32" in r.json()["message"]
    r = secured.post("admin", "/api/v1/runs/search", {"filter": "a" * 20_000})
    assert r.status_code == 400 and "the limit is 10000" in r.json()["message"]
    r = secured.post("admin", "/api/v1/runs/search", {"max_results": 10**9})
    assert r.status_code == 400 and "max_results" in r.json()["message"]


def test_path_traversal_in_artifact_paths_is_refused(secured, run_id) -> None:
    a = secured.client("admin")
    try:
        for bad in ("../../etc/passwd", "/etc/passwd", "a/../../b", "a/\x00/b", "..\\..\\x"):
            with pytest.raises(MetricflowError) as ei:
                a.artifacts.upload_bytes(run_id, b"x", bad)
            assert isinstance(ei.value, InvalidArgument), (bad, ei.value)
        with pytest.raises(InvalidArgument):
            a.artifacts.list_artifacts(run_id, "../..")
    finally:
        a.close()


def test_unicode_names(secured) -> None:
    a = secured.client("admin")
    try:
        for name in ("实验 🚀", "e\u0301", "\u202eevil", "名" * 256):
            eid = a.get_or_create_experiment(name)
            assert a.registry.get_experiment(eid).name == name
        for bad in ("nul\x00byte", "", " ", "x" * 501, "line\nbreak"):
            with pytest.raises(InvalidArgument):
                a.registry.create_experiment(bad)
    finally:
        a.close()


def test_distinct_keys_per_run_are_capped(secured, channel, run_id) -> None:
    cap = secured.srv.server.auth.guard.keys.limit
    write = channel.stream_stream(WRITE, lambda b: b, pb.WriteAck.FromString)
    keys = [f"k{i}" for i in range(cap + 1)]
    batch = pb.WriteBatch(run_id=run_id, seq=1, metrics=pb.MetricColumns(
        keys=keys, key_index=np.arange(cap + 1, dtype="<i4").tobytes(),
        steps=np.zeros(cap + 1, "<i8").tobytes(), timestamps=np.zeros(cap + 1, "<i8").tobytes(),
        values=np.ones(cap + 1, "<f8").tobytes()))
    (ack,) = write(iter([batch.SerializeToString()]), metadata=secured.md("admin"), timeout=30)
    assert not ack.ok and ack.seq == 1 and f"limit per run is {cap}" in ack.error_message
