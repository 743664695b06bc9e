"""Artifacts against a real S3 HTTP endpoint: blob store, presigned direct uploads, GC."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc
import pytest
import requests

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2_grpc as pb_grpc
from metricflow.artifacts import (
    ArtifactClient,
    ArtifactStore,
    S3BlobStore,
    collect_garbage,
    open_blob_store,
)
from metricflow.artifacts import _manifest as mk
from metricflow.artifacts._codec import encode_chunk, hash_bytes
from metricflow.artifacts._scope import DEFAULT_SCOPE
from metricflow.artifacts._stats import dedup_stats
from metricflow.errors import NotFound


def test_s3_blob_store_contract(s3_uri: str) -> None:
    b = open_blob_store(s3_uri, multipart_threshold=6 << 20, multipart_chunksize=5 << 20)
    assert isinstance(b, S3BlobStore)
    assert b.put("x/a", b"one", if_absent=True)
    assert not b.put("x/a", b"two", if_absent=True)  # If-None-Match: *
    assert b.get("x/a") == b"one"
    big = os.urandom(12 << 20)
    assert b.put("x/big", big)  # multipart
    assert b.get("x/big") == big
    info = b.stat("x/big")
    assert info is not None and info.size == len(big) and info.mtime > 0
    assert sorted(i.key for i in b.list("x/")) == ["x/a", "x/big"]
    b.copy("x/a", "y/a")
    assert b.get("y/a") == b"one"
    url = b.presign("x/a", "GET", 60)
    assert url is not None and requests.get(url, timeout=10).content == b"one"
    b.delete("x/a")
    assert b.stat("x/a") is None
    with pytest.raises(NotFound):
        b.get("x/a")


def test_direct_upload_and_presigned_download(s3_client: ArtifactClient, s3_store: ArtifactStore,
                                              tmp_path: Path) -> None:
    data = os.urandom(7 << 20)
    f = tmp_path / "m.bin"
    f.write_bytes(data)
    r1 = s3_client.upload_file("run-s3", f, "ckpt/m.bin")
    assert s3_store.direct_upload and r1.chunks_sent == r1.chunks_total > 1
    assert list(s3_store.blobs.list(mk.STAGING)) == []  # staged objects were promoted
    r2 = s3_client.upload_file("run-s3", f, "ckpt/m.bin")
    assert r2.chunks_sent == 0 and r2.manifest.version == 2
    out = Path(s3_client.download_artifacts("run-s3", "ckpt", tmp_path / "dl"))
    assert (out / "m.bin").read_bytes() == data
    assert s3_store.read_file("run-s3", "ckpt/m.bin", version=1) == data
    assert dedup_stats(s3_store).ratio > 1.9


def test_corrupt_presigned_upload_is_rejected(s3_channel: grpc.Channel,
                                              s3_store: ArtifactStore) -> None:
    stub = pb_grpc.ArtifactServiceStub(s3_channel)
    raw = os.urandom(100_000)
    d = hash_bytes(raw)
    req = pb.PresignUploadsRequest(hashes=[d], upload_id="test-upload-1")
    url = stub.PresignUploads(req).urls[0]
    assert requests.put(url, data=encode_chunk(raw[::-1]), timeout=10).status_code == 200
    r = stub.FinalizeUploads(pb.FinalizeUploadsRequest(hashes=[d], upload_id="test-upload-1"))
    assert list(r.rejected) == [d] and not r.accepted
    assert s3_store.missing_chunks([d]) == [d]
    assert requests.put(url, data=encode_chunk(raw), timeout=10).status_code == 200
    r = stub.FinalizeUploads(pb.FinalizeUploadsRequest(hashes=[d], upload_id="test-upload-1"))
    assert list(r.accepted) == [d]


def test_concurrent_commits_get_distinct_versions(s3_store: ArtifactStore,
                                                  tmp_path: Path) -> None:
    f = tmp_path / "v.txt"
    f.write_bytes(b"same bytes")
    versions: list[int] = []
    lock = threading.Lock()

    def commit() -> None:
        for _ in range(4):
            m = s3_store.put_file("r", "v.txt", f)
            with lock:
                versions.append(m.version)

    threads = [threading.Thread(target=commit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == list(range(1, 13))


def test_gc_on_s3(s3_store: ArtifactStore, tmp_path: Path) -> None:
    keep, drop = os.urandom(1 << 20), os.urandom(2 << 20)
    for run, data in (("live", keep), ("dead", drop)):
        p = tmp_path / run
        p.write_bytes(data)
        s3_store.put_file(run, "f.bin", p)
    time.sleep(1.1)  # S3 LastModified has 1 s resolution; same-second chunks are kept
    r = collect_garbage(s3_store, lambda: {"live"}, grace_period_s=0, commit_fence_s=0)
    assert r.bytes_freed >= len(drop) and r.manifests_deleted == 1
    assert s3_store.read_file("live", "f.bin") == keep
    assert s3_store.list_artifacts("dead") == []
    assert r.markers_deleted >= 1  # the dead file's chunk markers went with the chunks
    live = {c.digest for m in s3_store.iter_manifests("live") for c in m.chunks}
    markers = {b.key for b in s3_store.blobs.list(mk.CHUNK_REFS)}
    assert markers == {mk.ref_key(d, DEFAULT_SCOPE) for d in live}


def test_presigned_uploads_mark_the_runs_experiment(s3_uri: str, s3_serve: type,
                                                    tmp_path: Path) -> None:
    """S3 direct mode writes an experiment's markers at FinalizeUploads, after the re-hash;
    a second experiment sends the bytes once (only its marker is new), then dedups."""
    runs = {"a1": "exp-a", "a2": "exp-a", "b1": "exp-b", "b2": "exp-b"}
    store = ArtifactStore(open_blob_store(s3_uri),
                          run_experiments=lambda ids: {r: runs[r] for r in ids if r in runs})
    f = tmp_path / "w.bin"
    data = os.urandom(9 << 20)
    f.write_bytes(data)
    try:
        with s3_serve(store) as srv, grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            client = ArtifactClient(ch, progress=False)
            first = client.upload_file("a1", f, "w.bin")
            assert store.direct_upload and first.chunks_sent == first.chunks_total > 1
            digests = {c.digest for c in first.manifest.chunks}
            assert client.upload_file("a2", f, "w.bin").chunks_sent == 0
            # The attack: experiment B commits A's hashes without ever sending the bytes.
            stub = pb_grpc.ArtifactServiceStub(ch)
            r = stub.CommitManifest(pb.CommitManifestRequest(
                run_id="b1", path="stolen.bin", size=first.manifest.size,
                file_hash=first.manifest.file_hash,
                chunks=[pb.ChunkRef(hash=c.digest, size=c.size)
                        for c in first.manifest.chunks]))
            assert not r.HasField("manifest") and set(r.missing) == digests
            chunks = {b.key: b.mtime for b in store.blobs.list(mk.CHUNKS)}
            time.sleep(1.1)  # S3 LastModified has 1 s resolution: a rewrite would show
            other = client.upload_file("b1", f, "w.bin")
            assert other.chunks_sent == other.chunks_total
            assert {b.key: b.mtime for b in store.blobs.list(mk.CHUNKS)} == chunks
            assert client.upload_file("b2", f, "w.bin").chunks_sent == 0
            assert list(store.blobs.list(mk.STAGING)) == []
        markers = {b.key for b in store.blobs.list(mk.CHUNK_REFS)}
        assert markers == {mk.ref_key(d, s) for d in digests for s in ("exp-a", "exp-b")}
        assert store.read_file("b2", "w.bin") == data
    finally:
        store.close()
