"""`metricflow gc`: sweep artifact chunks that no live run references.

A run is live unless it was deleted (a deleted experiment can be restored, so
its runs stay live); MLflow 3 logged models are always kept. Embedded: run it
while the server is stopped, because one process owns the chDB data directory.
Distributed: run it any time against the ClickHouse server and the S3 store.
"""

from __future__ import annotations

import argparse
import json

from metricflow import _env
from metricflow.app import ServerConfig


def live_run_ids(store: object) -> set[str]:
    """Ids of every run that is not deleted."""
    res = store.client.query(  # type: ignore[attr-defined]
        f"SELECT run_id FROM {store.db}.runs FINAL "  # type: ignore[attr-defined]
        "WHERE lifecycle_stage != 'deleted'")
    return {r[0] for r in res.result_rows}


def live_owner_ids(store: object, artifacts: object) -> set[str]:
    """Every artifact owner GC must keep: live runs, and MLflow 3 logged models
    (`m-<hex>` owners created by `mlflow.<flavor>.log_model`)."""
    from metricflow.mlflow_compat import live_logged_model_ids

    return live_run_ids(store) | live_logged_model_ids(artifacts.blobs)  # type: ignore[attr-defined]


def _gc(args: argparse.Namespace) -> int:
    from metricflow.app import DATA, backend_key, open_blobs, open_metric_store
    from metricflow.artifacts import ArtifactStore, collect_garbage

    # The embedded server's stores unless --clickhouse / --artifacts name others.
    cfg = ServerConfig(data_dir=args.data_dir, clickhouse_dsn=args.clickhouse or "",
                       database=args.database, artifact_root=args.artifacts or "")
    store = open_metric_store(cfg.clickhouse_dsn, cfg.database)
    # Opening the embedded chDB directory fails while a server owns it, so here no
    # upload can be committing concurrently and the commit fence can be skipped.
    offline = backend_key(DATA, cfg.clickhouse_dsn) == "chdb" and not args.artifacts
    if offline:
        store.get_run_infos(["0" * 32])  # takes the data-dir lock or fails now
    artifacts = ArtifactStore(open_blobs(cfg.artifact_root))
    try:
        report = collect_garbage(artifacts, lambda: live_owner_ids(store, artifacts),
                                 grace_period_s=args.grace_period_hours * 3600.0,
                                 dry_run=args.dry_run,
                                 commit_fence_s=0.0 if offline else None)
    finally:
        artifacts.close()
        store.close()
    print(json.dumps({k: v for k, v in vars(report).items()
                      if isinstance(v, int | float | str | bool)}))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # argparse API
    g = sub.add_parser("gc", help="delete artifact chunks no live run references")
    g.add_argument("--data-dir", default=_env.DATA_DIR.get())
    g.add_argument("--clickhouse", default=_env.CLICKHOUSE_DSN.get() or None,
                   help="data plane DSN (env METRICFLOW_CLICKHOUSE_DSN; default: the data "
                   "dir's chDB)")
    g.add_argument("--database", default=ServerConfig.database)
    g.add_argument("--artifacts", default=_env.ARTIFACT_ROOT.get() or None,
                   help="artifact store URI (env METRICFLOW_ARTIFACT_ROOT; default: the data "
                   "dir's files)")
    g.add_argument("--grace-period-hours", type=float, default=24.0,
                   help="never delete chunks or manifests younger than this")
    g.add_argument("--dry-run", action="store_true", help="report without deleting")
    g.set_defaults(func=_gc)
