"""Parsing of `runs:/<run_id>/<path>` and `models:/...` URIs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from metricflow.errors import InvalidArgument
from metricflow.store.metadata._validate import check_stage

_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):")

HOST_ADDRESSED_SCHEMES = frozenset({
    "ftp", "sftp", "hdfs", "viewfs", "http", "https", "r2", "b2", "abfss"})
"""URI schemes whose reader connects to the host named in the URI (MLflow 3.17.2's list,
`mlflow.store.artifact.host_policy`); `mlflow-artifacts` too when it names a host."""


def host_addressed_scheme(uri: str) -> str | None:
    """The scheme of `uri` if reading it would connect to a host the URI names, else None.

    Every MLflow client that downloads such a source or location sends the request
    (and with `mlflow-artifacts://host`, its bearer token) to that host, so a caller
    could make other users' clients talk to a host of its choosing. `mlflow-artifacts:/p`
    (no authority) addresses this server and is fine.
    """
    if not isinstance(uri, str):
        return None
    s = uri.strip()
    m = _SCHEME.match(s)
    if m is None:
        return None
    scheme = m.group("scheme").lower()
    if scheme in HOST_ADDRESSED_SCHEMES:
        return scheme
    rest = s[m.end():].replace("\\", "/")  # HTTP clients end an authority at a backslash
    if scheme == "mlflow-artifacts" and rest.startswith("//") and urlsplit("x:" + rest).netloc:
        return scheme
    return None


def check_artifact_host(uri: str | None, field: str) -> None:
    """InvalidArgument (400 INVALID_PARAMETER_VALUE) if `uri` names another host
    (`host_addressed_scheme`), with MLflow 3.17.2's message shape."""
    scheme = host_addressed_scheme(uri) if uri else None
    if scheme is None:
        return
    raise InvalidArgument(
        f"'{field}' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host "
        "other than the tracking server's configured artifact storage, so clients reading it "
        f"would connect to the host named in the URI (received {str(uri)[:300]!r}). Use "
        "mlflow-artifacts:/<path> without a host, runs:/, models:/ or an object store URI "
        "(s3://, gs://)", field=field, received=str(uri)[:300])


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """`runs:/<run_id>/<path>` -> (run_id, path); path may be empty."""
    m = _RUNS.match(uri)
    if not m:
        raise InvalidArgument(f"source {uri!r} is not a runs:/<run_id>/<path> URI",
                              field="source", received=uri)
    return m.group("run"), (m.group("path") or "").strip("/")


def parse_model_uri(uri: str) -> tuple[str, str, str]:
    """Parse a `models:/` URI into (name, kind, ref).

    kind is "alias" (`models:/name@alias`), "version" (`models:/name/3`),
    "stage" (`models:/name/Production`, ref is the canonical stage) or
    "latest" (`models:/name/latest`).
    """
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise InvalidArgument(f"model URI {uri!r} must start with models:/",
                              field="model_uri", received=str(uri))
    rest = uri.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in alias:
            return name, "alias", alias
    else:
        name, _, ref = rest.rpartition("/")
        if name and ref:
            if ref.isdigit():
                return name, "version", ref
            if ref.lower() == "latest":
                return name, "latest", ref
            try:
                return name, "stage", check_stage(ref)
            except InvalidArgument:
                pass
    raise InvalidArgument(
        f"model URI {uri!r} must be models:/<name>/<version|stage|latest> or "
        "models:/<name>@<alias>", field="model_uri", received=uri)
