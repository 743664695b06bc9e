"""Garbage collection: what is freed, what is kept, and safety next to live uploads."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from metricflow.artifacts import (
    ArtifactStore,
    ArtifactStoreConfig,
    ChunkRef,
    collect_garbage,
    open_blob_store,
)
from metricflow.artifacts import _manifest as mk
from metricflow.artifacts._codec import digest_buffer, encode_chunk
from metricflow.errors import Conflict, InvalidArgument, NotFound, Unavailable


def _put(store: ArtifactStore, tmp_path: Path, run: str, name: str, data: bytes) -> None:
    p = tmp_path / f"{run}-{name}"
    p.write_bytes(data)
    store.put_file(run, name, p)


def test_gc_frees_dead_runs_and_keeps_live(store: ArtifactStore, tmp_path: Path) -> None:
    shared = os.urandom(2 << 20)
    _put(store, tmp_path, "live", "a.bin", shared)
    _put(store, tmp_path, "dead", "b.bin", shared + os.urandom(3 << 20))
    before = sum(i.size for _d, i in store.iter_chunks())
    time.sleep(0.05)  # older than the GC lock even with coarse (jiffy) file timestamps
    r = collect_garbage(store, lambda: {"live"}, grace_period_s=0, commit_fence_s=0)
    after = sum(i.size for _d, i in store.iter_chunks())
    assert r.bytes_freed == before - after > (2 << 20)
    assert r.manifests_deleted == 1 and r.complete
    assert store.read_file("live", "a.bin") == shared
    assert store.list_artifacts("dead") == []
    assert store.blobs.stat(mk.GC_LOCK) is None


def test_grace_period_protects_young_chunks(store: ArtifactStore, tmp_path: Path) -> None:
    _put(store, tmp_path, "dead", "b.bin", os.urandom(1 << 20))
    r = collect_garbage(store, is_live=lambda run: False, grace_period_s=3600, commit_fence_s=0)
    assert r.bytes_freed == 0 and r.manifests_deleted == 0
    time.sleep(0.05)  # older than the GC lock even with coarse (jiffy) file timestamps
    dry = collect_garbage(store, is_live=lambda run: False, grace_period_s=0,
                          commit_fence_s=0, dry_run=True)
    assert dry.bytes_freed > 0 and len(list(store.iter_chunks())) > 0


def test_gc_argument_checks_and_lock(store: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument):
        collect_garbage(store, grace_period_s=0)
    store.blobs.put(mk.GC_LOCK, b'{"grace_period_s": 0}')
    with pytest.raises(Conflict):
        collect_garbage(store, lambda: set(), grace_period_s=0, commit_fence_s=0)


def test_commit_refuses_old_chunks_while_gc_sweeps(store: ArtifactStore) -> None:
    raw = os.urandom(10_000)
    fd = digest_buffer(raw)
    store.put_chunk(fd.chunks[0].digest, encode_chunk(raw))
    time.sleep(0.05)
    store.blobs.put(mk.GC_LOCK, b'{"grace_period_s": 0}')  # a sweep with cutoff = now
    with pytest.raises(Unavailable):
        store.commit("r", "f", len(raw), fd.file_hash, [ChunkRef(fd.chunks[0].digest, len(raw))])
    store.blobs.delete(mk.GC_LOCK)
    assert not isinstance(store.commit("r", "f", len(raw), fd.file_hash,
                                       [ChunkRef(fd.chunks[0].digest, len(raw))]), list)


class SlowBlobs:
    """Widens the race windows: manifest writes and chunk deletes take a while."""

    manifest_delay_s = 0.03

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def put(self, key: str, data: bytes, *, if_absent: bool = False,
            durable: bool = True) -> bool:
        if key.startswith(mk.MANIFESTS):
            time.sleep(self.manifest_delay_s)
        return self._inner.put(key, data, if_absent=if_absent,  # type: ignore[attr-defined]
                               durable=durable)

    def delete(self, key: str) -> None:
        if key.startswith((mk.CHUNKS, mk.CHUNK_REFS)):
            time.sleep(0.01)
        self._inner.delete(key)  # type: ignore[attr-defined]


def test_gc_is_safe_while_uploads_run(tmp_path: Path) -> None:
    """A feeder keeps logging fresh content to a dead run; writers log the same bytes to live
    runs (dedup hits on chunks GC wants to delete: the risky case) while GC loops with a zero
    grace period. Every manifest a live run committed must stay fully readable."""
    store = ArtifactStore(SlowBlobs(open_blob_store(f"file://{tmp_path}/blobs")),  # type: ignore[arg-type]
                          ArtifactStoreConfig(commit_fence_s=0.05))
    recent: list[bytes] = []
    committed: list[tuple[str, str, bytes]] = []
    stop = threading.Event()
    errors: list[BaseException] = []
    freed: list[int] = []

    def feeder() -> None:
        n = 0
        while not stop.is_set():
            data = os.urandom(200_000)  # below MIN_CHUNK: exactly one chunk
            try:
                _put(store, tmp_path, "dead-feed", f"p{n}", data)
            except Unavailable:
                continue  # GC took the fresh chunk before the commit: fine, try again
            recent.append(data)
            n += 1
            time.sleep(0.01)

    def writer(w: int) -> None:
        rng = random.Random(w)
        n = 0
        while not stop.is_set():
            if not recent:
                time.sleep(0.01)
                continue
            data = rng.choice(recent[-3:])
            p = tmp_path / f"w{w}-{n}"
            p.write_bytes(data)
            for _ in range(3000):  # >= 30 s of retries
                try:
                    m = store.put_file(f"live{w}", f"f{n}", p)
                    committed.append((m.run_id, m.path, data))
                    break
                except Unavailable:  # GC sweeping, or chunks vanished: retry like the client
                    time.sleep(0.01)
            else:
                errors.append(AssertionError("writer starved"))
            n += 1

    def gc() -> None:
        try:
            while not stop.is_set():
                r = collect_garbage(store, lambda: {"live0", "live1"}, grace_period_s=0,
                                    commit_fence_s=0.05)
                freed.append(r.bytes_freed)
                time.sleep(0.02)  # let refused commits through between sweeps
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=gc), threading.Thread(target=feeder)]
    for t in threads:
        t.start()
    time.sleep(4)  # GC sweeps next to the uploads for at least this long
    deadline = time.monotonic() + 60  # a loaded machine commits slower: wait for enough
    while (len(committed) <= 20 or not sum(freed)) and not errors \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(committed) > 20 and sum(freed) > 0
    broken = []
    for run, path, data in committed:
        try:
            assert store.read_file(run, path) == data
        except NotFound:
            broken.append(path)
    assert not broken, f"{len(broken)} of {len(committed)} manifests lost chunks"


class _SlowManifests(SlowBlobs):
    manifest_delay_s = 0.3


def test_a_manifest_landing_after_the_gc_fence_is_taken_back(tmp_path: Path) -> None:
    # A GC that locked after this commit's check lists manifests 2 x fence later; a
    # manifest written after the fence may have been missed and its chunks swept.
    store = ArtifactStore(_SlowManifests(open_blob_store(f"file://{tmp_path}/b")),  # type: ignore[arg-type]
                          ArtifactStoreConfig(commit_fence_s=0.1))
    raw = os.urandom(10_000)
    fd = digest_buffer(raw)
    store.put_chunk(fd.chunks[0].digest, encode_chunk(raw))
    with pytest.raises(Unavailable, match="GC fence"):
        store.commit("r", "f", len(raw), fd.file_hash, [ChunkRef(fd.chunks[0].digest, len(raw))])
    assert store.versions("r", "f") == []  # not left behind for readers or for GC


def test_gc_deletes_markers_with_their_chunk(tmp_path: Path) -> None:
    runs = {"live-a": "1", "live-b": "2", "dead": "1"}
    store = ArtifactStore(open_blob_store(f"file://{tmp_path}/blobs"),
                          run_experiments=lambda ids: {r: runs[r] for r in ids if r in runs})
    shared, gone = os.urandom(300_000), os.urandom(300_000)  # one chunk each
    _put(store, tmp_path, "live-a", "s.bin", shared)
    _put(store, tmp_path, "live-b", "s.bin", shared)  # experiment 2 marks it too
    _put(store, tmp_path, "dead", "g.bin", gone)
    _put(store, tmp_path, "dead", "s.bin", shared)
    d_shared, d_gone = digest_buffer(shared).chunks[0].digest, digest_buffer(gone).chunks[0].digest

    def scopes(d: bytes) -> set[str]:
        return {b.key[len(mk.refs_prefix(d)):] for b in store.blobs.list(mk.refs_prefix(d))}

    assert scopes(d_shared) == {"1", "2"} and scopes(d_gone) == {"1"}
    time.sleep(0.05)  # older than the GC lock even with coarse (jiffy) file timestamps
    r = collect_garbage(store, lambda: {"live-a", "live-b"}, grace_period_s=0,
                        commit_fence_s=0)
    assert r.chunks_deleted == 1 and r.markers_deleted == 1
    assert store.blobs.stat(mk.chunk_key(d_gone)) is None and scopes(d_gone) == set()
    assert scopes(d_shared) == {"1", "2"}  # a referenced chunk keeps every marker
    assert store.read_file("live-b", "s.bin") == shared
    # The deleted chunk is sent again (and marked again) when experiment 1 needs it.
    _put(store, tmp_path, "live-a", "g.bin", gone)
    assert scopes(d_gone) == {"1"} and store.read_file("live-a", "g.bin") == gone
