"""Artifact chunk reads are tied to a run the caller may read.

Chunks are content-addressed and shared between runs, and chunk RPCs carry only
hashes. A caller names the run (`mf-run-id` metadata); the guard needs READ on
that run and the servicer checks that every requested chunk is in one of the
run's manifests. So a reader of experiment A cannot fetch B's chunks by hash,
neither through B's run nor through a run of A.
"""

from __future__ import annotations

import os
import uuid

import grpc
import pytest

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as apb

DOWNLOAD = "/metricflow.artifacts.v1.ArtifactService/DownloadChunks"
PRESIGN = "/metricflow.artifacts.v1.ArtifactService/PresignDownloads"


@pytest.fixture(scope="module")
def world(secured):  # noqa: ANN001, ANN201
    admin = secured.client("admin")
    try:
        eids = {n: admin.registry.create_experiment(f"chunks-{n}-{uuid.uuid4().hex[:6]}")
                for n in ("A", "B")}
        runs = {n: admin.create_run(eids[n]).run_id for n in ("A", "B")}
        payload = {"A": os.urandom(300_000), "B": os.urandom(300_000)}
        for n in ("A", "B"):
            admin.artifacts.upload_bytes(runs[n], payload[n], "data.bin")
        manifests = {n: admin.artifacts.get_manifest(runs[n], "data.bin") for n in ("A", "B")}
    finally:
        admin.close()
    secured.store.set_experiment_permission(eids["A"], "alice", "READ", actor="admin")
    return {"eids": eids, "runs": runs, "payload": payload,
            "hashes": {n: [c.digest for c in manifests[n].chunks] for n in ("A", "B")}}


def _download(channel: grpc.Channel, md: tuple, hashes: list[bytes],
              run_id: str | None) -> bytes:
    call = channel.unary_stream(DOWNLOAD, apb.DownloadChunksRequest.SerializeToString,
                                apb.ChunkPart.FromString)
    meta = md + ((("mf-run-id", run_id),) if run_id else ())
    return b"".join(p.data for p in call(apb.DownloadChunksRequest(hashes=hashes),
                                         metadata=meta, timeout=30))


def test_reader_gets_chunks_of_a_readable_run(secured, channel, world) -> None:
    data = _download(channel, secured.md("alice"), world["hashes"]["A"], world["runs"]["A"])
    assert len(data) > 0
    # The client names the run itself: a full download through the artifact client works.
    alice = secured.client("alice")
    try:
        m = alice.artifacts.get_manifest(world["runs"]["A"], "data.bin")
        assert [c.digest for c in m.chunks] == world["hashes"]["A"]
    finally:
        alice.close()


@pytest.mark.parametrize("method", [DOWNLOAD, PRESIGN])
def test_reader_cannot_fetch_other_experiments_chunks_by_hash(secured, channel, world,
                                                              method) -> None:
    md = secured.md("alice")
    b_hashes, run_a, run_b = world["hashes"]["B"], world["runs"]["A"], world["runs"]["B"]
    req = (apb.DownloadChunksRequest if method == DOWNLOAD else apb.PresignDownloadsRequest)(
        hashes=b_hashes)
    for run_id, why in ((run_a, "B's chunks through a readable run of A"),
                        (run_b, "B's chunks through B's run (no READ on B)"),
                        (None, "no run named")):
        meta = md + ((("mf-run-id", run_id),) if run_id else ())
        with pytest.raises(grpc.RpcError) as ei:
            if method == DOWNLOAD:
                list(channel.unary_stream(method, lambda m: m.SerializeToString(),
                                          apb.ChunkPart.FromString)(req, metadata=meta,
                                                                    timeout=30))
            else:
                channel.unary_unary(method, lambda m: m.SerializeToString(),
                                    apb.PresignDownloadsResponse.FromString)(
                    req, metadata=meta, timeout=30)
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED, (why, ei.value)
        if run_id is None:
            assert "mf-run-id" in (ei.value.details() or "")


def test_mixing_in_one_foreign_chunk_is_refused(secured, channel, world) -> None:
    hashes = world["hashes"]["A"] + world["hashes"]["B"][:1]
    with pytest.raises(grpc.RpcError) as ei:
        _download(channel, secured.md("alice"), hashes, world["runs"]["A"])
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not part of run" in (ei.value.details() or "")


def test_admin_may_read_any_chunk(secured, channel, world) -> None:
    assert _download(channel, secured.md("admin"), world["hashes"]["B"], None)
