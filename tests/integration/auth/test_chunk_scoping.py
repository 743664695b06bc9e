"""Artifact chunks are tied to runs and experiments the caller may use.

Chunks are content-addressed and shared between runs, and chunk RPCs carry only
hashes. Reads: a caller names the run (`mf-run-id` metadata); the guard needs READ on
that run and the servicer checks that every requested chunk is in one of the
run's manifests. So a reader of experiment A cannot fetch B's chunks by hash,
neither through B's run nor through a run of A. Writes: a chunk counts for an
experiment only once its bytes were sent for one of its runs, so a hash learned
elsewhere cannot be committed into the caller's own run and read back through it.
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
def world(secured):
    admin = secured.client("admin")
    try:
        eids = {n: admin.registry.create_experiment(f"chunks-{n}-{uuid.uuid4().hex[:6]}")
                for n in ("A", "B", "C")}
        runs = {n: admin.create_run(eids[n]).run_id for n in ("A", "B", "C")}
        runs["C2"] = admin.create_run(eids["C"]).run_id
        payload = {"A": os.urandom(300_000), "B": os.urandom(300_000)}
        for n in ("A", "B"):
            admin.artifacts.upload_bytes(runs[n], payload[n], "data.bin")
        manifests = {n: admin.artifacts.get_manifest(runs[n], "data.bin") for n in ("A", "B")}
    finally:
        admin.close()
    secured.store.set_experiment_permission(eids["A"], "alice", "READ", actor="admin")
    secured.store.set_experiment_permission(eids["C"], "alice", "EDIT", actor="admin")
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
    denied, hidden = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND
    for run_id, why, code in ((run_a, "B's chunks through a readable run of A", denied),
                              # no READ on B: its run is answered as a missing one
                              (run_b, "B's chunks through B's run (no READ on B)", hidden),
                              (None, "no run named", denied)):
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
        assert ei.value.code() == code, (why, ei.value)
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


COMMIT = "/metricflow.artifacts.v1.ArtifactService/CommitManifest"
MISSING = "/metricflow.artifacts.v1.ArtifactService/MissingChunks"
UPLOAD = "/metricflow.artifacts.v1.ArtifactService/UploadChunks"


def test_a_hash_learned_elsewhere_cannot_be_committed_and_read(secured, channel,
                                                               world) -> None:
    """The review's attack: alice may edit experiment C, has learned B's chunk hashes,
    commits a manifest listing them into her run of C, then downloads through it."""
    md, run_c, b_hashes = secured.md("alice"), world["runs"]["C"], world["hashes"]["B"]
    commit = channel.unary_unary(COMMIT, apb.CommitManifestRequest.SerializeToString,
                                 apb.CommitManifestResponse.FromString)
    size = len(world["payload"]["B"])
    r = commit(apb.CommitManifestRequest(
        run_id=run_c, path="stolen.bin", size=size, file_hash=b"\0" * 32,
        chunks=[apb.ChunkRef(hash=h, size=size // len(b_hashes) + (i < size % len(b_hashes)))
                for i, h in enumerate(b_hashes)]), metadata=md, timeout=30)
    assert not r.HasField("manifest")
    assert sorted(bytes(h) for h in r.missing) == sorted(set(b_hashes))
    with pytest.raises(grpc.RpcError) as ei:
        _download(channel, md, b_hashes, run_c)
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Nor does her experiment learn whether anyone stores those chunks.
    missing = channel.unary_unary(MISSING, apb.MissingChunksRequest.SerializeToString,
                                  apb.MissingChunksResponse.FromString)
    m = missing(apb.MissingChunksRequest(hashes=b_hashes), metadata=md + (("mf-run-id", run_c),),
                timeout=30)
    assert sorted(bytes(h) for h in m.missing) == sorted(set(b_hashes))


def test_chunk_uploads_need_edit_on_the_named_run(secured, channel, world) -> None:
    missing = channel.unary_unary(MISSING, apb.MissingChunksRequest.SerializeToString,
                                  apb.MissingChunksResponse.FromString)
    req = apb.MissingChunksRequest(hashes=world["hashes"]["A"])
    md = secured.md("alice")
    with pytest.raises(grpc.RpcError) as ei:  # READ on A is not enough
        missing(req, metadata=md + (("mf-run-id", world["runs"]["A"]),), timeout=30)
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as ei:
        missing(req, metadata=md, timeout=30)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mf-run-id" in (ei.value.details() or "")
    upload = channel.stream_unary(UPLOAD, apb.ChunkPart.SerializeToString,
                                  apb.UploadChunksResponse.FromString)
    with pytest.raises(grpc.RpcError) as ei:
        upload(iter([apb.ChunkPart(hash=b"\1" * 32, data=b"x", last=True)]),
               metadata=md + (("mf-run-id", world["runs"]["B"]),), timeout=30)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND


def test_bytes_the_caller_has_are_sent_once_per_experiment(secured, world) -> None:
    """alice may read A, so she has A's bytes: logging them into her experiment C sends
    them once (C proves it has them), and a second run of C dedups."""
    alice = secured.client("alice")
    try:
        data = world["payload"]["A"]
        first = alice.artifacts.upload_bytes(world["runs"]["C"], data, "copy.bin")
        assert first.chunks_sent == first.chunks_total
        second = alice.artifacts.upload_bytes(world["runs"]["C2"], data, "copy.bin")
        assert second.chunks_sent == 0 and second.bytes_sent < len(data) // 10
        got = alice.artifacts.get_manifest(world["runs"]["C2"], "copy.bin")
        assert [c.digest for c in got.chunks] == world["hashes"]["A"]
    finally:
        alice.close()
