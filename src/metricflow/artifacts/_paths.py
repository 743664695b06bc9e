"""Validation of artifact paths and run ids (the only user input that becomes a key)."""

from __future__ import annotations

import re

from metricflow.errors import InvalidArgument

MAX_PATH_BYTES = 1024
"""Longest artifact path, in UTF-8 bytes."""
MAX_COMPONENT_BYTES = 250
"""Longest path component; keys add a 1-byte prefix and file systems stop at 255."""
MAX_RUN_ID_BYTES = 128

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_run_id(run_id: str) -> str:
    """Return `run_id` unchanged, or raise InvalidArgument naming the rule it broke."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidArgument("run_id must be a non-empty string", field="run_id",
                              received=repr(run_id))
    if len(run_id.encode()) > MAX_RUN_ID_BYTES:
        raise InvalidArgument(f"run_id is longer than {MAX_RUN_ID_BYTES} bytes", field="run_id",
                              limit=MAX_RUN_ID_BYTES, received=len(run_id.encode()))
    if not _RUN_ID.match(run_id):
        raise InvalidArgument("run_id may contain only letters, digits, '.', '_' and '-' and "
                              "must start with a letter or digit", field="run_id",
                              received=run_id[:80])
    return run_id


def normalize_path(path: str, *, field: str = "path", allow_empty: bool = False) -> str:
    """Check an artifact path and return its canonical form ('a/b/c', no trailing slash).

    Rejects absolute paths, `..`, NUL bytes, backslashes and over-long names with
    InvalidArgument(field, limit, received). `.` components and repeated slashes
    are dropped.
    """
    if not isinstance(path, str):
        raise InvalidArgument(f"{field} must be a string", field=field, received=repr(path))
    if "\x00" in path:
        raise InvalidArgument(f"{field} contains a NUL byte", field=field,
                              received=path.replace("\x00", "\\x00")[:200])
    if "\\" in path:
        raise InvalidArgument(f"{field} contains a backslash; use '/'", field=field,
                              received=path[:200])
    if path.startswith("/"):
        raise InvalidArgument(f"{field} must be relative, not absolute", field=field,
                              received=path[:200])
    nbytes = len(path.encode("utf-8", "surrogatepass"))
    if nbytes > MAX_PATH_BYTES:
        raise InvalidArgument(f"{field} is longer than {MAX_PATH_BYTES} bytes", field=field,
                              limit=MAX_PATH_BYTES, received=nbytes)
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidArgument(f"{field} must not contain '..'", field=field,
                                  received=path[:200])
        plen = len(part.encode("utf-8", "surrogatepass"))
        if plen > MAX_COMPONENT_BYTES:
            raise InvalidArgument(
                f"{field} has a component longer than {MAX_COMPONENT_BYTES} bytes",
                field=field, limit=MAX_COMPONENT_BYTES, received=plen)
        if any(ord(c) < 0x20 for c in part):
            raise InvalidArgument(f"{field} contains a control character", field=field,
                                  received=repr(part)[:200])
        parts.append(part)
    if not parts and not allow_empty:
        raise InvalidArgument(f"{field} must name a file", field=field, received=path[:200])
    return "/".join(parts)


def join_path(prefix: str | None, name: str) -> str:
    """Join an optional artifact directory and a relative name, then normalize."""
    return normalize_path(f"{prefix}/{name}" if prefix else name)
