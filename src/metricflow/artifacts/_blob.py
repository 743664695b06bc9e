"""The BlobStore seam and its local-directory implementation."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from metricflow.errors import InvalidArgument, NotFound

_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class BlobInfo:
    """One stored object: its key, size in bytes and last-modified time (store clock)."""

    key: str
    size: int
    mtime: float


@runtime_checkable
class BlobStore(Protocol):
    """A flat key -> bytes store. Every write is atomic: readers see all or nothing."""

    def put(self, key: str, data: bytes, *, if_absent: bool = False,
            durable: bool = True) -> bool:
        """Store `data` under `key`. With if_absent, return False instead of replacing.

        durable=False allows a crash to lose the write (never to tear it); for
        objects whose loss is harmless, such as chunk reference markers.
        """
        ...

    def get(self, key: str) -> bytes:
        """Return the bytes under `key`; raise NotFound when absent."""
        ...

    def stat(self, key: str) -> BlobInfo | None:
        """Return size and mtime of `key`, or None when absent (this is `has`)."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; absent keys are not an error."""
        ...

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Yield every object whose key starts with `prefix`, in no promised order."""
        ...

    def copy(self, src: str, dst: str) -> None:
        """Copy an object inside the store (server-side on S3)."""
        ...

    def presign(self, key: str, method: Literal["GET", "PUT"], expires_s: int) -> str | None:
        """A URL that allows one GET or PUT without credentials, or None if unsupported."""
        ...


def _check_key(key: str) -> None:
    if not key or key.startswith("/") or "\x00" in key or ".." in key.split("/"):
        raise InvalidArgument("invalid blob key", field="key", received=key[:200])


class LocalBlobStore:
    """Blobs as files under a root directory; writes go to a temp file, then rename.

    Args:
        root: directory that holds the objects (created if missing).
        fsync: flush file data (and the directory entry) before a write is
            reported done, so a power loss cannot expose a half-written object.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def _write_tmp(self, target: Path, data: bytes, durable: bool = True) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.write(data)
            if self.fsync and durable:
                f.flush()
                os.fsync(f.fileno())
        return tmp

    def _sync_dir(self, d: Path) -> None:
        if self.fsync:
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def put(self, key: str, data: bytes, *, if_absent: bool = False,
            durable: bool = True) -> bool:
        """See BlobStore.put."""
        target = self._path(key)
        if not data and if_absent and not durable:
            # An empty object cannot be torn: create it in place (markers; no fsyncs).
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                return False
            return True
        tmp = self._write_tmp(target, data, durable)
        try:
            if if_absent:
                try:
                    os.link(tmp, target)  # atomic create-if-absent
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        if durable:
            self._sync_dir(target.parent)
        return True

    def get(self, key: str) -> bytes:
        """See BlobStore.get."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no object {key!r}", key=key) from None

    def stat(self, key: str) -> BlobInfo | None:
        """See BlobStore.stat."""
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not os.path.isfile(self._path(key)):
            return None
        return BlobInfo(key, st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        """See BlobStore.delete."""
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """See BlobStore.list."""
        base = self.root / prefix[: prefix.rfind("/") + 1] if "/" in prefix else self.root
        if not base.is_dir():
            return
        root_s = str(self.root) + os.sep
        for dirpath, _dirs, files in os.walk(base):
            inside = dirpath != str(self.root)
            rel_dir = dirpath[len(root_s):].replace(os.sep, "/") if inside else ""
            for name in files:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = f"{rel_dir}/{name}" if rel_dir else name
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                yield BlobInfo(key, st.st_size, st.st_mtime)

    def copy(self, src: str, dst: str) -> None:
        """See BlobStore.copy."""
        self.put(dst, self.get(src))

    def presign(self, key: str, method: Literal["GET", "PUT"], expires_s: int) -> str | None:
        """Local files have no URLs; bytes go through the service."""
        return None

    def now(self) -> float:
        """The store's clock (the one mtimes come from)."""
        return time.time()
