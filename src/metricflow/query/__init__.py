"""Read path: run search, metric history, downsampling, comparison and live tails.

- `QueryCore(store, metadata)`: every read, for every front end (gRPC
  `QueryServicer`, `/api/v1`, the MLflow REST API, the web UI's `/ui-api`).
- `Scope`: the experiments a caller may read, applied inside the SQL.
- `RunWindow`: the web UI's run table (offset windows over any filter and sort).
- `kept_answer(client, key, compute)`: an encoded answer kept until the store's next
  write, when this process is its only writer (the embedded server); `keepable(scope)`;
  `kept_run_answer`: one kept until the next write to the runs it read.
- `add_to_server(server, core)` mounts the gRPC service.

Modules load on first attribute access, so `import metricflow.query` needs no
ClickHouse client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "QueryCore": "_core", "ensure_query_schema": "_core",
    "Scope": "_sql", "keepable": "_sql", "kept_answer": "_sql",
    "kept_run_answer": "_sql",
    "DEFAULT_BUCKETS": "_history", "check_step_bound": "_history",
    "MAX_KEYS": "_window", "RunWindow": "_window", "WindowCaches": "_window",
    "parse_columns": "_window",
    "QueryServicer": "_service", "add_to_server": "_service",
    "ScopedQueryCore": "_scoped", "query_core": "_scoped",
    "TailLimits": "_tail_hub",
    "parse_filter": "_grammar", "pinned_runs": "_grammar",
}

__all__ = [
    "DEFAULT_BUCKETS", "MAX_KEYS", "QueryCore", "QueryServicer",
    "RunWindow", "Scope", "ScopedQueryCore", "TailLimits", "WindowCaches", "add_to_server",
    "check_step_bound", "ensure_query_schema", "keepable", "kept_answer", "kept_run_answer",
    "parse_columns", "parse_filter", "pinned_runs", "query_core",
]

if TYPE_CHECKING:
    from metricflow.query._core import QueryCore, ensure_query_schema
    from metricflow.query._grammar import parse_filter, pinned_runs
    from metricflow.query._history import DEFAULT_BUCKETS, check_step_bound
    from metricflow.query._scoped import ScopedQueryCore, query_core
    from metricflow.query._service import QueryServicer, add_to_server
    from metricflow.query._sql import Scope, keepable, kept_answer, kept_run_answer
    from metricflow.query._tail_hub import TailLimits
    from metricflow.query._window import MAX_KEYS, RunWindow, WindowCaches, parse_columns


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
