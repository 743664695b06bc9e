"""Conversions between protobuf messages and artifact values, and error transport."""

from __future__ import annotations

import json
from typing import Any

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow.artifacts._manifest import ArtifactEntry, ChunkRef, Manifest
from metricflow.errors import MetricflowError, error_from_code

PART_BYTES = 1 << 20  # chunk bytes per ChunkPart message; far below gRPC's 4 MiB default
ERROR_CODE_KEY = "mf-error-code"
ERROR_DETAILS_KEY = "mf-error-details"


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
    """Trailing metadata that lets the client rebuild the same error from its code."""
    return ((ERROR_CODE_KEY, e.code.value),
            (ERROR_DETAILS_KEY, json.dumps(e.details, default=str)[:4000]))


def error_from_rpc(err: Any) -> Exception:
    """A MetricflowError from a grpc.RpcError carrying our metadata; else the RpcError."""
    md = dict(err.trailing_metadata() or ()) if hasattr(err, "trailing_metadata") else {}
    code = md.get(ERROR_CODE_KEY)
    if not code:
        return err  # type: ignore[no-any-return]
    try:
        details = json.loads(md.get(ERROR_DETAILS_KEY) or "{}")
    except ValueError:
        details = {}
    details.pop("retry_after_s", None)
    return error_from_code(code, err.details() or "", **details)
