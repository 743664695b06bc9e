"""ArtifactStore on the local blob store: CAS, versions, listing, stats, atomicity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from metricflow.artifacts import ArtifactStore, ChunkRef, LocalBlobStore, open_blob_store
from metricflow.artifacts import _manifest as mk
from metricflow.artifacts._codec import encode_chunk, hash_bytes
from metricflow.artifacts._stats import dedup_metrics, dedup_stats
from metricflow.errors import Conflict, InvalidArgument, NotFound


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_local_blob_put_is_atomic_and_if_absent(tmp_path: Path) -> None:
    b = LocalBlobStore(tmp_path / "s")
    assert b.put("a/b", b"one", if_absent=True)
    assert not b.put("a/b", b"two", if_absent=True)
    assert b.get("a/b") == b"one"
    b.put("a/b", b"three")
    assert b.get("a/b") == b"three"
    (tmp_path / "s" / "a" / ".tmp-crashed").write_bytes(b"half")  # a crash leftover
    assert [i.key for i in b.list("a/")] == ["a/b"]
    assert b.stat("a/zz") is None
    with pytest.raises(NotFound):
        b.get("a/zz")
    with pytest.raises(InvalidArgument):
        b.put("../escape", b"x")
    b.delete("a/b")
    assert b.stat("a/b") is None


def test_factory_schemes(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(f"file://{tmp_path}/x"), LocalBlobStore)
    assert isinstance(open_blob_store(str(tmp_path / "y")), LocalBlobStore)
    with pytest.raises(InvalidArgument):
        open_blob_store("ftp://host/x")


def test_put_file_dedups_and_versions(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(6 << 20)
    src = _file(tmp_path, "ckpt.bin", data)
    m1 = store.put_file("run-1", "ckpt/model.bin", src)
    n_chunks = len(list(store.iter_chunks()))
    assert m1.version == 1 and m1.size == len(data) and n_chunks == len(m1.chunks) > 1
    src.write_bytes(data[:3 << 20] + b"EDIT" + data[(3 << 20) + 4:])
    m2 = store.put_file("run-1", "ckpt/model.bin", src)
    assert m2.version == 2
    added = len(list(store.iter_chunks())) - n_chunks
    assert 1 <= added <= 3
    assert store.read_file("run-1", "ckpt/model.bin", version=1) == data
    assert store.read_file("run-1", "ckpt/model.bin")[3 << 20:(3 << 20) + 4] == b"EDIT"
    assert store.versions("run-1", "ckpt/model.bin") == [1, 2]
    assert store.get_manifest("run-1", "ckpt/model.bin").media_type == "application/octet-stream"


def test_listing_and_tree_conflicts(store: ArtifactStore, tmp_path: Path) -> None:
    f = _file(tmp_path, "t.txt", b"hello")
    store.put_file("r", "a/b/c.txt", f)
    store.put_file("r", "a/d.txt", f)
    store.put_file("r", "top.txt", f)
    assert [(e.path, e.is_dir) for e in store.list_artifacts("r")] == [
        ("a", True), ("top.txt", False)]
    assert [(e.path, e.is_dir) for e in store.list_artifacts("r", "a")] == [
        ("a/b", True), ("a/d.txt", False)]
    assert [e.path for e in store.list_artifacts("r", "a", recursive=True)] == [
        "a/b/c.txt", "a/d.txt"]
    with pytest.raises(Conflict):
        store.put_file("r", "a/d.txt/x", f)  # parent is a file
    with pytest.raises(Conflict):
        store.put_file("r", "a/b", f)  # is a directory
    # a user path shaped like our version directory cannot collide with it
    store.put_file("r", "v/0000000001.json", f)
    assert store.read_file("r", "v/0000000001.json") == b"hello"
    assert store.list_artifacts("other") == []
    with pytest.raises(NotFound):
        store.get_manifest("r", "missing.txt")


def test_commit_reports_missing_chunks_and_writes_nothing(store: ArtifactStore) -> None:
    raw = b"z" * 1000
    d = hash_bytes(raw)
    res = store.commit("r", "f.txt", 1000, hash_bytes(raw), [ChunkRef(d, 1000)])
    assert res == [d]
    assert store.versions("r", "f.txt") == []
    store.put_chunk(d, encode_chunk(raw))
    m = store.commit("r", "f.txt", 1000, hash_bytes(raw), [ChunkRef(d, 1000)])
    assert not isinstance(m, list) and m.chunks[0].stored_size > 0
    with pytest.raises(InvalidArgument):
        store.commit("r", "f.txt", 999, hash_bytes(raw), [ChunkRef(d, 1000)])


def test_corrupt_chunk_is_not_stored(store: ArtifactStore) -> None:
    raw = os.urandom(5000)
    with pytest.raises(InvalidArgument):
        store.put_chunk(hash_bytes(raw), encode_chunk(raw[:-1] + bytes([raw[-1] ^ 1])))
    assert store.missing_chunks([hash_bytes(raw)]) == [hash_bytes(raw)]


def test_dedup_stats(store: ArtifactStore, tmp_path: Path) -> None:
    src = _file(tmp_path, "x.bin", os.urandom(3 << 20))
    for i in range(3):
        store.put_file("run-a", f"copy{i}.bin", src)
    store.put_file("run-b", "copy.bin", src)
    total = dedup_stats(store)
    assert total.logical_bytes == 4 * (3 << 20)
    assert (3 << 20) <= total.stored_bytes < (3 << 20) + 4096
    assert 3.9 < total.ratio <= 4.0 and total.manifests == 4
    per_run = dedup_stats(store, "run-a")
    assert per_run.logical_bytes == 3 * (3 << 20) and per_run.manifests == 3
    assert 2.9 < per_run.ratio <= 3.0
    metrics = dedup_metrics(store)
    assert metrics["metricflow_artifacts_logical_bytes"] == total.logical_bytes


def test_manifest_keys_round_trip() -> None:
    key = mk.manifest_key("r1", "a/v/b.txt", 7)
    assert mk.parse_manifest_key(key) == ("r1", "a/v/b.txt", 7)
    assert mk.parse_manifest_key("manifests/r1/_a/x.json") is None
