"""Run searches that see only what the caller may read (auth on).

`ScopedQueryCore` narrows every run search to the caller's readable experiments
inside the SQL (the query engine's `readable_experiments` hook), so pages are full
and paging stays exact. The caller comes from the auth context of the request.
"""

from __future__ import annotations

from typing import Any

from metricflow.auth import current
from metricflow.query._core import QueryCore
from metricflow.query._sql import Scope
from metricflow.query._tail_hub import TailLimits


class ScopedQueryCore(QueryCore):
    """QueryCore whose search scope is intersected with the caller's readable experiments."""

    def scope(self, experiment_ids: list[str], view_type: str,
              readable_experiments: frozenset[str] | None = None) -> Scope:
        cur = current()
        # No caller in context means the call bypassed the guard: show nothing.
        mine = frozenset() if cur is None else cur[1].readable_experiments(cur[0])
        if mine is not None:
            readable_experiments = (mine if readable_experiments is None
                                    else readable_experiments & mine)
        return super().scope(experiment_ids, view_type, readable_experiments)


def query_core(metric_store: Any, metadata: Any, *, scoped: bool,
               tail_limits: TailLimits | None = None) -> QueryCore:
    """The process's QueryCore: scoped to the caller's readable experiments when auth
    is on (`scoped`); `tail_limits`: its live tails' bounds (None = the defaults)."""
    cls = ScopedQueryCore if scoped else QueryCore
    return cls(metric_store, metadata, tail_limits=tail_limits)
