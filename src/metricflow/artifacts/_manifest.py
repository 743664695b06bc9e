"""Manifest values and the key layout of the artifact store."""

from __future__ import annotations

import json
from dataclasses import dataclass

from metricflow.errors import InvalidArgument

CHUNKS = "chunks/"
CHUNK_REFS = "chunk-refs/"
STAGING = "staging/"
MANIFESTS = "manifests/"
GC_LOCK = "gc/sweep.lock"
_VERSION_DIR = "v"


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a file: raw BLAKE3 digest, raw size, stored (encoded) size."""

    digest: bytes
    size: int
    stored_size: int = 0


@dataclass(frozen=True)
class Manifest:
    """One version of one artifact path of one run."""

    run_id: str
    path: str
    version: int
    size: int
    file_hash: bytes
    media_type: str
    created_at_ms: int
    chunks: tuple[ChunkRef, ...]

    def to_json(self) -> bytes:
        """Compact JSON bytes, the stored form."""
        return json.dumps({
            "format": 1, "run_id": self.run_id, "path": self.path, "version": self.version,
            "size": self.size, "file_hash": self.file_hash.hex(), "media_type": self.media_type,
            "created_at_ms": self.created_at_ms,
            "chunks": [[c.digest.hex(), c.size, c.stored_size] for c in self.chunks],
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse the stored form."""
        d = json.loads(data)
        if d.get("format") != 1:
            raise InvalidArgument("unknown manifest format", field="format",
                                  received=d.get("format"))
        return cls(d["run_id"], d["path"], int(d["version"]), int(d["size"]),
                   bytes.fromhex(d["file_hash"]), d["media_type"], int(d["created_at_ms"]),
                   tuple(ChunkRef(bytes.fromhex(h), int(s), int(st)) for h, s, st in d["chunks"]))


@dataclass(frozen=True)
class ArtifactEntry:
    """A file (latest version) or a directory in a listing."""

    path: str
    is_dir: bool
    size: int = 0
    version: int = 0
    file_hash: bytes = b""


def chunk_key(digest: bytes) -> str:
    """Key of a chunk: fanned out by the first two bytes of its hash."""
    h = digest.hex()
    return f"{CHUNKS}{h[:2]}/{h[2:4]}/{h}"


def digest_from_chunk_key(key: str) -> bytes | None:
    """Inverse of chunk_key; None for keys that are not chunks."""
    name = key.rsplit("/", 1)[-1]
    if not key.startswith(CHUNKS) or len(name) != 64:
        return None
    try:
        return bytes.fromhex(name)
    except ValueError:
        return None


def refs_prefix(digest: bytes) -> str:
    """Prefix of every scope's reference marker of one chunk (one list call). Markers
    sit next to each other, not in a directory per chunk, so a local store keeps no
    empty directory behind when GC deletes them."""
    h = digest.hex()
    return f"{CHUNK_REFS}{h[:2]}/{h[2:4]}/{h}."


def ref_key(digest: bytes, scope: str) -> str:
    """Key of the marker saying that `scope` (an encoded experiment) holds the chunk."""
    return refs_prefix(digest) + scope


def staging_key(upload_id: str, digest: bytes) -> str:
    """Key where a presigned upload lands before the server verifies it."""
    return f"{STAGING}{upload_id}/{digest.hex()}"


def run_prefix(run_id: str) -> str:
    """Prefix of every manifest of one run."""
    return f"{MANIFESTS}{run_id}/"


def path_prefix(run_id: str, path: str) -> str:
    """Prefix for one artifact path or directory. Each component gets a '_' so no
    user name can collide with the 'v' version directory."""
    enc = "/".join("_" + p for p in path.split("/")) if path else ""
    return run_prefix(run_id) + (enc + "/" if enc else "")


def manifest_key(run_id: str, path: str, version: int) -> str:
    """Key of one manifest version (zero-padded so keys sort by version)."""
    return f"{path_prefix(run_id, path)}{_VERSION_DIR}/{version:010d}.json"


def parse_manifest_key(key: str) -> tuple[str, str, int] | None:
    """(run_id, path, version) from a manifest key, or None if it is not one."""
    if not key.startswith(MANIFESTS) or not key.endswith(".json"):
        return None
    parts = key[len(MANIFESTS):].split("/")
    if len(parts) < 4 or parts[-2] != _VERSION_DIR:
        return None
    comps = parts[1:-2]
    if not all(c.startswith("_") for c in comps):
        return None
    try:
        version = int(parts[-1][:-5])
    except ValueError:
        return None
    return parts[0], "/".join(c[1:] for c in comps), version
