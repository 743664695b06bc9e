"""DocumentStore.run_extras: no per-run lookups while no run has a document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metricflow.artifacts._blob import LocalBlobStore
from metricflow.mlflow_compat._documents import DocumentStore

RUNS = [f"{i:032x}" for i in range(1, 6)]


class CountingBlobs(LocalBlobStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.gets = 0

    def get(self, key: str) -> bytes:
        self.gets += 1
        return super().get(key)


def test_no_documents_no_gets(tmp_path: Path) -> None:
    blobs = CountingBlobs(tmp_path)
    docs = DocumentStore(blobs)
    try:
        assert docs.run_extras(RUNS) == {}
        assert blobs.gets == 0
    finally:
        docs.close()


def test_document_written_by_another_node_is_seen(tmp_path: Path) -> None:
    """Nothing negative is remembered: a document another store instance (another
    server node on the same blob store) writes shows up in the next page."""
    blobs = CountingBlobs(tmp_path)
    docs, other = DocumentStore(blobs), DocumentStore(LocalBlobStore(tmp_path, fsync=False))
    try:
        assert docs.run_extras(RUNS) == {}

        def add(doc: dict[str, Any] | None) -> dict[str, Any]:
            return {"dataset_inputs": [{"dataset": {"name": "d", "digest": "x"}}]}

        other.update(other.run_key(RUNS[2]), add)
        got = docs.run_extras(RUNS)
        assert got == {RUNS[2]: {"dataset_inputs": [{"dataset": {"name": "d", "digest": "x"}}]}}
        assert blobs.gets == len(RUNS)
    finally:
        docs.close()
        other.close()


def test_own_write_is_seen(tmp_path: Path) -> None:
    docs = DocumentStore(LocalBlobStore(tmp_path, fsync=False))
    try:
        assert docs.run_extras(RUNS) == {}
        docs.update(docs.run_key(RUNS[0]), lambda d: {"model_outputs": [{"model_id": "m"}]})
        assert docs.run_extras(RUNS) == {RUNS[0]: {"model_outputs": [{"model_id": "m"}]}}
    finally:
        docs.close()
