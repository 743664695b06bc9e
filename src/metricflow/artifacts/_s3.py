"""BlobStore on S3 (AWS, MinIO, moto) through boto3."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from metricflow.artifacts._blob import BlobInfo
from metricflow.errors import NotFound, Unavailable


@dataclass(frozen=True)
class S3Config:
    """Where and how to reach S3. Unset fields fall back to boto3's standard chain."""

    bucket: str
    """Bucket that holds every object."""
    prefix: str = ""
    """Key prefix inside the bucket (no leading or trailing slash needed)."""
    endpoint_url: str | None = None
    """Custom endpoint (MinIO, moto); None = AWS or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL."""
    region_name: str | None = None
    """Region; None = AWS_REGION / AWS_DEFAULT_REGION / ~/.aws/config."""
    multipart_threshold: int = 64 << 20
    """Objects above this size go up as multipart uploads."""
    multipart_chunksize: int = 16 << 20
    """Part size for multipart uploads."""
    max_pool_connections: int = 32
    """HTTP connection pool size (parallel chunk transfers)."""


class S3BlobStore:
    """BlobStore on one bucket/prefix. PUTs are atomic in S3, so no temp keys are needed."""

    def __init__(self, config: S3Config, *, client: Any = None) -> None:
        self.config = config
        self._prefix = config.prefix.strip("/") + "/" if config.prefix.strip("/") else ""
        if client is None:
            import boto3  # optional server dependency
            from botocore.config import Config

            session = boto3.session.Session()
            client = session.client(
                "s3", endpoint_url=config.endpoint_url, region_name=config.region_name,
                config=Config(max_pool_connections=config.max_pool_connections,
                              s3={"addressing_style": "path"} if config.endpoint_url else {},
                              retries={"max_attempts": 5, "mode": "standard"}))
        self._s3 = client

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.config.bucket}/{self._prefix})"

    def _k(self, key: str) -> str:
        return self._prefix + key

    @staticmethod
    def _code(e: Exception) -> str:
        return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))

    def put(self, key: str, data: bytes, *, if_absent: bool = False,
            durable: bool = True) -> bool:
        """See BlobStore.put. Large objects use multipart; if_absent uses If-None-Match.

        Every S3 PUT is durable once acknowledged; `durable` changes nothing here."""
        from botocore.exceptions import ClientError

        try:
            if if_absent:
                self._s3.put_object(Bucket=self.config.bucket, Key=self._k(key), Body=data,
                                    IfNoneMatch="*")
            elif len(data) > self.config.multipart_threshold:
                from boto3.s3.transfer import TransferConfig

                self._s3.upload_fileobj(
                    io.BytesIO(data), self.config.bucket, self._k(key),
                    Config=TransferConfig(multipart_threshold=self.config.multipart_threshold,
                                          multipart_chunksize=self.config.multipart_chunksize))
            else:
                self._s3.put_object(Bucket=self.config.bucket, Key=self._k(key), Body=data)
        except ClientError as e:
            if if_absent and self._code(e) in ("PreconditionFailed", "412",
                                               "ConditionalRequestConflict"):
                return False
            raise Unavailable(f"S3 put {key!r} failed: {e}", key=key) from e
        return True

    def get(self, key: str) -> bytes:
        """See BlobStore.get."""
        from botocore.exceptions import ClientError

        try:
            r = self._s3.get_object(Bucket=self.config.bucket, Key=self._k(key))
            return bytes(r["Body"].read())
        except ClientError as e:
            if self._code(e) in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"no object {key!r}", key=key) from None
            raise Unavailable(f"S3 get {key!r} failed: {e}", key=key) from e

    def stat(self, key: str) -> BlobInfo | None:
        """See BlobStore.stat (a HEAD request)."""
        from botocore.exceptions import ClientError

        try:
            r = self._s3.head_object(Bucket=self.config.bucket, Key=self._k(key))
        except ClientError as e:
            if self._code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise Unavailable(f"S3 head {key!r} failed: {e}", key=key) from e
        return BlobInfo(key, int(r["ContentLength"]), r["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        """See BlobStore.delete."""
        self._s3.delete_object(Bucket=self.config.bucket, Key=self._k(key))

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """See BlobStore.list (list_objects_v2 pages)."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=self._k(prefix))
        n = len(self._prefix)
        for page in pages:
            for o in page.get("Contents", ()):
                yield BlobInfo(o["Key"][n:], int(o["Size"]), o["LastModified"].timestamp())

    def copy(self, src: str, dst: str) -> None:
        """See BlobStore.copy (server-side CopyObject; chunks are far below 5 GiB)."""
        self._s3.copy_object(Bucket=self.config.bucket, Key=self._k(dst),
                             CopySource={"Bucket": self.config.bucket, "Key": self._k(src)})

    def presign(self, key: str, method: Literal["GET", "PUT"], expires_s: int) -> str | None:
        """See BlobStore.presign."""
        op = "get_object" if method == "GET" else "put_object"
        return str(self._s3.generate_presigned_url(
            op, Params={"Bucket": self.config.bucket, "Key": self._k(key)}, ExpiresIn=expires_s))
