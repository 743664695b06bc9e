"""ArtifactService end to end: grpc.aio server on 127.0.0.1:0, ArtifactClient over a channel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2_grpc as pb_grpc
from metricflow.artifacts import ArtifactClient, ArtifactStore
from metricflow.artifacts._codec import digest_file, encode_chunk, hash_bytes
from metricflow.errors import InvalidArgument, NotFound


def test_log_and_download_directory(client: ArtifactClient, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    big = os.urandom(9 << 20)
    (src / "model.bin").write_bytes(big)
    (src / "sub" / "notes.txt").write_text("hi")
    (src / "empty.txt").write_bytes(b"")
    client.log_artifacts("run-1", src, "ckpt")
    names = [(e.path, e.is_dir) for e in client.list_artifacts("run-1", "ckpt")]
    assert names == [("ckpt/empty.txt", False), ("ckpt/model.bin", False), ("ckpt/sub", True)]
    out = Path(client.download_artifacts("run-1", "ckpt", tmp_path / "dl"))
    assert (out / "model.bin").read_bytes() == big
    assert (out / "sub" / "notes.txt").read_text() == "hi"
    assert (out / "empty.txt").read_bytes() == b""
    one = Path(client.download_artifacts("run-1", "ckpt/sub/notes.txt", tmp_path / "one"))
    assert one.read_text() == "hi"


def test_second_upload_sends_almost_nothing(client: ArtifactClient, tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(os.urandom(8 << 20))
    first = client.upload_file("r", f, "w.bin")
    second = client.upload_file("r", f, "w.bin")
    assert first.bytes_sent > 8 << 20
    assert second.chunks_sent == 0 and second.bytes_sent < (8 << 20) // 100
    assert second.manifest.version == 2 and first.manifest.version == 1


def test_resume_after_interruption(client: ArtifactClient, channel: grpc.Channel,
                                   store: ArtifactStore, tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(10 << 20))
    fd = digest_file(f)
    data = f.read_bytes()
    half = fd.chunks[: len(fd.chunks) // 2]
    stub = pb_grpc.ArtifactServiceStub(channel)

    def parts():  # an "interrupted" upload: half the chunks made it, no commit
        for s in half:
            yield pb.ChunkPart(hash=s.digest, raw_size=s.length, last=True,
                               data=encode_chunk(data[s.offset:s.offset + s.length]))

    assert len(stub.UploadChunks(parts()).accepted) == len(half)
    res = client.upload_file("r", f, "big.bin")
    assert res.chunks_sent == len({c.digest for c in fd.chunks}) - len(half)
    assert store.read_file("r", "big.bin") == data


def test_corrupt_chunk_is_rejected(channel: grpc.Channel, store: ArtifactStore) -> None:
    stub = pb_grpc.ArtifactServiceStub(channel)
    raw = os.urandom(50_000)
    bad = encode_chunk(raw[:-1] + bytes([raw[-1] ^ 1]))  # always differs from raw
    with pytest.raises(grpc.RpcError) as ei:
        stub.UploadChunks(iter([pb.ChunkPart(hash=hash_bytes(raw), data=bad, last=True)]))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert store.missing_chunks([hash_bytes(raw)]) == [hash_bytes(raw)]


def test_log_text_dict_image_figure(client: ArtifactClient, store: ArtifactStore) -> None:
    client.log_text("r", "hello", "a/b.txt")
    client.log_dict("r", {"lr": 0.1, "layers": [1, 2]}, "cfg.json")
    client.log_dict("r", {"lr": 0.1}, "cfg.yaml")
    img = np.zeros((8, 8, 3), dtype=np.float32)
    img[:, :, 0] = 1.0
    client.log_image("r", img, "img.png")
    assert store.read_file("r", "a/b.txt") == b"hello"
    assert json.loads(store.read_file("r", "cfg.json")) == {"lr": 0.1, "layers": [1, 2]}
    assert yaml.safe_load(store.read_file("r", "cfg.yaml")) == {"lr": 0.1}
    assert store.read_file("r", "img.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert store.get_manifest("r", "img.png").media_type == "image/png"
    import matplotlib as mpl  # the bench extra, installed by `make test`
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    client.log_figure("r", fig, "plot.svg")
    plt.close(fig)
    assert b"<svg" in store.read_file("r", "plot.svg")[:400]


def test_errors_arrive_typed(client: ArtifactClient) -> None:
    with pytest.raises(InvalidArgument) as ei:
        client.log_text("r", "x", "../escape.txt")
    assert ei.value.details["field"] == "artifact_file"
    with pytest.raises(NotFound):
        client.get_manifest("r", "nope.txt")
    with pytest.raises(InvalidArgument) as ei2:  # validated by the server, not the client
        client.list_artifacts("bad run id!")
    assert ei2.value.details["field"] == "run_id"


def test_symlink_policy(client: ArtifactClient, tmp_path: Path, store: ArtifactStore) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "real.txt").write_text("real")
    (src / "alias.txt").symlink_to(src / "real.txt")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    client.log_artifacts("r", src, "in")
    assert store.read_file("r", "in/alias.txt") == b"real"
    (src / "leak.txt").symlink_to(outside)
    with pytest.raises(InvalidArgument):
        client.log_artifacts("r2", src)
    client.log_artifacts("r3", src, symlinks="skip")
    assert [e.path for e in client.list_artifacts("r3")] == ["real.txt"]
    client.log_artifacts("r4", src, symlinks="follow")
    assert store.read_file("r4", "leak.txt") == b"secret"
    (src / "loop").symlink_to(src)
    with pytest.warns(UserWarning):
        client.log_artifacts("r5", src, symlinks="follow")
    assert "loop" not in {e.path for e in client.list_artifacts("r5")}


def test_dedup_stats_over_grpc(client: ArtifactClient, tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(os.urandom(2 << 20))
    client.upload_file("a", f, "x1")
    client.upload_file("a", f, "x2")
    s = client.dedup_stats("a")
    assert s.logical_bytes == 4 << 20 and 1.9 < s.ratio <= 2.0
    assert client.dedup_stats().manifests == 2
