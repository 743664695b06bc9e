"""The one registry that picks every backend from its URI's scheme.

| plane     | schemes                          | implementation                       |
|-----------|----------------------------------|--------------------------------------|
| data      | chdb://                          | chDB: ClickHouse in this process     |
| data      | http://, https://, clickhouse:// | a ClickHouse server                  |
| control   | sqlite:///                       | SQLite file                          |
| control   | postgresql[+driver]://           | PostgreSQL                           |
| blobs     | file:///, a plain path           | local directory                      |
| blobs     | s3://                            | S3 (or an S3-compatible endpoint)    |
| sink      | inproc:                          | the in-process group-commit writer   |
| sink      | kafka://BOOTSTRAP/TOPIC          | Kafka producer (writer role applies) |

A URI whose scheme is not listed fails at start with one message naming the
flag, the schemes it takes and what it received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlsplit

from metricflow.errors import InvalidArgument

if TYPE_CHECKING:
    from metricflow.artifacts import BlobStore
    from metricflow.ingest import DirectSinkConfig, IngestSink, KafkaSinkConfig
    from metricflow.store import MetricStore
    from metricflow.store.metadata import MetadataStore, SourceChecker

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


DATA = "data"
CONTROL = "control"
BLOBS = "blobs"
SINK = "sink"

BACKENDS: tuple[Backend[object], ...] = (
    Backend(DATA, ("chdb",), "chDB (ClickHouse in this process)"),
    Backend(DATA, ("http", "https", "clickhouse"), "ClickHouse server"),
    Backend(CONTROL, ("sqlite",), "SQLite"),
    Backend(CONTROL, ("postgresql", "postgres"), "PostgreSQL"),
    Backend(BLOBS, ("file", ""), "local directory"),
    Backend(BLOBS, ("s3",), "S3"),
    Backend(SINK, ("inproc",), "in-process writer"),
    Backend(SINK, ("kafka",), "Kafka"),
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


def open_metric_store(dsn: str, database: str) -> MetricStore:
    """The data plane at `dsn` (chDB or a ClickHouse server: one client API)."""
    backend_for(DATA, dsn)
    from metricflow.store import MetricStore

    return MetricStore(dsn, database)


def open_metadata(uri: str, *, default_artifact_root: str | None = None,
                  source_exists: SourceChecker | None = None) -> MetadataStore:
    """The control plane at `uri` (SQLite or PostgreSQL), migrated to the newest schema."""
    backend_for(CONTROL, uri)
    from metricflow.store.metadata import open_metadata_store

    return open_metadata_store(uri, default_artifact_root=default_artifact_root,
                               source_exists=source_exists)


def open_blobs(uri: str) -> BlobStore:
    """The artifact blob store at `uri` (a local directory or S3)."""
    backend_for(BLOBS, uri)
    from metricflow.artifacts import open_blob_store

    return open_blob_store(uri)


def open_sink(uri: str, store: MetricStore | None, *, inproc: DirectSinkConfig,
              kafka: KafkaSinkConfig | None) -> IngestSink:
    """The sink `uri` names: `inproc:` (group commit into `store`) or `kafka://...`
    (a producer with `kafka`'s settings)."""
    b = backend_for(SINK, uri)
    if "inproc" in b.schemes:
        from metricflow.ingest import DirectSink

        if store is None:
            raise InvalidArgument("the in-process sink needs a data plane", field="clickhouse")
        return DirectSink(store, inproc)
    from metricflow.ingest import KafkaSink

    if kafka is None:
        raise InvalidArgument(f"sink {uri!r} needs Kafka settings", field="kafka")
    return KafkaSink(kafka)
