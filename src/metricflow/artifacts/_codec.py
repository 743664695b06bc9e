"""Chunking, hashing and the stored chunk encoding.

Chunk boundaries come from FastCDC 2020 (pyfastcdc, Cython, releases the GIL),
chunk names from BLAKE3 of the raw bytes. Stored chunks carry a 4-byte header:
b"MF" + format version + codec (0 = raw, 1 = zstd).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from metricflow.errors import InvalidArgument

# FastCDC emits chunks of about avg + min on average (cut-point skipping), so
# these settings give ~1.25 MiB chunks, never smaller than 256 KiB (except the
# file tail) nor larger than 4 MiB. See docs/artifacts.md for the reasoning.
AVG_CHUNK = 1 << 20
MIN_CHUNK = 256 << 10
MAX_CHUNK = 4 << 20

HEADER_LEN = 4
_MAGIC = b"MF\x01"
CODEC_RAW = 0
CODEC_ZSTD = 1
ZSTD_LEVEL = 3
_PROBE = 64 << 10  # compress this much first; skip zstd when it does not pay
_PROBE_KEEP = 0.90  # the probe must shrink to 90% or less
_FULL_KEEP = 0.97  # the whole chunk must shrink to 97% or less

HASH_LEN = 32


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk of a file: where it is and its BLAKE3 digest."""

    offset: int
    length: int
    digest: bytes


@dataclass(frozen=True)
class FileDigest:
    """The chunk list and whole-file BLAKE3 of one local file."""

    size: int
    file_hash: bytes
    chunks: tuple[ChunkSpan, ...]


def _blake3() -> Any:
    import blake3  # optional dependency, loaded on first use

    return blake3.blake3


def _chunker() -> Any:
    from pyfastcdc import FastCDC

    return FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)


def hash_bytes(data: bytes | memoryview) -> bytes:
    """BLAKE3 digest (32 bytes) of `data`."""
    return bytes(_blake3()(data).digest())


def digest_buffer(buf: bytes | bytearray | memoryview) -> FileDigest:
    """Chunk and hash an in-memory buffer (one core; no per-byte Python work)."""
    b3 = _blake3()
    whole = b3()
    spans = []
    for c in _chunker().cut_buf(buf):
        whole.update(c.data)
        spans.append(ChunkSpan(c.offset, c.length, bytes(b3(c.data).digest())))
    return FileDigest(len(buf), bytes(whole.digest()), tuple(spans))


def digest_file(path: str | os.PathLike[str]) -> FileDigest:
    """Chunk and hash a file through mmap (the page cache, not Python memory, holds it)."""
    size = os.path.getsize(path)
    if size == 0:
        return FileDigest(0, hash_bytes(b""), ())
    b3 = _blake3()
    whole = b3()
    spans = []
    for c in _chunker().cut_file(os.fspath(path)):
        whole.update(c.data)
        spans.append(ChunkSpan(c.offset, c.length, bytes(b3(c.data).digest())))
        del c
    return FileDigest(size, bytes(whole.digest()), tuple(spans))


def iter_spans(path: str | os.PathLike[str], spans: tuple[ChunkSpan, ...]) -> Iterator[bytes]:
    """Read the bytes of the given spans from a file, one chunk at a time."""
    with open(path, "rb") as f:
        for s in spans:
            f.seek(s.offset)
            data = f.read(s.length)
            if len(data) != s.length:
                raise InvalidArgument("file shrank while uploading", field="path",
                                      received=os.fspath(path))
            yield data


def encode_chunk(raw: bytes | memoryview) -> bytes:
    """Encode raw chunk bytes for storage: zstd when it saves space, raw otherwise."""
    import zstandard

    n = len(raw)
    if n >= 1024:
        cctx = zstandard.ZstdCompressor(level=1)
        probe = memoryview(raw)[:_PROBE]
        if len(cctx.compress(probe)) <= _PROBE_KEEP * len(probe):
            packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
            if len(packed) <= _FULL_KEEP * n:
                return _MAGIC + bytes([CODEC_ZSTD]) + packed
    return b"".join((_MAGIC, bytes([CODEC_RAW]), raw))


def decode_chunk(stored: bytes | memoryview, *, max_size: int = MAX_CHUNK) -> bytes:
    """Decode a stored chunk back to its raw bytes; raises InvalidArgument if malformed."""
    import zstandard

    mv = memoryview(stored)
    if len(mv) < HEADER_LEN or bytes(mv[:3]) != _MAGIC:
        raise InvalidArgument("stored chunk has no valid header", field="chunk")
    codec = mv[3]
    body = mv[HEADER_LEN:]
    if codec == CODEC_RAW:
        return bytes(body)
    if codec == CODEC_ZSTD:
        try:
            return zstandard.ZstdDecompressor().decompress(body, max_output_size=max_size)
        except zstandard.ZstdError as e:
            raise InvalidArgument(f"chunk does not decompress: {e}", field="chunk") from e
    raise InvalidArgument("unknown chunk codec", field="chunk", received=int(codec))


def verify_chunk(digest: bytes, stored: bytes | memoryview, *, max_size: int = MAX_CHUNK) -> int:
    """Decode `stored`, check its BLAKE3 equals `digest`; return the raw length.

    Raises InvalidArgument when the bytes do not match (a corrupt chunk).
    """
    raw = decode_chunk(stored, max_size=max_size)
    if hash_bytes(raw) != digest:
        raise InvalidArgument("chunk bytes do not match their hash", field="chunk",
                              received=digest.hex())
    return len(raw)
