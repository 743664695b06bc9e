"""Model-version sources that point into this server's own store, and who may use them.

A version's source is a pointer that every reader of the model follows. When it
names something metricflow itself holds (a run's artifacts, a logged model,
another registered model's version), registering it would hand that thing to
the model's readers; so the creator must be able to READ it. The refusal is the
same whether the target exists or not, so it tells nothing about other
experiments or models (see docs/registry.md, "Sources into this server").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metricflow.errors import InvalidArgument, NotFound, PermissionDenied
from metricflow.store.metadata._uris import parse_model_uri, parse_runs_uri

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_PROXY = re.compile(r"^mlflow-artifacts:(?://[^/]*)?/*(?P<path>.*)$", re.I)


@dataclass(frozen=True)
class SourceTarget:
    """One object of this server a source resolves to: its authorization kind and id."""

    kind: str
    """"run", "logged_model", "experiment" or "model" (the Authorizer's kinds)."""
    ident: str


def _proxy_targets(path: str) -> list[SourceTarget]:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return [SourceTarget("admin", "")]  # the whole artifact store: nobody's to lend
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
    if low.startswith("runs:/"):
        out.append(SourceTarget("run", parse_runs_uri(s)[0]))
    elif low.startswith("mlflow-artifacts:"):
        m = _PROXY.match(s)
        out.extend(_proxy_targets(m.group("path") if m else ""))
    elif low.startswith("models:/"):
        first = s[len("models:/"):].strip("/").split("/", 1)[0]
        if _LOGGED_MODEL_ID.match(first):
            out.append(SourceTarget("logged_model", first))
        else:
            try:
                out.append(SourceTarget("model", parse_model_uri(s)[0]))
            except InvalidArgument:  # not a URI the registry resolves: refuse as unreadable
                out.append(SourceTarget("admin", ""))
    return out


def refusal(source: str) -> PermissionDenied:
    """The one answer for a source the caller may not use, existing or not."""
    return PermissionDenied(
        f"model version source {source[:300]!r} does not exist or you may not read it; a "
        "source inside this server needs READ on its run, logged model or registered model",
        field="source")


def check_source_readable(source: str, model_id: str = "", run_id: str = "") -> None:
    """PermissionDenied unless the current caller may READ all that `source` resolves to.

    `model_id` and `run_id` are the version's links to a logged model and a run
    (readers see them, and MLflow resolves a logged model's files through them).

    A no-op outside an authenticated request (auth off, internal calls): the caller
    is then the server's operator, who may read everything.
    """
    from metricflow.auth._authz import Need  # noqa: PLC0415 - server side only
    from metricflow.auth._context import current  # noqa: PLC0415
    from metricflow.auth._types import Permission  # noqa: PLC0415

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
