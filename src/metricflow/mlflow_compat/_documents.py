"""MLflow-only entities kept as JSON documents in the artifact blob store.

Logged models (MLflow 3) and run inputs/outputs have no table in metricflow's
control or data plane yet. They are low-volume documents, so they live beside
the artifacts under `mlflow-compat/` keys (local directory or S3, whichever the
deployment uses): durable, shared by every server node, and outside the
prefixes that artifact GC sweeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from metricflow.errors import NotFound

PREFIX = "mlflow-compat/"
_MODELS = PREFIX + "logged-models/"
_RUNS = PREFIX + "runs/"


class DocumentStore:
    """Read-modify-write JSON documents on a BlobStore (last writer wins per document)."""

    def __init__(self, blobs: Any) -> None:
        self.blobs = blobs
        self._lock = threading.Lock()  # serializes read-modify-write inside one node
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="mf-mlflow-docs")
        self._run_docs_seen = False
        """A run document exists (seen once, assumed from then on: see `run_extras`)."""

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.blobs.get(key))
        except NotFound:
            return None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        self.blobs.put(key, json.dumps(doc, separators=(",", ":")).encode())
        if key.startswith(_RUNS):
            self._run_docs_seen = True

    def update(self, key: str, fn: Any) -> dict[str, Any]:
        """Apply `fn(doc or None) -> doc` and store the result."""
        with self._lock:
            doc = fn(self.get(key))
            self.put(key, doc)
            return doc

    # ------------------------------------------------------------ logged models
    @staticmethod
    def model_key(model_id: str) -> str:
        return f"{_MODELS}{model_id}.json"

    def get_model(self, model_id: str) -> dict[str, Any]:
        doc = self.get(self.model_key(model_id))
        if doc is None:
            raise NotFound(f"Logged model with ID '{model_id}' not found.", field="model_id",
                           received=model_id)
        return doc

    def iter_models(self) -> Iterator[dict[str, Any]]:
        keys = [b.key for b in self.blobs.list(_MODELS) if b.key.endswith(".json")]
        for doc in self._pool.map(self.get, keys):
            if doc is not None:
                yield doc

    # ------------------------------------------------------- run inputs/outputs
    @staticmethod
    def run_key(run_id: str) -> str:
        return f"{_RUNS}{run_id}.json"

    def run_extras(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Inputs/outputs documents of many runs (absent runs are left out)."""
        if not run_ids or not self._any_run_docs():
            return {}
        docs = list(self._pool.map(lambda r: self.get(self.run_key(r)), run_ids))
        return {r: d for r, d in zip(run_ids, docs) if d is not None}

    def _any_run_docs(self) -> bool:
        """Whether any run has an inputs/outputs document (most stores have none).

        While none was seen, each call asks the store for the first key under the prefix
        (local: one directory check; S3: one LIST request), instead of one GET per run of
        the page (100 misses cost 2-4 ms per runs/search page at 10k runs). Once one is
        seen, documents are looked up per run as before; another node's first document
        is seen by the next call, since nothing negative is remembered.
        """
        if not self._run_docs_seen:
            self._run_docs_seen = next(iter(self.blobs.list(_RUNS)), None) is not None
        return self._run_docs_seen


def live_logged_model_ids(blobs: Any) -> set[str]:
    """Ids of logged models that are not deleted: their artifacts (owner id `m-...`)
    must count as live for artifact GC, next to the live run ids."""
    store = DocumentStore(blobs)
    try:
        return {d["model_id"] for d in store.iter_models() if not d.get("deleted")}
    finally:
        store.close()
