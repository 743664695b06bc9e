"""Pick a BlobStore implementation from a URI (the one place that knows the schemes)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from metricflow._uris import BLOBS, backend_key
from metricflow.artifacts._blob import BlobStore, LocalBlobStore
from metricflow.errors import InvalidArgument


def open_blob_store(uri: str, **options: Any) -> BlobStore:
    """Open the blob store named by `uri`.

    Args:
        uri: `file:///abs/dir` (or a plain path) or `s3://bucket/prefix`. S3 URIs
            accept `?endpoint_url=...&region=...` query options.
        options: passed to the implementation (`fsync=` for file, `endpoint_url=`,
            `region_name=`, `client=`, multipart settings for S3).
    """
    u = urlparse(uri)
    backend = backend_key(BLOBS, uri)  # the one scheme table (metricflow._uris)
    if backend == "file":
        path = unquote(u.path) if u.scheme else uri
        if u.scheme == "file" and u.netloc not in ("", "localhost"):
            raise InvalidArgument("file URIs must be file:///absolute/path", field="uri",
                                  received=uri)
        return LocalBlobStore(os.path.abspath(path), **options)
    if backend == "s3":
        from metricflow.artifacts._s3 import S3BlobStore, S3Config

        if not u.netloc:
            raise InvalidArgument("s3 URIs need a bucket: s3://bucket/prefix", field="uri",
                                  received=uri)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        client = options.pop("client", None)
        cfg: dict[str, Any] = {"endpoint_url": q.get("endpoint_url"),
                               "region_name": q.get("region")}
        cfg.update(options)
        return S3BlobStore(S3Config(bucket=u.netloc, prefix=u.path.strip("/"), **cfg),
                           client=client)
    raise InvalidArgument("unsupported blob store scheme; use file:// or s3://", field="uri",
                          received=uri)
