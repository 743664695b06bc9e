"""Experiment-scoped chunk references: dedup is tenant-safe.

A chunk counts as present for an experiment only if that experiment holds a
reference marker, written when the chunk's bytes were verified for one of its runs.
The store here has a run -> experiment lookup (the served paths get theirs from the
auth guard; tests/integration/auth/test_chunk_scoping.py covers that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2_grpc as pb_grpc
from metricflow.artifacts import ArtifactClient, ArtifactStore, ChunkRef, open_blob_store
from metricflow.artifacts import _manifest as mk
from metricflow.artifacts._codec import digest_buffer, encode_chunk, hash_bytes
from metricflow.artifacts._scope import DEFAULT_SCOPE, scope_of_experiment
from metricflow.errors import NotFound

RUNS = {"a1": "1", "a2": "1", "b1": "2", "b2": "2"}
"""Runs a1, a2 in experiment 1 (the victim); b1, b2 in experiment 2."""


def _lookup(ids: list[str]) -> dict[str, str]:
    return {r: RUNS[r] for r in ids if r in RUNS}


@pytest.fixture
def scoped(tmp_path: Path) -> Iterator[ArtifactStore]:
    s = ArtifactStore(open_blob_store(f"file://{tmp_path}/blobs"), run_experiments=_lookup)
    yield s
    s.close()


@pytest.fixture
def channel(scoped: ArtifactStore, serve: type) -> Iterator[grpc.Channel]:
    with serve(scoped) as srv:
        ch = grpc.insecure_channel(srv.target)
        yield ch
        ch.close()



def _md(run_id: str) -> tuple[tuple[str, str], ...]:
    return (("mf-run-id", run_id),)


def _markers(store: ArtifactStore) -> set[str]:
    return {b.key for b in store.blobs.list(mk.CHUNK_REFS)}


def _chunk_mtimes(store: ArtifactStore) -> dict[bytes, float]:
    return {d: i.mtime for d, i in store.iter_chunks()}


def test_committing_another_experiments_hash_is_refused(client: ArtifactClient,
                                                        channel: grpc.Channel,
                                                        scoped: ArtifactStore) -> None:
    """The reviewer's attack: learn B's chunk hashes, commit them into your own run,
    download the bytes through it."""
    secret = os.urandom(9 << 20)  # > 2 chunks (max chunk 4 MiB)
    victim = client.upload_bytes("a1", secret, "secret.bin").manifest
    hashes = list(dict.fromkeys(c.digest for c in victim.chunks))
    assert len(hashes) > 1
    stub = pb_grpc.ArtifactServiceStub(channel)
    r = stub.CommitManifest(pb.CommitManifestRequest(
        run_id="b1", path="stolen.bin", size=victim.size, file_hash=victim.file_hash,
        chunks=[pb.ChunkRef(hash=c.digest, size=c.size) for c in victim.chunks]))
    assert not r.HasField("manifest")
    assert sorted(bytes(h) for h in r.missing) == sorted(hashes)
    assert scoped.versions("b1", "stolen.bin") == []
    # No presence oracle either: experiment 2 is told it lacks every chunk.
    m = stub.MissingChunks(pb.MissingChunksRequest(hashes=hashes), metadata=_md("b1"))
    assert sorted(bytes(h) for h in m.missing) == sorted(hashes)
    # And the read path still refuses the hashes through the attacker's run.
    with pytest.raises(grpc.RpcError) as ei:
        list(stub.DownloadChunks(pb.DownloadChunksRequest(hashes=hashes), metadata=_md("b1")))
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The victim's own experiment still dedups and reads.
    m = stub.MissingChunks(pb.MissingChunksRequest(hashes=hashes), metadata=_md("a2"))
    assert list(m.missing) == []
    assert scoped.read_file("a1", "secret.bin") == secret


def test_same_experiment_dedups_other_experiment_uploads_once(client: ArtifactClient,
                                                              scoped: ArtifactStore,
                                                              tmp_path: Path) -> None:
    f = tmp_path / "ckpt.bin"
    data = os.urandom(8 << 20)
    f.write_bytes(data)
    first = client.upload_file("a1", f, "ckpt.bin")
    assert first.chunks_sent == first.chunks_total > 1 and first.bytes_sent > len(data)
    second = client.upload_file("a2", f, "ckpt.bin")  # same experiment: nothing to send
    assert second.chunks_sent == 0 and second.bytes_sent < len(data) // 100
    stored = _chunk_mtimes(scoped)
    other = client.upload_file("b1", f, "ckpt.bin")  # experiment 2 proves it has the bytes
    assert other.chunks_sent == other.chunks_total and other.bytes_sent > len(data)
    assert _chunk_mtimes(scoped) == stored  # chunks were not stored again, only marked
    again = client.upload_file("b2", f, "ckpt.bin")
    assert again.chunks_sent == 0 and again.bytes_sent < len(data) // 100
    assert scoped.read_file("b2", "ckpt.bin") == data
    scopes = {k.rsplit(".", 1)[1] for k in _markers(scoped)}
    assert scopes == {"1", "2"}
    assert len(_markers(scoped)) == 2 * len(stored)


def test_upload_rpcs_must_name_an_existing_run(channel: grpc.Channel) -> None:
    stub = pb_grpc.ArtifactServiceStub(channel)
    req = pb.MissingChunksRequest(hashes=[hash_bytes(b"x")])
    with pytest.raises(grpc.RpcError) as ei:
        stub.MissingChunks(req)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mf-run-id" in (ei.value.details() or "")
    raw = os.urandom(10_000)
    part = pb.ChunkPart(hash=hash_bytes(raw), data=encode_chunk(raw), last=True)
    with pytest.raises(grpc.RpcError) as ei:
        stub.UploadChunks(iter([part]))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as ei:
        stub.MissingChunks(req, metadata=_md("no-such-run"))
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND


def test_store_commit_needs_the_scopes_marker(scoped: ArtifactStore) -> None:
    raw = os.urandom(20_000)
    fd = digest_buffer(raw)
    d = fd.chunks[0].digest
    scoped.put_chunk(d, encode_chunk(raw), scope_of_experiment("1"))
    refs = [ChunkRef(d, len(raw))]
    assert scoped.commit("b1", "f", len(raw), fd.file_hash, refs) == [d]
    assert not isinstance(scoped.commit("a2", "f", len(raw), fd.file_hash, refs), list)
    assert scoped.missing_chunks([d], "2") == [d] and scoped.missing_chunks([d], "1") == []
    chunk = scoped.blobs.stat(mk.chunk_key(d))
    scoped.put_chunk(d, encode_chunk(raw), "2")  # exists: only experiment 2's marker is new
    assert scoped.blobs.stat(mk.chunk_key(d)) == chunk
    assert not isinstance(scoped.commit("b1", "f", len(raw), fd.file_hash, refs), list)
    with pytest.raises(NotFound):
        scoped.commit("no-such-run", "f", len(raw), fd.file_hash, refs)


def test_chunks_of_an_old_store_are_sent_once_per_experiment(client: ArtifactClient,
                                                             scoped: ArtifactStore) -> None:
    data = os.urandom(3 << 20)
    client.upload_bytes("a1", data, "x.bin")
    for key in _markers(scoped):  # a data dir from before markers existed
        scoped.blobs.delete(key)
    healed = client.upload_bytes("a2", data, "x.bin")
    assert healed.chunks_sent == healed.chunks_total
    assert client.upload_bytes("a2", data, "y.bin").chunks_sent == 0


def test_scope_names_are_key_safe_and_distinct() -> None:
    assert scope_of_experiment("123") == "123"
    odd = [scope_of_experiment(e) for e in ("a/b", "../x", "", "_default", "é", "x" * 200)]
    assert all(s.startswith("_x") and "/" not in s for s in odd)
    assert len(set(odd)) == len(odd) and DEFAULT_SCOPE not in odd
    assert scope_of_experiment("_x61") != scope_of_experiment("a")


class _FakeAuthz:
    """The two Authorizer calls the servicer makes, recorded."""

    def __init__(self, owners: dict[str, str], allowed: set[str]) -> None:
        self.owners, self.allowed, self.checked = owners, allowed, []  # type: ignore[var-annotated]

    def check(self, p: object, needs: list) -> None:  # type: ignore[type-arg]
        from metricflow.errors import PermissionDenied

        self.checked += [(n.kind, n.ident, n.level.name) for n in needs]
        if any(n.ident not in self.allowed for n in needs):
            raise PermissionDenied("no EDIT", field="permission")

    def experiments_of_runs(self, ids: list[str]) -> dict[str, str]:
        return {r: self.owners[r] for r in ids if r in self.owners}


def test_under_the_guard_the_scope_is_the_guards_experiment(store: ArtifactStore) -> None:
    """The servicer scopes by the guard's run owner (not the store's lookup), checks EDIT
    for upload RPCs, and gives an admin naming an unknown run the default scope."""
    from metricflow.artifacts._service import _run_scope
    from metricflow.auth._context import CURRENT
    from metricflow.auth._types import Principal
    from metricflow.errors import PermissionDenied

    authz = _FakeAuthz({"r1": "7", "r2": "a/b"}, allowed={"r1"})
    token = CURRENT.set((Principal("alice"), authz))  # type: ignore[arg-type]
    try:
        assert _run_scope(store, "r1", check_edit=True) == "7"
        assert authz.checked == [("run", "r1", "EDIT")]
        with pytest.raises(PermissionDenied):
            _run_scope(store, "r2", check_edit=True)
        assert _run_scope(store, "r2", check_edit=False) == scope_of_experiment("a/b")
        with pytest.raises(NotFound):
            _run_scope(store, "unknown", check_edit=False)
    finally:
        CURRENT.reset(token)
    token = CURRENT.set((Principal("root", is_admin=True), authz))  # type: ignore[arg-type]
    try:
        authz.checked.clear()
        assert _run_scope(store, "r2", check_edit=True) == scope_of_experiment("a/b")
        assert _run_scope(store, "unknown", check_edit=True) == DEFAULT_SCOPE
        assert authz.checked == []  # admins pass without a permission lookup
    finally:
        CURRENT.reset(token)
