"""A per-client cache of file digests keyed by stat data (like git's index or borg's files cache).

Re-logging an unchanged checkpoint then costs one stat instead of re-reading the
file. An entry is only stored when the file's stat did not change while it was
being read *and* its mtime was already more than RACY_NS old when the read ended:
any later write then gets a different mtime, even on file systems whose
timestamps come from a coarse clock (the "racy clean" problem git describes).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

from metricflow.artifacts._codec import FileDigest, digest_file

RACY_NS = 100_000_000  # 100 ms, far above coarse kernel clock ticks (1-10 ms)

_Key = tuple[str, int, int, int, int, int]


def _stat_key(path: str | os.PathLike[str]) -> tuple[_Key, int]:
    st = os.stat(path)
    return ((os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
             st.st_ctime_ns), max(st.st_mtime_ns, st.st_ctime_ns))


class DigestCache:
    """Bounded LRU of FileDigest by (path, device, inode, size, mtime, ctime).

    Args:
        max_chunks: total chunk entries kept (about 100 bytes each).
    """

    def __init__(self, max_chunks: int = 200_000) -> None:
        self.max_chunks = max_chunks
        self._entries: OrderedDict[_Key, FileDigest] = OrderedDict()
        self._chunks = 0
        self._lock = threading.Lock()
        self.hits = 0

    def digest(self, path: str | os.PathLike[str]) -> FileDigest:
        """The digest of `path`, from the cache when its stat data is unchanged."""
        key, changed_ns = _stat_key(path)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit
        fd = digest_file(path)
        after, _ = _stat_key(path)
        if after == key and time.time_ns() - changed_ns > RACY_NS and fd.chunks:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = fd
                    self._chunks += len(fd.chunks)
                while self._chunks > self.max_chunks and self._entries:
                    _k, old = self._entries.popitem(last=False)
                    self._chunks -= len(old.chunks)
        return fd
