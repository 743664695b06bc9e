"""LogApplier rules that need no ClickHouse: a run is created once."""

from __future__ import annotations

from typing import Any

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow.entities.pb import run_info_from_pb
from metricflow.errors import AlreadyExists
from metricflow.ingest._applier import LogApplier

RUN = "a" * 32


class _Runs:
    """Just the run table of a MetricStore."""

    def __init__(self) -> None:
        self.runs: dict[str, Any] = {}

    def get_run_infos(self, run_ids: Any) -> dict[str, Any]:
        return {r: self.runs[r] for r in run_ids if r in self.runs}

    def insert_runs(self, infos: list[Any], versions: list[int]) -> None:
        self.runs.update((i.run_id, i) for i in infos)

    def insert_params(self, rows: Any, version: int) -> None:
        raise AssertionError("no params in these records")

    insert_tags = insert_params


def _create(experiment: str) -> pb.LogRecord:
    return pb.LogRecord(run_create=pb.RunInfo(run_id=RUN, experiment_id=experiment,
                                              run_name="r", status=pb.RunStatus.Value("RUNNING")))


def test_a_create_for_an_existing_run_is_refused_and_changes_nothing() -> None:
    store = _Runs()
    applier = LogApplier(store)  # type: ignore[arg-type]
    assert applier.apply([], [_create("victim")]) == [None]
    errors = applier.apply([], [_create("attacker")])  # e.g. via an ingest node that missed it
    assert isinstance(errors[0], AlreadyExists) and errors[0].details["field"] == "run_id"
    assert store.runs[RUN].experiment_id == "victim"
    # Two creates of one run in the same group: the first wins, the second is refused.
    store2 = _Runs()
    errs = LogApplier(store2).apply([], [_create("first"), _create("second")])  # type: ignore[arg-type]
    assert errs[0] is None and isinstance(errs[1], AlreadyExists)
    assert store2.runs[RUN].experiment_id == "first"


def test_a_replayed_create_is_a_no_op_that_keeps_later_state() -> None:
    store = _Runs()
    applier = LogApplier(store)  # type: ignore[arg-type]
    finish = pb.LogRecord(run_update=pb.UpdateRunRequest(
        run_id=RUN, status=pb.RunStatus.Value("FINISHED"), end_time=5))
    assert applier.apply([], [_create("e"), finish]) == [None, None]
    assert applier.apply([], [_create("e")]) == [None]  # the writer replays the log
    assert store.runs[RUN].status == "FINISHED" and store.runs[RUN].end_time == 5
    assert run_info_from_pb(_create("x").run_create).run_id == RUN


class _FlakyStore(_Runs):
    """Runs plus params and tags; the first params insert fails (ClickHouse hiccup)."""

    def __init__(self) -> None:
        super().__init__()
        self.params: list[Any] = []
        self.fail_params = True

    def get_params(self, run_ids: Any) -> dict[str, dict[str, str]]:
        return {r: {k: v for rid, k, v in self.params if rid == r} for r in run_ids}

    def insert_params(self, rows: Any, version: int) -> None:
        if self.fail_params:
            self.fail_params = False
            raise ConnectionError("insert failed")
        self.params.extend(rows)

    def insert_tags(self, rows: Any, version: int) -> None:
        pass


def test_a_group_applied_again_after_a_failed_insert_keeps_params_logged_before_a_delete(
) -> None:
    store = _FlakyStore()
    applier = LogApplier(store)  # type: ignore[arg-type]
    logged = pb.LogRecord(params_tags=pb.LogBatchRequest(
        run_id=RUN, params=[pb.Param(key="lr", value="0.1")]))
    delete = pb.LogRecord(run_update=pb.UpdateRunRequest(run_id=RUN, lifecycle_stage="deleted"))
    group = [_create("e"), logged, delete]
    try:
        applier.apply([], group)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the first params insert should fail")
    assert store.runs[RUN].lifecycle_stage != "deleted"  # the run is known, not yet deleted
    assert applier.apply([], group) == [None, None, None]  # the writer applies it again
    assert store.params == [(RUN, "lr", "0.1")] and store.runs[RUN].lifecycle_stage == "deleted"
