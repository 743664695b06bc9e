"""Bulk-load the search runs of compare_mlflow.py into each system's store, untimed.

Creating 20,000 runs one request at a time takes minutes on both systems
(MLflow: a SQLite transaction per request; metricflow: a group commit per
create_run), which would leave no time to measure the search itself. So the
runs are written straight into each system's backing store through its own
Python store layer, before its server starts, the way a restore or a migration
would; the searches are then timed through each server's client API.

Both loaders write the rows their servers write for
`create_run(run_name=f"search-{i}", tags={"team": ...})` + `log_batch(params)` +
`log_metrics(run_values(i), step=0)`, with the same names, params, tag and
metric values (`run_values`, `run_params`); only the run ids differ.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from loadtests._compare_systems import run_params, run_values

START_MS = 1_700_000_000_000
"""start_time of search run 0; run i starts i ms later (distinct, deterministic)."""


def _team(i: int) -> str:
    return f"t{i % 3}"


# --------------------------------------------------------------------- MLflow
def load_mlflow(db_uri: str, artifact_root: str, experiment: str, n: int,
                chunk: int = 5000) -> str:
    """Create `experiment` and its n search runs in MLflow's SQL store; its id.

    Uses MLflow's SqlAlchemyStore (which creates and migrates the schema) and its
    ORM tables: runs, tags (mlflow.runName, team), params, metrics and
    latest_metrics, as SqlAlchemyStore.create_run + log_batch write them.
    """
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    store = SqlAlchemyStore(db_uri, artifact_root)
    exp_id = store.create_experiment(experiment)
    location = store.get_experiment(exp_id).artifact_location.rstrip("/")
    running = RunStatus.to_string(RunStatus.RUNNING)
    source = SourceType.to_string(SourceType.UNKNOWN)
    for lo in range(0, n, chunk):
        runs, tags, params, metrics = [], [], [], []
        for i in range(lo, min(n, lo + chunk)):
            rid = uuid.uuid4().hex
            name = f"search-{i}"
            runs.append({"run_uuid": rid, "name": name, "artifact_uri":
                         f"{location}/{rid}/artifacts", "experiment_id": int(exp_id),
                         "source_type": source, "source_name": "", "entry_point_name": "",
                         "user_id": "bench", "status": running, "start_time": START_MS + i,
                         "end_time": None, "deleted_time": None, "source_version": "",
                         "lifecycle_stage": LifecycleStage.ACTIVE})
            tags += [{"run_uuid": rid, "key": "mlflow.runName", "value": name},
                     {"run_uuid": rid, "key": "team", "value": _team(i)}]
            params += [{"run_uuid": rid, "key": k, "value": v} for k, v in run_params(i).items()]
            metrics += [{"run_uuid": rid, "key": k, "value": v, "timestamp": START_MS + i,
                         "step": 0, "is_nan": False} for k, v in run_values(i).items()]
        with store.ManagedSessionMaker() as session:
            session.execute(insert(SqlRun), runs)
            session.execute(insert(SqlTag), tags)
            session.execute(insert(SqlParam), params)
            session.execute(insert(SqlMetric), metrics)
            session.execute(insert(SqlLatestMetric), metrics)
    store.engine.dispose()
    return str(exp_id)


# ----------------------------------------------------------------- metricflow
def load_metricflow(data_dir: str, experiment: str, n: int, chunk: int = 5000) -> str:
    """Create `experiment` and its n search runs in an embedded server's stores; its id.

    Run this in its own process (chDB opens one data path per process) before the
    server starts on `data_dir`. The rows go through the server's own write path
    below gRPC: the same ingest-log records TrackingCore.create_run / log_batch
    build, applied by LogApplier (the embedded writer's applier), and the metric
    points through the same Arrow insert.
    """
    import numpy as np

    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
    from metricflow._wire import DecodedMetrics
    from metricflow.app import ServerConfig
    from metricflow.entities import RunInfo
    from metricflow.entities.pb import run_info_to_pb
    from metricflow.ingest._applier import LogApplier
    from metricflow.query._core import ensure_query_schema
    from metricflow.store._metric_store import MetricStore
    from metricflow.store.metadata import open_metadata_store

    os.makedirs(data_dir, exist_ok=True)
    cfg = ServerConfig(data_dir=data_dir, grpc_port=0, http_port=0)
    meta = open_metadata_store(cfg.metadata_uri, default_artifact_root=cfg.artifact_root)
    exp_id = meta.create_experiment(experiment)
    location = meta.get_experiment(exp_id).artifact_location.rstrip("/")
    close = getattr(meta, "close", None)
    if close is not None:
        close()
    store = MetricStore(cfg.clickhouse_dsn, cfg.database)
    try:
        store.ensure_schema()
        ensure_query_schema(store)  # the search tables fill through their views
        applier = LogApplier(store)
        keys = tuple(run_values(0))
        kidx = np.arange(len(keys), dtype=np.int32)
        steps = np.zeros(len(keys), dtype=np.int64)
        for lo in range(0, n, chunk):
            records: list[Any] = []
            batches = []
            now_ns = time.time_ns()
            for i in range(lo, min(n, lo + chunk)):
                rid = uuid.uuid4().hex
                name = f"search-{i}"
                info = RunInfo(run_id=rid, experiment_id=exp_id, run_name=name,
                               user_id="bench", status="RUNNING", start_time=START_MS + i,
                               end_time=0, parent_run_id="", lifecycle_stage="active",
                               artifact_uri=f"{location}/{rid}/artifacts")
                rec = pb.LogRecord(logged_at_ns=now_ns)
                run_info_to_pb(info, rec.run_create)
                tags = {"mlflow.runName": name, "mlflow.user": "bench", "team": _team(i)}
                records += [rec, pb.LogRecord(logged_at_ns=now_ns, params_tags=pb.LogBatchRequest(
                    run_id=rid, tags=[pb.Tag(key=k, value=v) for k, v in tags.items()],
                    params=[pb.Param(key=k, value=v) for k, v in run_params(i).items()]))]
                vals = run_values(i)
                batches.append(DecodedMetrics(
                    rid, keys, kidx, steps, np.full(len(keys), START_MS + i, dtype=np.int64),
                    np.array([vals[k] for k in keys], dtype=np.float64)))
            errors = [e for e in applier.apply(batches, records) if e is not None]
            if errors:
                raise RuntimeError(f"metricflow bulk load: {len(errors)} records failed, "
                                   f"first: {errors[0]}")
    finally:
        store.close()
    return exp_id


def load_metricflow_in_child(data_dir: str, experiment: str, n: int,
                             chunk: int = 5000) -> tuple[str, float]:
    """load_metricflow in a spawned process; (experiment id, seconds)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    t = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        exp_id = pool.submit(load_metricflow, data_dir, experiment, n, chunk).result()
    return exp_id, time.perf_counter() - t
