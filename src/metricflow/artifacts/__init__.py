"""Artifact plane: content-defined chunks (FastCDC), BLAKE3 names, zstd, versioned manifests.

Server side: `open_blob_store(uri)` -> `ArtifactStore(blobs)` -> `add_to_server(server,
store)`; `collect_garbage(...)` for GC; `dedup_stats` / `DedupCollector` for metrics.
Client side: `ArtifactClient(channel)`. Heavy modules load on first attribute access so
`import metricflow.artifacts` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BlobStore": "_blob", "BlobInfo": "_blob", "LocalBlobStore": "_blob",
    "S3BlobStore": "_s3", "S3Config": "_s3",
    "open_blob_store": "_factory",
    "ArtifactStore": "_store", "ArtifactStoreConfig": "_store",
    "Manifest": "_manifest", "ChunkRef": "_manifest", "ArtifactEntry": "_manifest",
    "collect_garbage": "_gc", "GcReport": "_gc",
    "DedupStats": "_stats", "dedup_stats": "_stats", "dedup_metrics": "_stats",
    "DedupCollector": "_stats",
    "ArtifactServicer": "_service", "add_to_server": "_service",
    "ArtifactClient": "_client", "SymlinkPolicy": "_client", "UploadResult": "_transfer",
    "normalize_path": "_paths", "validate_run_id": "_paths",
    "decode_chunk": "_codec", "encode_chunk": "_codec", "hash_bytes": "_codec",
    "parse_manifest_key": "_manifest", "path_prefix": "_manifest", "run_prefix": "_manifest",
}

__all__ = [
    "ArtifactClient",
    "ArtifactEntry",
    "ArtifactServicer",
    "ArtifactStore",
    "ArtifactStoreConfig",
    "BlobInfo",
    "BlobStore",
    "ChunkRef",
    "DedupCollector",
    "DedupStats",
    "GcReport",
    "LocalBlobStore",
    "Manifest",
    "S3BlobStore",
    "S3Config",
    "SymlinkPolicy",
    "UploadResult",
    "add_to_server",
    "collect_garbage",
    "dedup_metrics",
    "dedup_stats",
    "decode_chunk",
    "encode_chunk",
    "hash_bytes",
    "normalize_path",
    "open_blob_store",
    "parse_manifest_key",
    "path_prefix",
    "run_prefix",
    "validate_run_id",
]

if TYPE_CHECKING:
    from metricflow.artifacts._blob import BlobInfo, BlobStore, LocalBlobStore
    from metricflow.artifacts._client import ArtifactClient, SymlinkPolicy
    from metricflow.artifacts._codec import decode_chunk, encode_chunk, hash_bytes
    from metricflow.artifacts._factory import open_blob_store
    from metricflow.artifacts._gc import GcReport, collect_garbage
    from metricflow.artifacts._manifest import (
        ArtifactEntry,
        ChunkRef,
        Manifest,
        parse_manifest_key,
        path_prefix,
        run_prefix,
    )
    from metricflow.artifacts._paths import normalize_path, validate_run_id
    from metricflow.artifacts._s3 import S3BlobStore, S3Config
    from metricflow.artifacts._service import ArtifactServicer, add_to_server
    from metricflow.artifacts._stats import DedupCollector, DedupStats, dedup_metrics, dedup_stats
    from metricflow.artifacts._store import ArtifactStore, ArtifactStoreConfig
    from metricflow.artifacts._transfer import UploadResult


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
