"""Experiment scopes of chunk references: who may reference which chunk.

A chunk counts as present for an experiment only if the experiment holds a
reference marker for it (`chunk-refs/<h0h1>/<h2h3>/<hash>.<scope>`). The marker
is written when the chunk's bytes arrive and are verified for a run of that
experiment, so knowing a hash is not enough to reference a chunk (see
docs/artifacts.md, "Experiment-scoped dedup").
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable

from metricflow.errors import NotFound

RunExperiments = Callable[[list[str]], dict[str, str]]
"""`run ids -> {run_id: experiment_id}` for the runs that exist (the data plane)."""

DEFAULT_SCOPE = "_default"
"""Scope of a store without a run lookup (tests, tools, MLflow proxy writes): one tenant."""

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def scope_of_experiment(experiment_id: str) -> str:
    """The key component for one experiment.

    Ids that are already key-safe are used as they are (they start with a letter
    or digit); anything else becomes `_x<hex>`, which no safe id and not
    DEFAULT_SCOPE can equal.
    """
    if _SAFE.match(experiment_id):
        return experiment_id
    return "_x" + experiment_id.encode("utf-8", "surrogatepass").hex()


class RunScopes:
    """run_id -> scope through a run lookup, cached (a run never changes experiment).

    Args:
        run_experiments: the lookup; None = every run is in DEFAULT_SCOPE.
        max_runs: bound of the cache.
    """

    def __init__(self, run_experiments: RunExperiments | None, max_runs: int = 100_000) -> None:
        self.lookup = run_experiments
        self.max_runs = max_runs
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when runs are scoped by their experiment (a lookup is configured)."""
        return self.lookup is not None

    def scope(self, run_id: str) -> str:
        """The scope of `run_id`; NotFound if the lookup does not know the run."""
        if self.lookup is None:
            return DEFAULT_SCOPE
        with self._lock:
            hit = self._cache.get(run_id)
            if hit is not None:
                self._cache.move_to_end(run_id)
                return hit
        exp = self.lookup([run_id]).get(run_id)
        if exp is None:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id", received=run_id)
        scope = scope_of_experiment(exp)
        with self._lock:
            self._cache[run_id] = scope
            while len(self._cache) > self.max_runs:
                self._cache.popitem(last=False)
        return scope
