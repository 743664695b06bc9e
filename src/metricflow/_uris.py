"""The URI scheme table behind the backend registry (`metricflow.app`'s BACKENDS):
which schemes select which implementation on each plane, and `backend_key`, the one
test every module uses instead of matching URI prefixes by hand. It sits low in the
layers (errors only) so the store, ingest and auth can ask it too; the openers that
turn a URI into a component are `metricflow.app.open_*`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from metricflow.errors import InvalidArgument

T = TypeVar("T")


@dataclass(frozen=True)
class Backend(Generic[T]):
    """One implementation of a plane, and the URI schemes that select it."""

    plane: str
    """data, control, blobs or sink."""
    schemes: tuple[str, ...]
    """URI schemes (before `://` or `:`; `+driver` suffixes are ignored)."""
    name: str
    """What it is, for messages and docs."""
    opener: str
    """`module:callable` of the adapter that opens it (imported on first use, so this
    table stays below every package it names)."""

    def open(self) -> Any:
        """The adapter's opener (a class or function; its arguments are the plane's)."""
        module, _, attr = self.opener.partition(":")
        return getattr(importlib.import_module(module), attr)


DATA = "data"
CONTROL = "control"
BLOBS = "blobs"
SINK = "sink"

BACKENDS: tuple[Backend[object], ...] = (
    Backend(DATA, ("chdb",), "chDB (ClickHouse in this process)", "metricflow.store:MetricStore"),
    Backend(DATA, ("http", "https", "clickhouse"), "ClickHouse server",
            "metricflow.store:MetricStore"),
    Backend(CONTROL, ("sqlite",), "SQLite", "metricflow.store.metadata:open_metadata_store"),
    Backend(CONTROL, ("postgresql", "postgres"), "PostgreSQL",
            "metricflow.store.metadata:open_metadata_store"),
    Backend(BLOBS, ("file", ""), "local directory", "metricflow.artifacts:open_blob_store"),
    Backend(BLOBS, ("s3",), "S3", "metricflow.artifacts:open_blob_store"),
    Backend(SINK, ("inproc",), "in-process writer", "metricflow.ingest:DirectSink"),
    Backend(SINK, ("kafka",), "Kafka", "metricflow.ingest:KafkaSink"),
)
"""Every backend this build can open."""

_FLAG = {DATA: "--clickhouse", CONTROL: "--metadata", BLOBS: "--artifacts", SINK: "--kafka"}


def scheme_of(uri: str) -> str:
    """The URI's scheme without a `+driver` suffix ("" for a plain path)."""
    if "://" not in uri and not uri.startswith("inproc:"):
        return ""
    return urlsplit(uri).scheme.split("+", 1)[0].lower()


def backend_for(plane: str, uri: str) -> Backend[object]:
    """The backend that serves `uri` on `plane`; InvalidArgument naming the flag otherwise."""
    scheme = scheme_of(uri)
    for b in BACKENDS:
        if b.plane == plane and scheme in b.schemes:
            return b
    known = ", ".join(f"{s}://" for b in BACKENDS if b.plane == plane for s in b.schemes if s)
    raise InvalidArgument(f"{_FLAG[plane]} {uri!r}: unsupported scheme {scheme!r}; "
                          f"use one of {known}", field=_FLAG[plane].lstrip("-"),
                          received=uri[:200])


def backend_key(plane: str, uri: str) -> str | None:
    """The first scheme of the backend that serves `uri` on `plane` (`chdb`, `http`,
    `sqlite`, `postgresql`, `file`, `s3`, `inproc`, `kafka`), None when none does:
    the one test other modules use instead of matching URI prefixes by hand."""
    scheme = scheme_of(uri)
    for b in BACKENDS:
        if b.plane == plane and scheme in b.schemes:
            return b.schemes[0]
    return None
