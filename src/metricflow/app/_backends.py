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
flag, the schemes it takes and what it received. The table itself is
`metricflow._uris.BACKENDS` (low in the layers, so adapters and checks ask it
with `backend_key` instead of matching prefixes); each entry names the adapter's
opener, which the `open_*` functions here call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metricflow._uris import (
    BACKENDS,
    BLOBS,
    CONTROL,
    DATA,
    SINK,
    Backend,
    backend_for,
    backend_key,
    scheme_of,
)
from metricflow.errors import InvalidArgument

__all__ = ["BACKENDS", "BLOBS", "CONTROL", "DATA", "SINK", "Backend", "backend_for",
           "backend_key", "open_blobs", "open_metadata", "open_metric_store", "open_sink",
           "scheme_of"]

if TYPE_CHECKING:
    from metricflow.artifacts import BlobStore
    from metricflow.ingest import DirectSinkConfig, IngestSink, KafkaSinkConfig
    from metricflow.store import MetricStore
    from metricflow.store.metadata import MetadataStore, SourceChecker


def open_metric_store(dsn: str, database: str) -> MetricStore:
    """The data plane at `dsn` (chDB or a ClickHouse server: one client API)."""
    store: MetricStore = backend_for(DATA, dsn).open()(dsn, database)
    return store


def open_metadata(uri: str, *, default_artifact_root: str | None = None,
                  source_exists: SourceChecker | None = None,
                  read_uri: str | None = None, policy_gate: Any = None) -> MetadataStore:
    """The control plane at `uri` (SQLite or PostgreSQL), migrated to the newest schema;
    `read_uri`: a replica its read-only transactions use (--metadata-read); `policy_gate`:
    what checks governance policies before a transition (`metricflow.governance`)."""
    if read_uri and backend_key(CONTROL, read_uri) != backend_key(CONTROL, uri):
        raise InvalidArgument(
            f"--metadata-read {read_uri[:200]!r} must be a replica of --metadata, the same "
            f"kind of database ({backend_key(CONTROL, uri)}); its scheme is "
            f"{scheme_of(read_uri)!r}", field="metadata-read", received=read_uri[:200])
    md: MetadataStore = backend_for(CONTROL, uri).open()(
        uri, default_artifact_root=default_artifact_root, source_exists=source_exists,
        **({"read_uri": read_uri} if read_uri else {}),
        **({"policy_gate": policy_gate} if policy_gate is not None else {}))
    return md


def open_blobs(uri: str) -> BlobStore:
    """The artifact blob store at `uri` (a local directory or S3)."""
    blobs: BlobStore = backend_for(BLOBS, uri).open()(uri)
    return blobs


def open_sink(uri: str, store: MetricStore | None, *, inproc: DirectSinkConfig,
              kafka: KafkaSinkConfig | None) -> IngestSink:
    """The sink `uri` names: `inproc:` (group commit into `store`) or `kafka://...`
    (a producer with `kafka`'s settings)."""
    b = backend_for(SINK, uri)
    sink: IngestSink
    if "inproc" in b.schemes:
        if store is None:
            raise InvalidArgument("the in-process sink needs a data plane", field="clickhouse")
        sink = b.open()(store, inproc)
        return sink
    if kafka is None:
        raise InvalidArgument(f"sink {uri!r} needs Kafka settings", field="kafka")
    sink = b.open()(kafka)
    return sink
