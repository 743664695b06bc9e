"""Search tables are the store's schema: experiment filing, '' fallback, old layouts."""

from __future__ import annotations

import uuid

import numpy as np
from querydata import insert_points

from metricflow.entities import RunInfo
from metricflow.query._core import QueryCore
from metricflow.store._metric_store import MetricStore


def test_every_store_gets_the_search_tables(store) -> None:
    names = {r[0] for r in store.client.query(
        "SELECT name FROM system.tables WHERE database = {d:String}",
        parameters={"d": store.db}).result_rows}
    assert {"search_runs", "search_run_exp", "search_metrics", "search_params",
            "search_tags", "metric_rollup"} <= names


def test_rows_are_filed_under_the_runs_experiment(store) -> None:
    rid = uuid.uuid4().hex
    store.insert_runs([RunInfo(rid, "exp-a")], [1])
    store.insert_params([(rid, "lr", "0.5")], 1)
    insert_points(store, rid, "acc", np.arange(3), np.arange(3), np.array([1.0, 2.0, 3.0]))
    for t in ("search_metrics", "search_params"):
        got = store.client.query(
            f"SELECT experiment_id FROM {store.db}.{t} WHERE rk = "
            "reinterpretAsUInt128(reverse(unhex({r:String})))", parameters={"r": rid}
        ).result_rows
        assert got == [("exp-a",)], t
    core = QueryCore(store, None)
    assert core.search_run_ids(["exp-a"], "metrics.acc > 2 AND params.lr = '0.5'", [], 10,
                               "", "active").run_ids == [rid]
    assert core.search_run_ids(["exp-b"], "metrics.acc > 2", [], 10, "", "active").run_ids == []


def test_points_stored_before_their_run_are_still_found_once(store) -> None:
    rid = uuid.uuid4().hex
    insert_points(store, rid, "loss", np.arange(2), np.arange(2), np.array([5.0, 4.0]))
    store.insert_runs([RunInfo(rid, "exp-late")], [1])
    core = QueryCore(store, None)
    hit = core.search_run_ids(["exp-late"], "metrics.loss < 4.5", ["metrics.loss"], 10, "",
                              "active").run_ids
    assert hit == [rid]
    insert_points(store, rid, "loss", np.array([2]), np.array([2]), np.array([3.0]))
    for order in (["metrics.loss"], ["metrics.loss DESC"], [],
                  ["attributes.run_name", "metrics.loss DESC"]):
        for exps in (["exp-late"], []):
            got = core.search_run_ids(exps, "metrics.loss < 3.5", order, 1000, "",
                                      "active").run_ids
            assert got.count(rid) == 1, order  # the latest value, the run once
            got = core.search_run_ids(exps, "metrics.loss > 3.5", order, 1000, "",
                                      "active").run_ids
            assert rid not in got, order  # not the older value filed under ''
    store.insert_params([(rid, "opt", "adam")], 1)  # now filed under exp-late
    groups = core.group_by_param(["exp-late"], "", "active", "opt", "loss")
    assert [(g.param_value, g.run_count, g.mean) for g in groups] == [("adam", 1, 3.0)]


