"""Scenario files: TOML (or YAML) -> a validated, frozen `Scenario`.

A scenario describes the *shape* of the load, never the target: the same file
runs against an embedded server or a remote deployment (`--target`).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ScenarioError(ValueError):
    """A scenario file has an unknown field or a value out of range."""


@dataclass(frozen=True)
class Workers:
    """How simulated workers are laid out on the load-generator machine."""

    processes: int = 1
    """OS processes; each has ONE metricflow Client shared by its simulated workers."""
    per_process: int = 1
    """Simulated workers per process (asyncio tasks or threads)."""
    mode: str = "async"
    """'async' (tasks on one event loop) or 'threads'."""
    clients_per_process: int = 1
    """metricflow Clients per process; simulated worker i uses client i % N."""

    @property
    def total(self) -> int:
        return self.processes * self.per_process


@dataclass(frozen=True)
class Runs:
    """What each simulated worker logs."""

    per_worker: int = 1
    """Runs each worker logs one after the other."""
    keys: int = 10
    """Metric keys per run; every step logs all of them."""
    steps: int = 100
    """Steps per run; 0 means 'until the load phases end'."""
    rate: float = 0.0
    """Steps per second per worker; 0 means unthrottled."""
    params: int = 0
    """Params logged per run (one log_batch with the tags)."""
    tags: int = 0
    """Tags logged per run."""
    key_prefix: str = "m"
    """Metric keys are <key_prefix>0 .. <key_prefix>N-1."""


@dataclass(frozen=True)
class Artifacts:
    """Artifact uploads at the end of runs."""

    every_n_runs: int = 0
    """Upload one file after every N-th finished run of a worker; 0 disables."""
    size_bytes: int = 256 * 1024
    """Size of each uploaded file (random bytes: no dedup across uploads)."""


@dataclass(frozen=True)
class Queries:
    """Dashboard-like read load issued while ingest runs."""

    threads: int = 0
    """Query threads in the controller process; 0 disables query load."""
    search_qps: float = 0.0
    """Target searches per second (top 100 by a metric, with a filter), all threads."""
    history_qps: float = 0.0
    """Target full-history reads per second of one metric of a random run."""
    lag_probe_interval_s: float = 1.0
    """Each load process logs a marker point this often and polls until it is queryable."""


@dataclass(frozen=True)
class Phases:
    """Ramp-up, steady and soak; the test ends when all runs finish or time is up."""

    ramp_up_s: float = 0.0
    """Worker start times are spread evenly over this window."""
    steady_s: float = 30.0
    """Full load after ramp-up."""
    soak_s: float = 0.0
    """More full load after steady, reported as its own phase (leaks, compaction)."""

    @property
    def total_s(self) -> float:
        return self.ramp_up_s + self.steady_s + self.soak_s


@dataclass(frozen=True)
class ClientCfg:
    """Settings of the metricflow Client in each load process."""

    linger_ms: int = 50
    buffer_mb: int = 64
    batch_points: int = 65_536
    max_inflight: int = 0
    """Batches in flight per Client (its sender's window); 0 keeps the Client's
    default. Set on the sender directly: the Client has no parameter for it."""


@dataclass(frozen=True)
class Scenario:
    """One load test: the workload, its phases and its read load."""

    name: str
    description: str = ""
    workers: Workers = field(default_factory=Workers)
    runs: Runs = field(default_factory=Runs)
    artifacts: Artifacts = field(default_factory=Artifacts)
    queries: Queries = field(default_factory=Queries)
    phases: Phases = field(default_factory=Phases)
    client: ClientCfg = field(default_factory=ClientCfg)
    verify_timeout_s: float = 120.0
    """How long the loss check waits for acked points to become queryable."""

    def __post_init__(self) -> None:
        _check(self)

    @property
    def planned_points(self) -> int:
        """Points the scenario logs if every run completes (0 when duration-bound)."""
        r = self.runs
        return self.workers.total * r.per_worker * r.steps * r.keys if r.steps else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SECTIONS: dict[str, type] = {"workers": Workers, "runs": Runs, "artifacts": Artifacts,
                              "queries": Queries, "phases": Phases, "client": ClientCfg}


def _check(s: Scenario) -> None:
    def need(ok: bool, name: str, rule: str, got: object) -> None:
        if not ok:
            raise ScenarioError(f"{name} must be {rule}, got {got!r}")

    w, r, a, q, p, c = s.workers, s.runs, s.artifacts, s.queries, s.phases, s.client
    need(1 <= w.processes <= 256, "workers.processes", "in 1..256", w.processes)
    need(1 <= w.per_process <= 20_000, "workers.per_process", "in 1..20000", w.per_process)
    need(w.mode in ("async", "threads"), "workers.mode", "'async' or 'threads'", w.mode)
    need(w.mode == "async" or w.per_process <= 512, "workers.per_process",
         "<= 512 in threads mode (use mode='async' for more)", w.per_process)
    need(1 <= w.clients_per_process <= min(w.per_process, 64), "workers.clients_per_process",
         "in 1..min(per_process, 64)", w.clients_per_process)
    need(r.per_worker >= 1, "runs.per_worker", ">= 1", r.per_worker)
    need(1 <= r.keys <= 100_000, "runs.keys", "in 1..100000", r.keys)
    need(r.steps >= 0, "runs.steps", ">= 0", r.steps)
    need(r.rate >= 0, "runs.rate", ">= 0", r.rate)
    need(r.steps > 0 or p.total_s > 0, "runs.steps", "> 0 when phases total 0 s", r.steps)
    need(0 <= r.params <= 100 and 0 <= r.tags <= 100, "runs.params/tags", "in 0..100",
         (r.params, r.tags))
    need(a.every_n_runs >= 0 and a.size_bytes >= 0, "artifacts", "non-negative", a)
    need(q.threads >= 0 and q.search_qps >= 0 and q.history_qps >= 0, "queries",
         "non-negative", q)
    need(q.lag_probe_interval_s > 0, "queries.lag_probe_interval_s", "> 0",
         q.lag_probe_interval_s)
    need(min(p.ramp_up_s, p.steady_s, p.soak_s) >= 0, "phases", "non-negative", p)
    need(c.linger_ms >= 0 and c.buffer_mb >= 1 and c.batch_points >= 1, "client",
         "positive", c)
    need(0 <= c.max_inflight <= 1024, "client.max_inflight", "in [0, 1024]", c.max_inflight)
    need(s.verify_timeout_s > 0, "verify_timeout_s", "> 0", s.verify_timeout_s)


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ScenarioError(f"unknown field(s) in [{where}]: {sorted(unknown)}; "
                            f"known: {sorted(known)}")
    return cls(**data)


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Build a Scenario from parsed TOML/YAML, rejecting unknown fields."""
    data = dict(data)
    kwargs: dict[str, Any] = {}
    for key, cls in _SECTIONS.items():
        if key in data:
            kwargs[key] = _section(cls, dict(data.pop(key)), key)
    top = {"name", "description", "verify_timeout_s"}
    unknown = set(data) - top
    if unknown:
        raise ScenarioError(f"unknown top-level field(s): {sorted(unknown)}")
    if "name" not in data:
        raise ScenarioError("a scenario needs a name")
    return Scenario(**data, **kwargs)


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read a .toml (or .yaml/.yml, needs PyYAML) scenario and apply `a.b=value` overrides."""
    path = Path(path)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # optional

        data = yaml.safe_load(text) or {}
    else:
        data = tomllib.loads(text)
    for item in overrides or []:
        _apply_override(data, item)
    return scenario_from_dict(data)


def _apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ScenarioError(f"--set wants section.field=value, got {item!r}")
    dotted, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string
    node = data
    *parents, leaf = dotted.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def scaled(s: Scenario, time_scale: float) -> Scenario:
    """The same scenario with every phase length multiplied (quick dry runs)."""
    p = s.phases
    return replace(s, phases=Phases(p.ramp_up_s * time_scale, p.steady_s * time_scale,
                                    p.soak_s * time_scale))
