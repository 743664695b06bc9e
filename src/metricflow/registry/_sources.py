"""Model-version sources that point into this server's own store, and who may use them.

A version's source is a pointer that every reader of the model follows. When it
names something metricflow itself holds (a run's artifacts, a logged model,
another registered model's version), registering it would hand that thing to
the model's readers; so the creator must be able to READ it. The refusal is the
same whether the target exists or not, so it tells nothing about other
experiments or models (see docs/registry.md, "Sources into this server").

Two kinds of source are never lent to readers:
- a local filesystem path (`/path`, `file:///path`, a relative path, `C:\\path`): it
  would point readers at the server's own files. Refused at creation with
  INVALID_PARAMETER_VALUE on every front end, as MLflow does (`check_new_source`);
  versions registered before that resolve for admins only.
- a URI whose reader connects to a host it names (`http(s)://`, `ftp://`, `sftp:`,
  `hdfs://`, ..., `mlflow-artifacts://HOST/...`): every reader's MLflow client would
  connect there, with its bearer token. Refused at creation with INVALID_PARAMETER_VALUE
  for every caller, as MLflow 3.17.2 does (`store.metadata.check_artifact_host`).
- a path into this server with `.` or `..` segments, an empty segment in the
  middle, or a percent-encoded `/`, `\\`, `.` or `..` in a segment: which
  experiment or run it names depends on who normalizes it, so it is refused like
  an unreadable target (admins only), never read as its first segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from metricflow.errors import InvalidArgument, NotFound, PermissionDenied
from metricflow.store.metadata import check_artifact_host, parse_model_uri, parse_runs_uri

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_PROXY = re.compile(r"^mlflow-artifacts:(?://[^/]*)?/*(?P<path>.*)$", re.I)
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):")
_ADMIN_ONLY = "admin"


@dataclass(frozen=True)
class SourceTarget:
    """One object of this server a source resolves to: its authorization kind and id."""

    kind: str
    """"run", "logged_model", "experiment" or "model" (the Authorizer's kinds)."""
    ident: str


def is_local_source(source: str) -> bool:
    """A path on the server's filesystem: no URI scheme, `file:`, or a Windows drive."""
    s = source.strip()
    if not s:
        return False  # no source at all: the store refuses it, naming the field
    m = _SCHEME.match(s)
    if m is None:
        return True  # `/abs/path`, `relative/path`, `./x`, `%2Fetc`
    scheme = m.group("scheme").lower()
    return scheme == "file" or len(scheme) == 1  # `file:...`; `C:\path`, `C:/path`


def _ambiguous_path(path: str) -> bool:
    """Dot segments, an empty segment inside the path, or an encoded separator or dot."""
    parts = path.split("/")
    if parts and parts[-1] == "":
        parts.pop()  # one trailing slash: `.../model/` names `.../model`
    for part in parts:
        decoded = part
        for _ in range(3):  # %252e%252e is %2e%2e is ..
            decoded = unquote(decoded)
        if decoded in ("", ".", "..") or "/" in decoded or "\\" in decoded or \
                unquote(decoded) != decoded:
            return True
    return False


def _proxy_targets(path: str) -> list[SourceTarget]:
    if _ambiguous_path(path):
        return [SourceTarget(_ADMIN_ONLY, "")]  # `2/../1/<run>`: refused, never read as 2
    parts = [p for p in path.split("/") if p]
    if not parts:
        return [SourceTarget(_ADMIN_ONLY, "")]  # the whole artifact store: nobody's to lend
    if len(parts) >= 2 and _RUN_ID.match(parts[1]):
        return [SourceTarget("run", parts[1])]
    if len(parts) >= 3 and parts[1] == "models" and _LOGGED_MODEL_ID.match(parts[2]):
        return [SourceTarget("logged_model", parts[2])]
    return [SourceTarget("experiment", parts[0])]  # anything else under an experiment


def store_targets(source: str, model_id: str = "", run_id: str = "") -> list[SourceTarget]:
    """What in this server `source` (and a linked `model_id` or `run_id`) resolves to.

    Empty for sources outside the server (storage URIs the reader's own client
    fetches with its own credentials).
    """
    out: list[SourceTarget] = []
    if run_id:
        out.append(SourceTarget("run", run_id))
    if model_id:
        out.append(SourceTarget("logged_model", model_id))
    s = source.strip()
    low = s.lower()
    if is_local_source(s):
        out.append(SourceTarget(_ADMIN_ONLY, ""))  # the server's own files (legacy versions)
    elif low.startswith("runs:/"):
        if _ambiguous_path(s[len("runs:/"):]):
            out.append(SourceTarget(_ADMIN_ONLY, ""))
        else:
            out.append(SourceTarget("run", parse_runs_uri(s)[0]))
    elif low.startswith("mlflow-artifacts:"):
        m = _PROXY.match(s)
        out.extend(_proxy_targets(m.group("path") if m else ""))
    elif low.startswith("models:/") and _ambiguous_path(s[len("models:/"):].strip("/")):
        out.append(SourceTarget(_ADMIN_ONLY, ""))
    elif low.startswith("models:/"):
        first = s[len("models:/"):].strip("/").split("/", 1)[0]
        if _LOGGED_MODEL_ID.match(first):
            out.append(SourceTarget("logged_model", first))
        else:
            try:
                out.append(SourceTarget("model", parse_model_uri(s)[0]))
            except InvalidArgument:  # not a URI the registry resolves: refuse as unreadable
                out.append(SourceTarget(_ADMIN_ONLY, ""))
    return out


def refusal(source: str) -> PermissionDenied:
    """The one answer for a source the caller may not use, existing or not."""
    return PermissionDenied(
        f"model version source {source[:300]!r} does not exist or you may not read it; a "
        "source inside this server needs READ on its run, logged model or registered model",
        field="source")


def check_new_source(source: str, model_id: str = "", run_id: str = "") -> None:
    """The checks of a version's source at creation, on every front end.

    InvalidArgument (400 / INVALID_ARGUMENT) for a local filesystem path, for
    every caller, admins and auth-off servers included (as MLflow); then
    `check_source_readable`; then InvalidArgument for a `..` segment or NUL byte
    in a URI source (as MLflow; after authorization, so a dotted path into another
    experiment gets the same 403 as any unreadable source).
    """
    if isinstance(source, str) and is_local_source(source):
        raise InvalidArgument(
            f"Invalid model version source: {source[:300]!r}. A local filesystem path (an "
            "absolute or relative path, or a file:// URI) cannot be a model version source; "
            "use a URI readers can resolve (runs:/, models:/, mlflow-artifacts:/, s3://, "
            "gs://, ...). (MLflow: To use a local path as a model version source, the run_id "
            "request parameter has to be specified and the local path has to be contained "
            "within the artifact directory of the run; this server keeps no run artifacts on "
            "its local filesystem, so it accepts no local path.)", field="source",
            received=source[:300])
    if isinstance(source, str):
        check_artifact_host(source, "source")  # http(s)/ftp/sftp/hdfs, mlflow-artifacts://host
    # Authorization first: with auth on, a caller who may not read what a dotted source
    # seems to name gets the same 403 as for any unreadable source (nothing leaks).
    check_source_readable(source, model_id, run_id)
    if isinstance(source, str) and has_relative_reference(source):
        raise InvalidArgument(
            f"Invalid model version source: {source[:300]!r}. If supplying a source as an "
            "http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an "
            "absolute path must be provided without relative path references present "
            "('..' segments, also percent-encoded, or NUL bytes). Please provide an absolute "
            "path.", field="source", received=source[:300])


def has_relative_reference(source: str) -> bool:
    """A `..` segment (also percent-encoded) or a NUL byte in a URI source's path, as
    MLflow refuses them: which object it names would depend on who normalizes it."""
    m = _SCHEME.match(source.strip())
    rest = source.strip()[m.end():] if m else source
    decoded = rest
    for _ in range(3):  # %252e%252e is %2e%2e is ..
        decoded = unquote(decoded)
    if "\x00" in decoded:
        return True
    return any(seg == ".." for seg in re.split(r"[/\\]", decoded))


def check_source_readable(source: str, model_id: str = "", run_id: str = "") -> None:
    """PermissionDenied unless the current caller may READ all that `source` resolves to.

    `model_id` and `run_id` are the version's links to a logged model and a run
    (readers see them, and MLflow resolves a logged model's files through them).

    A no-op outside an authenticated request (auth off, internal calls): the caller
    is then the server's operator, who may read everything.
    """
    from metricflow.auth import (
        Need,  # server side only
        Permission,
        current,
    )

    cur = current()
    if cur is None or cur[1] is None or cur[0].admin:
        return
    principal, authz = cur
    try:
        targets = store_targets(source, model_id, run_id)
    except InvalidArgument:
        raise refusal(source) from None
    for t in targets:
        try:
            authz.check(principal, [Need(t.kind, t.ident, Permission.READ)])
        except (NotFound, PermissionDenied, InvalidArgument):
            raise refusal(source) from None
