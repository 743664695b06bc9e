"""ParamGuard: refuse a changed param at the call when params are applied later.

In Kafka mode the process that takes a call (an ingest node, or a role serving
the MLflow REST API) only appends records to the log; the writer applies them,
keeps a key's first value and refuses a different one, too late to tell the
caller. ParamGuard checks each param at the call against

- the run's stored params (ClickHouse keeps a key's first value, so a stored
  value is final and is cached without expiry), read from the process's store,
  or, on an ingest node without one, through its query upstream
  (`_upstream_runs.py`), and
- the params this process accepted in the last `ttl_s` (METRICFLOW_PARAM_MEMORY_S,
  5 minutes) that the store does not show yet (the writer's lag).

What stays eventual: two processes that accept different values of one key
before either reaches the store (two nodes racing within the writer's lag, e.g.
an ingest node and the writer's MLflow API). The writer then keeps the value that
is first in the log and counts the other in
`metricflow_writer_record_errors_total{reason="invalid_parameter_value"}`. A
process with neither a store nor an upstream knows only its own params, and only
for `ttl_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from metricflow.errors import InvalidArgument

ParamLookup = Callable[[Iterable[str]], dict[str, dict[str, str]]]


def param_conflict(run_id: str, key: str, old: str, new: str) -> InvalidArgument:
    """The error of a param logged again with another value (the writer's wording)."""
    return InvalidArgument(
        f"param {key!r} of run {run_id} is already {old!r}; params are immutable, "
        f"so it cannot be changed to {new!r}", field=f"params[{key!r}]", received=new)


class ParamGuard:
    """Known params per run: stored (final) and accepted here (until `ttl_s`)."""

    def __init__(self, lookup: ParamLookup | None, ttl_s: float,
                 max_runs: int = 20_000) -> None:
        """Args:
            lookup: reads stored params of runs (MetricStore.get_params, or
                UpstreamRuns.get_params); None when this process can read neither the data
                plane nor an upstream: then only its own accepted params count.
            ttl_s: how long an accepted param is remembered while the store does not
                show it; longer than the writer's usual lag (the settings' param_memory_s,
                METRICFLOW_PARAM_MEMORY_S).
            max_runs: runs remembered (least recently used go first).
        """
        if ttl_s < 0:
            raise InvalidArgument(f"the param memory must be >= 0 s, got {ttl_s}",
                                  field="METRICFLOW_PARAM_MEMORY_S", received=ttl_s)
        self.lookup, self.ttl_s, self.max_runs = lookup, ttl_s, max_runs
        self._stored: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._pending: OrderedDict[str, dict[str, tuple[str, float]]] = OrderedDict()

    async def reserve(self, run_id: str, params: Mapping[str, str]) -> list[str]:
        """Check `params` of `run_id`; remember the new ones as accepted.

        Returns the keys remembered now (hand them to `release` if the write fails).
        Raises InvalidArgument (INVALID_PARAMETER_VALUE) when a key is already set to
        another value; nothing is remembered then.
        """
        stored = self._stored.get(run_id, {})
        if self.lookup is not None and any(k not in stored for k in params):
            read = (await asyncio.to_thread(self.lookup, [run_id])).get(run_id, {})
            # A value seen before wins over a read from a lagging replica.
            stored = {**read, **self._stored.get(run_id, {})}
        # From here on no await: the check and the reservation are one step.
        if stored:
            self._remember(self._stored, run_id, stored)
        now = time.monotonic()
        pending = {k: e for k, e in self._pending.get(run_id, {}).items()
                   if k not in stored and now - e[1] < self.ttl_s}
        for key, value in params.items():
            old = stored.get(key)
            if old is None and key in pending:
                old = pending[key][0]
            if old is not None and old != value:
                raise param_conflict(run_id, key, old, value)
        new = [k for k in params if k not in stored and k not in pending]
        for k in new:
            pending[k] = (params[k], now)
        if pending:
            self._remember(self._pending, run_id, pending)
        else:
            self._pending.pop(run_id, None)
        return new

    def release(self, run_id: str, keys: Iterable[str]) -> None:
        """Forget params reserved by a write that failed."""
        pending = self._pending.get(run_id)
        if pending is None:
            return
        for k in keys:
            pending.pop(k, None)
        if not pending:
            del self._pending[run_id]

    def _remember(self, table: OrderedDict[str, dict], run_id: str, value: dict) -> None:
        table[run_id] = value
        table.move_to_end(run_id)
        while len(table) > self.max_runs:
            table.popitem(last=False)


__all__ = ["ParamGuard", "ParamLookup", "param_conflict"]
