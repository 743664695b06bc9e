"""Path safety and the chunk codec."""

from __future__ import annotations

import os

import numpy as np
import pytest

from metricflow.artifacts._codec import (
    CODEC_RAW,
    CODEC_ZSTD,
    decode_chunk,
    digest_buffer,
    encode_chunk,
    hash_bytes,
    verify_chunk,
)
from metricflow.artifacts._paths import MAX_COMPONENT_BYTES, MAX_PATH_BYTES, normalize_path
from metricflow.errors import InvalidArgument


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "/etc/passwd", "a\x00b", "a\\b", "", ".",
                                 "a/\x07/b"])
def test_bad_paths_are_rejected_with_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        normalize_path(bad)
    assert ei.value.details["field"] == "path"
    assert "received" in ei.value.details


def test_overlong_names_report_limit_and_received() -> None:
    with pytest.raises(InvalidArgument) as ei:
        normalize_path("a" * (MAX_COMPONENT_BYTES + 1))
    assert ei.value.details["limit"] == MAX_COMPONENT_BYTES
    assert ei.value.details["received"] == MAX_COMPONENT_BYTES + 1
    with pytest.raises(InvalidArgument) as ei:
        normalize_path("/".join(["b" * 100] * 11))
    assert ei.value.details["limit"] == MAX_PATH_BYTES


def test_paths_are_normalized() -> None:
    assert normalize_path("./a//b/./c.txt") == "a/b/c.txt"
    assert normalize_path("", allow_empty=True) == ""


def test_random_chunks_are_stored_raw_and_text_compressed() -> None:
    rnd = os.urandom(300_000)
    enc = encode_chunk(rnd)
    assert enc[3] == CODEC_RAW and len(enc) == len(rnd) + 4
    text = b"loss=0.123 step=42\n" * 20_000
    enc2 = encode_chunk(text)
    assert enc2[3] == CODEC_ZSTD and len(enc2) < len(text) // 10
    assert decode_chunk(enc) == rnd and decode_chunk(enc2) == text


def test_verify_rejects_corrupt_chunk() -> None:
    raw = b"x" * 100_000
    enc = bytearray(encode_chunk(raw))
    assert verify_chunk(hash_bytes(raw), bytes(enc)) == len(raw)
    with pytest.raises(InvalidArgument):
        verify_chunk(hash_bytes(raw + b"!"), bytes(enc))
    enc[-1] ^= 0xFF
    with pytest.raises(InvalidArgument):
        verify_chunk(hash_bytes(raw), bytes(enc))


def test_cdc_edit_in_the_middle_changes_few_chunks() -> None:
    rng = np.random.default_rng(3)  # fixed data: the chunk layout is deterministic
    data = bytearray(rng.bytes(24 << 20))
    before = digest_buffer(bytes(data))
    mid = len(data) // 2
    data[mid:mid + (1 << 20)] = rng.bytes(1 << 20)
    after = digest_buffer(bytes(data))
    old = {c.digest for c in before.chunks}
    new_bytes = sum(c.length for c in after.chunks if c.digest not in old)
    assert sum(c.length for c in after.chunks) == len(data)
    # the 1 MiB edit plus its neighbouring chunks (each <= 4 MiB), not the 24 MiB file
    assert new_bytes < 9 << 20
    assert before.file_hash != after.file_hash