def test_keys_filed_under_no_experiment_are_listed_and_backfilled(store) -> None:
    from metricflow.query._sql import unfiled_keys

    known, early, u = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex[:8]
    client, name = store.client, store.db
    before = unfiled_keys(client, name)  # the module's store: earlier tests add some
    store.insert_runs([RunInfo(known, "exp-k")], [1])
    store.insert_params([(known, f"lr{u}", "0.1")], 1)
    insert_points(store, known, f"acc{u}", np.arange(2), np.arange(2), np.array([0.5, 0.6]))
    assert unfiled_keys(client, name) == before
    insert_points(store, early, f"loss{u}", np.arange(2), np.arange(2), np.array([1.0, 0.5]))
    store.insert_params([(early, f"opt{u}", "adam")], 1)  # the run is not known yet
    store.insert_tags([(early, f"team{u}", "a", 0)], 1)
    want = before | {("metrics", f"loss{u}"), ("params", f"opt{u}"), ("tags", f"team{u}")}
    assert unfiled_keys(client, name) == want
    # A data dir from before the table (schema version 2): created with its views, filled.
    for kind in ("metrics", "params", "tags"):
        client.command(f"DROP VIEW {name}.search_unfiled_{kind}_mv")
    client.command(f"DROP TABLE {name}.search_unfiled")
    client.command(f"TRUNCATE TABLE {name}.schema_info")
    store.ensure_schema()
    assert unfiled_keys(client, name) == want
    # The table exists but was never filled (the cluster DDL created it, or the process
    # died before the fill): the next start fills it; after that, it is not redone.
    client.command(f"TRUNCATE TABLE {name}.search_unfiled")
    client.command(f"TRUNCATE TABLE {name}.schema_info")
    assert unfiled_keys(client, name) == frozenset()
    store.ensure_schema()
    assert unfiled_keys(client, name) == want
    client.command(f"TRUNCATE TABLE {name}.search_unfiled")
    store.ensure_schema()
    assert unfiled_keys(client, name) == frozenset(), "filled again at every start"
    client.command(f"TRUNCATE TABLE {name}.schema_info")
    store.ensure_schema()  # put the module's store back
    store.insert_runs([RunInfo(early, "exp-k")], [1])
    store.insert_tags([(early, f"stage{u}", "b", 0)], 2)  # filed under exp-k: not listed
    assert unfiled_keys(client, name) == want
    core = QueryCore(store, None)
    assert core.search_run_ids(["exp-k"], f"params.opt{u} = 'adam'", [f"metrics.loss{u}"],
                               10, "", "active").run_ids == [early]

def test_params_and_tags_logged_with_their_run_create_are_filed_under_it(store) -> None:
    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
    from metricflow.ingest._applier import LogApplier
    from metricflow.query._sql import unfiled_keys

    rid, u = uuid.uuid4().hex, uuid.uuid4().hex[:8]
    create = pb.LogRecord(run_create=pb.RunInfo(run_id=rid, experiment_id="exp-g",
                                                run_name="r", lifecycle_stage="active"))
    logged = pb.LogRecord(params_tags=pb.LogBatchRequest(
        run_id=rid, params=[pb.Param(key=f"lr{u}", value="0.1")],
        tags=[pb.Tag(key=f"team{u}", value="a")]))
    assert LogApplier(store).apply([], [create, logged]) == [None, None]  # one group
    for t in ("search_params", "search_tags"):
        got = store.client.query(
            f"SELECT experiment_id FROM {store.db}.{t} WHERE rk = "
            "reinterpretAsUInt128(reverse(unhex({r:String})))", parameters={"r": rid}
        ).result_rows
        assert got == [("exp-g",)], t  # inserted before the run, they were filed under ''
    assert not {k for _, k in unfiled_keys(store.client, store.db)} & {f"lr{u}", f"team{u}"}


def test_a_cluster_database_lacking_a_newer_table_is_refused(chdb_dsn) -> None:
    import pytest

    s = MetricStore(chdb_dsn, f"q_{uuid.uuid4().hex[:10]}")
    s.ensure_schema()
    c, name = s.client, s.db
    try:
        # runs_local marks the cluster layout (deploy/clickhouse/cluster.sql).
        c.command(f"CREATE TABLE {name}.runs_local (x UInt8) ENGINE = MergeTree ORDER BY x")
        s.ensure_schema()  # every object exists: nothing to do
        for kind in ("metrics", "params", "tags"):
            c.command(f"DROP VIEW {name}.search_unfiled_{kind}_mv")
        c.command(f"DROP TABLE {name}.search_unfiled")
        with pytest.raises(RuntimeError, match=r"lacks search_unfiled.*cluster\.sql"):
            s.ensure_schema()
        assert not c.query("SELECT count() FROM system.tables WHERE database = {d:String} "
                           "AND name LIKE 'search_unfiled%'", parameters={"d": name}
                           ).result_rows[0][0], "created single-node on a cluster"
    finally:
        c.command(f"DROP DATABASE {name}")
        s.close()


