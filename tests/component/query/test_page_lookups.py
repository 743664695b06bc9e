"""QueryCore's page lookups (argMax per run/key) answer as the store's FINAL reads."""

from __future__ import annotations

import uuid

from metricflow.entities import RunInfo
from metricflow.query._core import QueryCore


def test_run_infos_and_params_match_the_store(dataset, store) -> None:
    core, runs = dataset
    # runs with several versions, written out of order; forks and resumes carry
    # the lineage columns
    a, b, parent = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    store.insert_runs([RunInfo(parent, "1", "p"), RunInfo(a, "1", "first")], [1, 1])
    store.insert_runs([RunInfo(a, "1", "third", status="FINISHED", end_time=5,
                               resume_count=2)], [3])
    store.insert_runs([RunInfo(a, "1", "second", status="FAILED")], [2])
    store.insert_runs([RunInfo(b, "2", "fork", forked_from=parent, fork_step=7,
                               parent_run_id=parent, artifact_uri="s3://x/y")], [1])
    store.insert_params([(a, "k", "v1"), (b, "k", "w")], logged_ns=100)
    store.insert_params([(a, "k", "v2"), (a, "j", "z")], logged_ns=200)  # first value wins
    ids = [*sorted(runs)[:60], a, b, parent, uuid.uuid4().hex]  # the last does not exist
    assert core._run_infos(ids) == store.get_run_infos(ids)
    assert core._params(ids) == store.get_params(ids)
    infos = core._run_infos([a, b])
    assert infos[a].run_name == "third" and infos[a].end_time == 5
    assert infos[a].resume_count == 2
    assert infos[b].forked_from == parent and infos[b].fork_step == 7
    assert core._params([a])[a] == {"j": "z", "k": "v1"}
    assert list(core._params([a])[a]) == ["j", "k"]  # key order as the store's


def test_load_runs_matches_store_reads(dataset, store) -> None:
    core, runs = dataset
    ids = sorted(runs)[::3]
    got = QueryCore(store, None).load_runs(ids)
    infos, params, tags = (store.get_run_infos(ids), store.get_params(ids),
                           store.get_tags(ids))
    assert [r.info for r in got] == [infos[r] for r in ids]
    assert [r.params for r in got] == [params[r] for r in ids]
    assert [r.tags for r in got] == [tags[r] for r in ids]
