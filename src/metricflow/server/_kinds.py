"""The kinds of client-facing gRPC service a role mounts, forwards or refuses (no grpc import)."""

from __future__ import annotations

INGEST, QUERY, REGISTRY, ARTIFACTS = "ingest", "query", "registry", "artifacts"