def test_old_search_layout_is_rebuilt(store) -> None:
    rid = uuid.uuid4().hex
    store.insert_runs([RunInfo(rid, "exp-old")], [1])
    insert_points(store, rid, "acc", np.arange(2), np.arange(2), np.array([0.1, 0.9]))
    client, name = store.client, store.db
    for t in ("search_runs", "search_run_exp", "search_metrics", "search_params",
              "search_tags"):
        client.command(f"DROP VIEW IF EXISTS {name}.{t}_mv")
        client.command(f"DROP TABLE IF EXISTS {name}.{t}")
    client.command(f"CREATE TABLE {name}.search_metrics (key LowCardinality(String), "
                   "rk UInt128, last SimpleAggregateFunction(max, Tuple(Int64, Int64, Float64)))"
                   " ENGINE = AggregatingMergeTree ORDER BY (key, rk)")
    store.ensure_schema()
    cols = {r[0] for r in client.query(
        "SELECT name FROM system.columns WHERE database = {d:String} AND "
        "table = 'search_metrics'", parameters={"d": name}).result_rows}
    assert "experiment_id" in cols
    core = QueryCore(store, None)
    assert core.search_run_ids(["exp-old"], "metrics.acc > 0.5", [], 10, "",
                               "active").run_ids == [rid]


def test_per_run_tables_of_an_old_data_dir_get_small_compressed_blocks(store) -> None:
    client, name = store.client, store.db
    rid = uuid.uuid4().hex
    client.command(f"DROP TABLE {name}.tags")
    client.command(f"CREATE TABLE {name}.tags (run_id String, key String, value String, "
                   "deleted UInt8, version UInt64) ENGINE = ReplacingMergeTree(version) "
                   "ORDER BY (run_id, key) SETTINGS index_granularity = 256")
    store.insert_tags([(rid, "team", "a", 0)], 1)
    store.ensure_schema()
    ddl = {r[0]: r[1] for r in client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String}",
        parameters={"d": name}).result_rows}
    for t in ("runs", "params", "tags", "metric_summary"):
        assert "max_compress_block_size = 16384" in ddl[t], t
    assert store.get_tags([rid])[rid] == {"team": "a"}  # data kept


def test_a_store_reached_through_a_symlink_or_trailing_slash_inserts(chdb_dsn, tmp_path) -> None:
    # chDB takes one engine path per process, compared literally: the direct
    # insert handles must resolve the path the way the clients do.
    real = chdb_dsn[len("chdb://"):]
    link = tmp_path / "alias"
    link.symlink_to(real)
    rid = uuid.uuid4().hex
    for dsn in (f"chdb://{link}", f"chdb://{real}/"):
        s = MetricStore(dsn, f"q_{uuid.uuid4().hex[:10]}")
        s.ensure_schema()
        insert_points(s, rid, "loss", np.arange(3), np.arange(3), np.array([1.0, 2.0, 3.0]))
        assert s.count_points([rid])[0] == 3
        s.client.command(f"DROP DATABASE {s.db}")
        s.close()


def test_concurrent_arrow_inserts_from_threads_keep_their_own_data(store) -> None:
    # chDB resolves Python(data) by variable name; with one session shared by
    # threads it has read another thread's table (SERVICES.md). Each thread
    # has its own handle here: every run must hold exactly its own points.
    import threading

    from metricflow._wire import DecodedMetrics
    from metricflow.store._arrow import build_insert

    runs = [uuid.uuid4().hex for _ in range(4)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for part in range(25):
                steps = np.arange(part * 200, part * 200 + 200, dtype=np.int64)
                store.insert_metrics(build_insert([DecodedMetrics(
                    runs[i], ("loss",), np.zeros(200, np.int32), steps, steps,
                    np.full(200, float(i + 1)))]))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, r in enumerate(runs):
        assert store.count_points([r]) == (5000, 5000.0 * (i + 1))
