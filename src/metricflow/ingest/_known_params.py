"""KnownParams: params refused at the call when the embedded sink applies them later.

The embedded sink acknowledges a params record once it is durable in its log
and applies it a moment later (ingest/_direct.py), too late for the applier's
refusal of a changed param to reach the caller. This process is the only writer
of its store, so it can know each run's params exactly: a run created here has
none, any other run's are read once from the store (after the pending records
are applied, by the store's read barrier). Check and reservation are one step
on the event loop, so two concurrent calls logging one key with two values
cannot both pass: the second one sees the first one's value.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from metricflow.ingest._param_guard import param_conflict

ParamLookup = Callable[[Iterable[str]], dict[str, dict[str, str]]]


class KnownParams:
    """Every param of recently used runs (least recently used runs are forgotten and
    read again from the store when used)."""

    def __init__(self, lookup: ParamLookup, max_runs: int = 50_000) -> None:
        self.lookup, self.max_runs = lookup, max_runs
        self._runs: OrderedDict[str, dict[str, str]] = OrderedDict()

    def created(self, run_id: str) -> None:
        """A run this process just created: it has no params yet."""
        self._put(run_id, {})

    def _put(self, run_id: str, params: dict[str, str]) -> dict[str, str]:
        self._runs[run_id] = params
        self._runs.move_to_end(run_id)
        while len(self._runs) > self.max_runs:
            self._runs.popitem(last=False)
        return params

    async def reserve(self, run_id: str, params: Mapping[str, str]) -> list[str]:
        """Check `params` against the run's; remember the new ones. Returns the keys
        added (give them to `release` if the write fails). Raises InvalidArgument when
        a key already has another value; nothing is remembered then."""
        known = self._runs.get(run_id)
        if known is None:
            read = (await asyncio.to_thread(self.lookup, [run_id])).get(run_id, {})
            known = self._runs.get(run_id)  # another call may have filled it meanwhile
            if known is None:
                known = self._put(run_id, dict(read))
        else:
            self._runs.move_to_end(run_id)
        # From here on no await: the check and the reservation are one step.
        for key, value in params.items():
            old = known.get(key)
            if old is not None and old != value:
                raise param_conflict(run_id, key, old, value)
        new = [k for k in params if k not in known]
        for k in new:
            known[k] = params[k]
        return new

    def release(self, run_id: str, keys: Iterable[str]) -> None:
        """Forget params reserved by a write that failed."""
        known = self._runs.get(run_id)
        if known is not None:
            for k in keys:
                known.pop(k, None)
