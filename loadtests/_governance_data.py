"""Bulk data for governance_bench: a long audit chain and a large lineage graph, on PostgreSQL.

Rows are written with COPY (the chain's hashes computed here with the store's own
`canonical` / `entry_hash`, exactly as `append_audit` would), then the store's
functions are timed on them: `verify_chain` and `MetadataStore.lineage`.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

import psycopg

from metricflow.devservices import PostgresServer
from metricflow.store.metadata import open_metadata_store, verify_chain
from metricflow.store.metadata._chain import GENESIS, canonical, entry_hash


def _dsn(pg: PostgresServer) -> str:
    return f"host=127.0.0.1 port={pg.port} user=postgres dbname={pg.database}"


def cli_default_workers(uri: str) -> int:
    """The processes `metricflow audit verify` uses by default for `uri`."""
    try:
        from metricflow.governance._audit import default_workers
    except ImportError:  # a checkout before the CLI chose per backend
        return 1
    return int(default_workers(uri))


def audit_verify_seconds(entries: int, workers: int = 0) -> dict[str, Any]:
    """Write `entries` chained audit entries, then time a full `verify_chain` with
    `workers` processes (0: the CLI's default; the figure) and with one and two (for
    comparison)."""
    with PostgresServer() as pg:
        store = open_metadata_store(pg.url)  # migrations, default experiment
        try:
            with psycopg.connect(_dsn(pg), autocommit=True) as conn:
                row = conn.execute("SELECT id, entry_hash FROM audit_log ORDER BY id DESC "
                                   "LIMIT 1").fetchone()
                last_id, prev = (int(row[0]), row[1]) if row else (0, GENESIS)
                t0 = time.monotonic()
                ts0 = int(time.time() * 1000)
                with conn.cursor().copy(
                        "COPY audit_log (id, ts, actor, action, entity_type, entity_id, "
                        "before_json, after_json, comment, model_id, model_name, version, "
                        "prev_hash, entry_hash) FROM STDIN") as copy:
                    for i in range(1, entries + 1):
                        model, version = i % 500, i % 40 + 1
                        before = json.dumps({"current_stage": "Staging", "version": version,
                                             "row_version": i}, sort_keys=True)
                        after = json.dumps({"current_stage": "Production",
                                            "version": version, "row_version": i + 1,
                                            "archived_versions": []}, sort_keys=True)
                        fields = (ts0 + i, f"user{i % 97}", "transition_model_version_stage",
                                  "model_version", f"model-{model}/{version}", before, after,
                                  f"promote {i}", model + 1, f"model-{model}", version)
                        h = entry_hash(prev, canonical(*fields))
                        copy.write_row((last_id + i, *fields, prev, h))
                        prev = h
                conn.execute("ANALYZE audit_log")
                load_s = time.monotonic() - t0
            workers = workers or cli_default_workers(pg.url)
            took: dict[int, float] = {}
            for n in sorted({workers, 1, 2}, reverse=True):
                t1 = time.monotonic()
                report = verify_chain(store.engine, workers=n)
                took[n] = time.monotonic() - t1
                if not report.ok or report.entries != last_id + entries:
                    raise RuntimeError(f"verify_chain(workers={n}) did not accept the "
                                       f"bench's chain: {report}")
        finally:
            store.close()
    return {"value": took[workers], "workers": workers,
            "by_workers_s": {str(n): t for n, t in sorted(took.items())},
            "entries": last_id + entries, "load_s": load_s}


def lineage_query_ms(runs: int, versions: int, queries: int, *, models: int = 100,
                     datasets: int = 1000, seed: int = 7) -> dict[str, Any]:
    """Build a graph of `runs` runs (each with one or two dataset inputs) and `versions`
    versions (each from its own run), then time `lineage()` on random versions."""
    rng = random.Random(seed)
    with PostgresServer() as pg:
        store = open_metadata_store(pg.url)
        try:
            t0 = time.monotonic()
            ts = int(time.time() * 1000)
            with psycopg.connect(_dsn(pg), autocommit=True) as conn:
                cur = conn.cursor()
                with cur.copy("COPY datasets (dataset_id, name, digest, source_type, source, "
                              "schema, profile, created_at) FROM STDIN") as copy:
                    for d in range(1, datasets + 1):
                        copy.write_row((d, f"dataset-{d % 50}", f"{d:064x}", "s3",
                                        f"s3://bucket/data/{d}.parquet", "{}", "{}", ts))
                with cur.copy("COPY run_inputs (run_id, dataset_id, context, tags_json, ts) "
                              "FROM STDIN") as copy:
                    for r in range(runs):
                        picked = {rng.randint(1, datasets)
                                  for _ in range(1 + (r % 2))}
                        for d in sorted(picked):
                            copy.write_row((f"{r:032x}", d, "training", "{}", ts))
                per_model = -(-versions // models)
                with cur.copy("COPY registered_models (model_id, name, description, "
                              "creation_time, last_update_time, last_version, row_version) "
                              "FROM STDIN") as copy:
                    for m in range(1, models + 1):
                        copy.write_row((m, f"lineage-model-{m}", "", ts, ts, per_model, 1))
                with cur.copy("COPY model_versions (model_id, version, source, run_id, "
                              "run_link, description, status, status_message, "
                              "current_stage, user_id, creation_time, last_update_time, "
                              "row_version) FROM STDIN") as copy:
                    for i in range(versions):
                        m, v = i % models + 1, i // models + 1
                        run = rng.randrange(runs)
                        copy.write_row((m, v, f"runs:/{run:032x}/model", f"{run:032x}", "",
                                        "", "READY", "", "None", "bench", ts, ts, 1))
                conn.execute("SELECT setval(pg_get_serial_sequence('datasets', 'dataset_id'),"
                             " %s)", (datasets,))
                conn.execute("SELECT setval(pg_get_serial_sequence('registered_models', "
                             "'model_id'), %s)", (models,))
                conn.execute("ANALYZE")
                n_inputs = conn.execute("SELECT count(*) FROM run_inputs").fetchone()
                n_runs = conn.execute("SELECT count(DISTINCT run_id) FROM run_inputs"
                                      ).fetchone()
            load_s = time.monotonic() - t0
            times: list[float] = []
            digest_times: list[float] = []
            for _ in range(queries):
                i = rng.randrange(versions)
                name, v = f"lineage-model-{i % models + 1}", i // models + 1
                q0 = time.monotonic()
                graph = store.lineage(name, v)
                times.append(1000 * (time.monotonic() - q0))
                kinds = {n.kind for n in graph.nodes}
                if not {"model_version", "run", "dataset"} <= kinds:
                    raise RuntimeError(f"lineage({name}, {v}) lacks its run or dataset: "
                                       f"{sorted(kinds)}")
                digest = next(n.attrs["digest"] for n in graph.nodes if n.kind == "dataset")
                q1 = time.monotonic()
                hits = store.versions_trained_on(digest)
                digest_times.append(1000 * (time.monotonic() - q1))
                if (name, str(v)) not in {(h[0], h[1]) for h in hits}:
                    raise RuntimeError(f"versions_trained_on({digest[:12]}...) misses {name}/{v}")
        finally:
            store.close()
    return {"value": statistics.median(times), "p99_ms": max(times), "queries": queries,
            "runs": int(n_runs[0]) if n_runs else 0,
            "run_inputs": int(n_inputs[0]) if n_inputs else 0, "versions": versions,
            "versions_trained_on_p50_ms": statistics.median(digest_times), "load_s": load_s}
