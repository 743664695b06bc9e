"""Value types of the data plane."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
LIFECYCLE_STAGES = ("active", "deleted")


@dataclass(frozen=True)
class RunInfo:
    """The current state of a run (one versioned row in `runs`)."""

    run_id: str
    experiment_id: str
    run_name: str = ""
    user_id: str = ""
    status: str = "RUNNING"
    start_time: int = 0
    end_time: int = 0
    """ms since epoch; 0 while the run has not ended."""
    parent_run_id: str = ""
    lifecycle_stage: str = "active"
    artifact_uri: str = ""

    def with_changes(self, **changes: object) -> RunInfo:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MetricSummary:
    """Latest, min and max value of one metric of one run."""

    key: str
    last_value: float
    last_step: int
    last_timestamp: int
    min_value: float
    max_value: float
    count: int | None = None
    """Points stored; None = not counted (search skips the count: it reads every point)."""


@dataclass(frozen=True)
class Run:
    info: RunInfo
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
