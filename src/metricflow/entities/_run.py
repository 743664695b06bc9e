"""Value types of the data plane: a run's state, its metric summaries, a whole run.

One meaning of unset everywhere: a field that is not known or not set is None.
`end_time` is None while a run has not ended, `parent_run_id` None for a top-level
run, `MetricSummary.count` None where the points were not counted (search). The
stores and the wire keep their own encodings (0 and "" in ClickHouse and in
protobuf scalars); a RunInfo built from either turns them into None, so no
caller ever has to ask whether 0 means "unset" or "zero".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
LIFECYCLE_STAGES = ("active", "deleted")


@dataclass(frozen=True)
class RunInfo:
    """The current state of a run."""

    run_id: str
    experiment_id: str
    run_name: str = ""
    user_id: str = ""
    status: str = "RUNNING"
    start_time: int = 0
    """ms since epoch."""
    end_time: int | None = None
    """ms since epoch; None while the run has not ended (0 given here means the same)."""
    parent_run_id: str | None = None
    """None for a top-level run ("" given here means the same)."""
    lifecycle_stage: str = "active"
    artifact_uri: str = ""
    forked_from: str | None = None
    """The run this one was forked from (its history up to `fork_step` is the
    parent's, read through this pointer); None for a run that is not a fork."""
    fork_step: int | None = None
    """Last step read from `forked_from`; None when not a fork."""
    resume_count: int = 0
    """Times the run was resumed; steps logged again after a resume replace the
    earlier points (last write wins per key and step)."""

    def __post_init__(self) -> None:
        # Storage rows and protobuf scalars encode "unset" as 0 / "": normalise once here.
        if self.end_time == 0:
            object.__setattr__(self, "end_time", None)
        if self.parent_run_id == "":
            object.__setattr__(self, "parent_run_id", None)
        if not self.forked_from:
            object.__setattr__(self, "forked_from", None)
            object.__setattr__(self, "fork_step", None)

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
    """Points stored; None = not counted (`search_runs` skips the count: it would read
    every point; `get_run` counts)."""


@dataclass(frozen=True)
class Run:
    info: RunInfo
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.info.run_id
