"""Mark-and-sweep garbage collection of chunks, safe next to live uploads.

Safety argument (details in docs/artifacts.md):

* GC takes a lock object; its mtime T (store clock) fixes cutoff = T - grace.
  Only chunks with mtime < cutoff that no kept manifest references are deleted.
* After taking the lock GC waits 2 x commit_fence_s before listing manifests.
  A commit that checked the lock *before* it existed writes its manifest within
  commit_fence_s of that check (it aborts otherwise), so the mark phase sees it.
* A commit that sees the lock refuses (Unavailable, retriable) if any chunk it
  needs is older than cutoff, so it never publishes a reference to a chunk the
  sweep may delete. Chunks are never overwritten (create-if-absent), so an mtime
  seen by GC cannot be refreshed behind its back.
* Chunks uploaded but not yet committed are protected by the grace period; if an
  upload outlives it, the commit reports the chunks missing and the client
  re-sends them.
* A deleted chunk's reference markers go first, then the chunk. Removing a marker
  can only make a commit report the chunk missing (the client re-sends it), so
  markers never make a sweep unsafe, and a crash between the two leaves a chunk
  the next sweep removes rather than markers without a chunk.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from metricflow.artifacts import _manifest as mk
from metricflow.artifacts._manifest import Manifest
from metricflow.artifacts._store import ArtifactStore
from metricflow.errors import Conflict, InvalidArgument, NotFound


@dataclass(frozen=True)
class GcReport:
    """What one collect_garbage call found and removed."""

    live_runs: int
    manifests_kept: int
    manifests_deleted: int
    chunks_scanned: int
    chunks_deleted: int
    bytes_freed: int
    staging_deleted: int
    complete: bool
    dry_run: bool
    duration_s: float
    markers_deleted: int = 0
    """Reference markers (chunk-refs/) removed with their chunks."""


def _take_lock(store: ArtifactStore, grace_period_s: float) -> float:
    body = json.dumps({"grace_period_s": grace_period_s, "host": socket.gethostname(),
                       "pid": os.getpid(), "started": time.time()}).encode()
    for _ in range(2):
        if store.blobs.put(mk.GC_LOCK, body, if_absent=True):
            info = store.blobs.stat(mk.GC_LOCK)
            assert info is not None
            return info.mtime
        if store.gc_lock() is not None:
            raise Conflict("another garbage collection is running", field="gc_lock")
        store.blobs.delete(mk.GC_LOCK)  # abandoned by a crashed collector
    raise Conflict("could not take the GC lock", field="gc_lock")


def collect_garbage(
    store: ArtifactStore,
    live_run_ids: Callable[[], Collection[str]] | None = None,
    *,
    is_live: Callable[[str], bool] | None = None,
    grace_period_s: float = 24 * 3600.0,
    dry_run: bool = False,
    commit_fence_s: float | None = None,
) -> GcReport:
    """Delete chunks no manifest of a live run references, once they are older than the grace.

    Args:
        store: the artifact store.
        live_run_ids: returns the ids of runs that still exist (called once), or
        is_live: predicate on one run id (called per run that has artifacts).
        grace_period_s: chunks and manifests younger than this are never removed;
            it must exceed the longest upload and the presigned URL lifetime.
        dry_run: count what would be removed without removing it.
        commit_fence_s: override of store.config.commit_fence_s (tests).

    Returns:
        A GcReport with bytes freed. Manifests of dead runs older than the grace
        are deleted too. Raises Conflict if another collector holds the lock.
    """
    if (live_run_ids is None) == (is_live is None):
        raise InvalidArgument("pass exactly one of live_run_ids and is_live",
                              field="live_run_ids")
    if grace_period_s < 0:
        raise InvalidArgument("grace_period_s must be >= 0", field="grace_period_s",
                              received=grace_period_s)
    t_start = time.monotonic()
    fence = store.config.commit_fence_s if commit_fence_s is None else commit_fence_s
    lock_t = _take_lock(store, grace_period_s)
    try:
        cutoff = lock_t - grace_period_s
        stop_at = lock_t + store.config.gc_lock_ttl_s - 2 * fence
        time.sleep(2 * fence)

        # Mark. Manifests of live runs, and every manifest younger than the grace
        # (a run may not be visible to the control plane yet), keep their chunks.
        live = set(live_run_ids()) if live_run_ids is not None else None
        decided: dict[str, bool] = {}

        def alive(run: str) -> bool:
            if live is not None:
                return run in live
            if run not in decided:
                decided[run] = bool(is_live(run))  # type: ignore[misc]
            return decided[run]

        keep_keys: list[str] = []
        drop_keys: list[str] = []
        for b in store.blobs.list(mk.MANIFESTS):
            p = mk.parse_manifest_key(b.key)
            if p is None:
                continue
            (keep_keys if alive(p[0]) or b.mtime >= cutoff else drop_keys).append(b.key)
        def load(key: str) -> Manifest | None:
            try:
                return Manifest.from_json(store.blobs.get(key))
            except NotFound:  # deleted since the listing, or a late commit taken back
                return None

        referenced: set[bytes] = set()
        for i in range(0, len(keep_keys), 256):
            for m in store._map(load, keep_keys[i:i + 256]):
                if m is not None:
                    referenced.update(c.digest for c in m.chunks)
        live_runs = len(live) if live is not None else sum(decided.values())

        # Sweep: dead manifests first, so no manifest ever points at a missing chunk.
        complete = True
        n_manifests = n_chunks = n_deleted = n_staging = n_markers = freed = 0
        for k in drop_keys:
            if not dry_run:
                store.blobs.delete(k)
            n_manifests += 1
        for d, info in store.iter_chunks():
            n_chunks += 1
            if d in referenced or info.mtime >= cutoff:
                continue
            if time.time() > stop_at:
                complete = False
                break
            markers = [b.key for b in store.blobs.list(mk.refs_prefix(d))]
            if not dry_run:
                for k in markers:
                    store.blobs.delete(k)
                store.blobs.delete(info.key)
            n_markers += len(markers)
            n_deleted += 1
            freed += info.size
        for b in store.blobs.list(mk.STAGING):
            if b.mtime < cutoff and time.time() <= stop_at:
                if not dry_run:
                    store.blobs.delete(b.key)
                n_staging += 1
                freed += b.size
        return GcReport(live_runs, len(keep_keys), n_manifests, n_chunks, n_deleted, freed,
                        n_staging, complete, dry_run, time.monotonic() - t_start, n_markers)
    finally:
        store.blobs.delete(mk.GC_LOCK)
