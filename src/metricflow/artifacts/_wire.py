"""Conversions between protobuf messages and artifact values, and error transport."""

from __future__ import annotations

from typing import Any

from metricflow._grpc_errors import CODE_KEY, from_rpc_error, trailing_metadata
from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow.artifacts._manifest import ArtifactEntry, ChunkRef, Manifest
from metricflow.errors import MetricflowError

PART_BYTES = 1 << 20  # chunk bytes per ChunkPart message; far below gRPC's 4 MiB default


def manifest_to_pb(m: Manifest) -> pb.Manifest:
    """Manifest value -> message."""
    return pb.Manifest(run_id=m.run_id, path=m.path, version=m.version, size=m.size,
                       file_hash=m.file_hash, media_type=m.media_type,
                       created_at_ms=m.created_at_ms,
                       chunks=[pb.ChunkRef(hash=c.digest, size=c.size,
                                           stored_size=c.stored_size) for c in m.chunks])


def manifest_from_pb(p: pb.Manifest) -> Manifest:
    """Message -> Manifest value."""
    return Manifest(p.run_id, p.path, p.version, p.size, bytes(p.file_hash), p.media_type,
                    p.created_at_ms,
                    tuple(ChunkRef(bytes(c.hash), c.size, c.stored_size) for c in p.chunks))


def entry_from_pb(p: pb.ArtifactInfo) -> ArtifactEntry:
    """Message -> ArtifactEntry."""
    return ArtifactEntry(p.path, p.is_dir, p.size, p.version, bytes(p.file_hash))


def error_metadata(e: MetricflowError) -> tuple[tuple[str, str], ...]:
    """Trailing metadata that lets the client rebuild the same error (every service's)."""
    return trailing_metadata(e)


def error_from_rpc(err: Any) -> Exception:
    """A MetricflowError from a grpc.RpcError carrying our metadata; else the RpcError."""
    md = dict(err.trailing_metadata() or ()) if hasattr(err, "trailing_metadata") else {}
    return from_rpc_error(err) if md.get(CODE_KEY) else err  # type: ignore[no-any-return]
