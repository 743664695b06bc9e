"""What a rule is, and the resolvers the permission tables are made of.

A `Rule` turns a request (a protobuf message or the HTTP parameters) into the
`Need`s the caller must hold; the tables in `_tables.py` (native API) and
`_mlflow.py` (MLflow REST API) are built from the constructors here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._params import list_of, param_of
from metricflow.auth._types import Permission
from metricflow.errors import AlreadyExists, InvalidArgument
from metricflow.store.metadata import parse_model_uri

R, E, M = Permission.READ, Permission.EDIT, Permission.MANAGE
Resolver = Callable[[Authorizer, Any], list[Need]]


@dataclass(frozen=True)
class Rule:
    """What a call needs (`resolve`) and what happens after it succeeds (`after`)."""

    resolve: Resolver
    after: str = ""
    """"grant_experiment" | "grant_model" | "record_run": creator grants, run owner cache."""
    search: bool = False
    """Results are filtered to readable experiments/models inside the query."""


def _g(r: Any, name: str) -> Any:
    v = param_of(r, name)
    return "" if v is None else v


def _scalar(v: Any, name: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)  # as the handlers read a JSON number given for an id
    raise InvalidArgument(f"parameter {name!r} must be a string, not "
                          f"{type(v).__name__}", field=name, received=repr(v)[:100])


def _str(r: Any, name: str) -> str:
    """Scalar parameter `name` as a string ("" when absent); InvalidArgument for lists,
    objects and booleans (the handlers refuse those too)."""
    return _scalar(_g(r, name), name)


def _list(r: Any, name: str) -> list[str]:
    """List parameter `name` (a single string counts as a one-element list)."""
    v = list_of(r, name)
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [v]
    try:
        if isinstance(v, (dict, bytes, int, float)):
            raise TypeError
        items = list(v)  # a JSON list, or a protobuf repeated field (upb's containers
        # iterate through the sequence protocol: they have no __iter__ attribute)
    except TypeError:
        raise InvalidArgument(f"parameter {name!r} must be a list, not {type(v).__name__}",
                              field=name, received=repr(v)[:100]) from None
    return [_scalar(x, name) for x in items]


def anyone(level: Permission) -> Rule:
    return Rule(lambda a, r: [Need("any", "", level)])


def admin() -> Rule:
    return Rule(lambda a, r: [Need("admin", "", M)])


def exp(level: Permission, field: str = "experiment_id", default: str = "") -> Rule:
    return Rule(lambda a, r: [Need("experiment", _str(r, field) or default, level)])


def run(level: Permission, field: str = "run_id") -> Rule:
    return Rule(lambda a, r: [Need("run", _str(r, field), level)])


def runs(level: Permission, field: str = "run_ids", empty: str = "any") -> Rule:
    """Every listed run; an empty list means "all runs", which needs `empty` (admin)."""
    def resolve(a: Authorizer, r: Any) -> list[Need]:
        ids = _list(r, field)
        return [Need("run", i, level) for i in ids] if ids else [Need(empty, "", level)]
    return Rule(resolve)


def model(level: Permission, field: str = "name") -> Rule:
    return Rule(lambda a, r: [Need("model", _str(r, field), level)])


def search(level: Permission = R) -> Rule:
    return Rule(lambda a, r: [Need("any", "", level)], search=True)


def _update_run(a: Authorizer, r: Any) -> list[Need]:
    # Deleting or restoring a run is a delete-level change: MANAGE, as in MLflow.
    lvl = M if _str(r, "lifecycle_stage") else E
    return [Need("run", _str(r, "run_id"), lvl)]


def _exp_by_name(a: Authorizer, r: Any) -> list[Need]:
    # The HTTP handlers read `experiment_name` (only); the gRPC message has `name`.
    _str(r, "experiment_name") or _str(r, "name")  # wrong JSON types are 400 here
    # Whether the caller may see the experiment is decided by the handlers' store view
    # (ScopedMetadataStore.get_experiment_by_name): a hidden name then takes each
    # surface's answer for a missing one (MLflow 404, /api/v1 null, gRPC empty).
    return [Need("any", "", R)]


def _get_or_create(a: Authorizer, r: Any) -> list[Need]:
    eid = a.store.experiment_id_by_name(_str(r, "name"))
    return [Need("any", "", E)] if eid is None else [
        Need("experiment", eid, R, by_name=_str(r, "name"))]


def _create_version(a: Authorizer, r: Any) -> list[Need]:
    # The source, run_id and model_id are checked by the handler (registry/_sources.py):
    # READ on what they name, one answer whether it is unreadable or missing.
    for field in ("source", "run_id"):
        _str(r, field)  # a list or object is still refused here (InvalidArgument)
    return [Need("model", _str(r, "name"), E)]


def _resolve_uri(a: Authorizer, r: Any) -> list[Need]:
    # parse_model_uri is what the store resolves with: READ on exactly the model it will
    # return; a URI it cannot parse is refused here (InvalidArgument), never "any".
    name, _, _ = parse_model_uri(_str(r, "model_uri"))
    return [Need("model", name, R)]


def _audit_search(a: Authorizer, r: Any) -> list[Need]:
    if _str(r, "experiment_id"):
        return [Need("experiment", _str(r, "experiment_id"), M)]
    if _str(r, "model_name"):
        return [Need("model", _str(r, "model_name"), M)]
    return [Need("admin", "", M)]


def _dedup(a: Authorizer, r: Any) -> list[Need]:
    rid = _str(r, "run_id")
    return [Need("run", rid, R)] if rid else [Need("admin", "", M)]


def _create_run(a: Authorizer, r: Any) -> list[Need]:
    # A client-chosen run id must be new: the write path would otherwise overwrite the
    # run record and move someone else's run into an experiment the caller may edit.
    rid = _str(r, "run_id")
    if rid and not a.sees_all_runs:
        # Another node may have created it: this node could authorize writes to it as
        # the caller's (the writer refuses the create itself, not later points).
        raise InvalidArgument("a client-chosen run_id needs a node that can look runs up "
                              "(start the ingest role with --clickhouse), or leave run_id "
                              "empty to get a new one", field="run_id", received=rid)
    if rid and a.run_exists(rid):
        raise AlreadyExists(f"run {rid!r} already exists", field="run_id", received=rid)
    needs = [Need("experiment", _str(r, "experiment_id") or "0", E)]
    fork = _str(r, "fork_from")
    if fork:  # a fork reads its parent's history: the parent must be readable (hidden =
        needs.append(Need("run", fork, R))  # missing); an inherited experiment: ingest
    return needs


RUN_ID_METADATA = "mf-run-id"
"""gRPC metadata naming the run a chunk read is for (chunk requests carry only hashes)."""


def _chunk_read(a: Authorizer, r: Any) -> list[Need]:
    # A chunk hash alone is no capability: the caller names the run whose manifest
    # listed it, needs READ on that run, and the servicer checks the chunk belongs to it.
    rid = _str(r, "run_id")
    if not rid:  # only admins may read chunks without naming a run (GC, repair tools)
        return [Need("admin", f"non-admin chunk reads must name their run in the "
                              f"{RUN_ID_METADATA!r} metadata", R)]
    return [Need("run", rid, R)]
