"""What policies read: the source run (data plane) and the version's files (artifacts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from metricflow.errors import InvalidArgument, NotFound
from metricflow.governance._policy import PolicyEvaluator, RunFacts
from metricflow.store.metadata import PolicyGate, parse_runs_uri

if TYPE_CHECKING:
    from metricflow.artifacts import ArtifactStore


class StoreFacts:
    """Facts from a MetricStore (runs) and an ArtifactStore (runs:/ model files).

    Either may be None (a role without it): then the rules that need it report
    that they cannot be checked, which fails the transition (fail closed).
    """

    def __init__(self, runs: Any | None,
                 artifacts: ArtifactStore | Callable[[], ArtifactStore | None] | None) -> None:
        self.runs = runs
        self._artifacts = artifacts

    @property
    def reads_runs(self) -> bool:
        """Whether a missing run is really missing (False: no data plane to look in)."""
        return self.runs is not None

    @property
    def artifacts(self) -> ArtifactStore | None:
        """The artifact store (a callable is asked each time: see `policy_gate`)."""
        a = self._artifacts
        return a() if callable(a) else a

    def run(self, run_id: str) -> RunFacts | None:
        if self.runs is None:
            return None
        try:
            r = self.runs.get_run(run_id)
        except NotFound:
            return None
        i = r.info
        attrs = {"run_id": i.run_id, "run_name": i.run_name, "status": i.status,
                 "user_id": i.user_id, "experiment_id": i.experiment_id,
                 "lifecycle_stage": i.lifecycle_stage, "start_time": i.start_time,
                 "end_time": i.end_time}
        return RunFacts(i.run_id, {k: m.last_value for k, m in r.metrics.items()},
                        dict(r.params), dict(r.tags), attrs)

    def _candidates(self, source: str, path: str) -> list[tuple[str, str]] | None:
        if self.artifacts is None or not source.startswith("runs:/"):
            return None
        try:
            run_id, base = parse_runs_uri(source)
        except InvalidArgument:
            return None
        inside = f"{base}/{path}" if base else path
        return [(run_id, inside)] + ([(run_id, path)] if base else [])

    def model_file_exists(self, source: str, path: str) -> bool | None:
        places = self._candidates(source, path)
        if places is None:
            return None
        store = self.artifacts
        assert store is not None
        return any(store.versions(r, p) for r, p in places)

    def read_model_file(self, source: str, path: str) -> bytes | None:
        places = self._candidates(source, path)
        if places is None:
            return None
        store = self.artifacts
        assert store is not None
        for r, p in places[:1]:  # MLmodel sits in the model's directory only
            if store.versions(r, p):
                return store.read_file(r, p)
        return None


def policy_gate(runs: Any | None,
                artifacts: ArtifactStore | Callable[[], ArtifactStore | None] | None
                ) -> PolicyGate:
    """The `PolicyGate` for a metadata store: policies evaluated on these stores.

    `runs` has `get_run(run_id)` (a MetricStore); `artifacts` is the ArtifactStore, or a
    callable returning it (the composition root opens it after the control plane).
    """
    return PolicyEvaluator(StoreFacts(runs, artifacts))
