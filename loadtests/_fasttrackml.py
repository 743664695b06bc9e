"""FastTrackML (a Go reimplementation of the MLflow tracking server) for benchmarks.

The binary is built beforehand (../shared/peers/fasttrackml/build.sh, or any
`fml` of v0.6.0) and given by path: nothing is downloaded here.

- `start_fasttrackml`: `fml server` on a SQLite file, waiting for /health.
- `load_fasttrackml`: the search runs of compare_mlflow.py written straight into
  its SQLite database, in its own schema: the database is first created and
  migrated by `fml` itself (start, stop), then the rows are inserted as its
  MLflow API writes them for create_run + log_batch (checked against rows that
  `fml` wrote through its REST API): runs (name column, row_num), params
  (value_str), tags, metrics and latest_metrics with the default context '{}'.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass

from loadtests._compare_systems import _free_port, run_params, run_values

START_MS = 1_700_000_000_000


@dataclass
class FmlServer:
    proc: subprocess.Popen
    uri: str
    workdir: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def db_path(workdir: str) -> str:
    return os.path.join(workdir, "fml.db")


def start_fasttrackml(binary: str, workdir: str, timeout_s: float = 60.0) -> FmlServer:
    """`fml server` on `workdir`/fml.db (created and migrated by fml when missing)."""
    os.makedirs(workdir, exist_ok=True)
    port = _free_port()
    cmd = [binary, "server", "--listen-address", f"127.0.0.1:{port}",
           "--database-uri", f"sqlite://{db_path(workdir)}",
           "--default-artifact-root", os.path.join(workdir, "artifacts"), "--log-level", "warn"]
    log = open(os.path.join(workdir, "server.log"), "a")  # lives with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    srv = FmlServer(proc, f"http://127.0.0.1:{port}", workdir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fml server exited; see {workdir}/server.log")
        try:
            with urllib.request.urlopen(srv.uri + "/health", timeout=2) as r:
                if r.status == 200:
                    return srv
        except OSError:
            time.sleep(0.3)
    srv.stop()
    raise RuntimeError(f"fml server did not answer /health; see {workdir}/server.log")


def load_fasttrackml(binary: str, workdir: str, experiment: str, n: int,
                     chunk: int = 20_000) -> str:
    """Create `experiment` with n search runs in fml's SQLite database; its id.

    The same names, params, tag and metric values as _bulk_load's loaders.
    """
    start_fasttrackml(binary, workdir).stop()  # fml creates and migrates its schema
    con = sqlite3.connect(db_path(workdir))
    try:
        # A bulk load: no journal and a large page cache while loading (fml's WAL
        # mode is set back at the end, so fml opens the file as it left it).
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        con.execute("PRAGMA temp_store=MEMORY")
        ns = con.execute("SELECT id FROM namespaces WHERE code = 'default'").fetchone()[0]
        now = int(time.time() * 1000)
        root = os.path.join(workdir, "artifacts")
        cur = con.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
            "last_update_time, namespace_id) VALUES (?, '', 'active', ?, ?, ?)",
            (experiment, now, now, ns))
        exp_id = int(cur.lastrowid or 0)
        con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                    (f"file://{root}/{exp_id}", exp_id))
        row = con.execute("SELECT id FROM contexts WHERE json = '{}'").fetchone()
        ctx = row[0] if row else con.execute(
            "INSERT INTO contexts (json) VALUES ('{}')").lastrowid
        base = con.execute("SELECT COALESCE(MAX(row_num) + 1, 0) FROM runs").fetchone()[0]
        for lo in range(0, n, chunk):
            runs, params, tags, metrics, latest = [], [], [], [], []
            for i in range(lo, min(n, lo + chunk)):
                rid = uuid.uuid4().hex
                ts = START_MS + i
                runs.append((rid, f"search-{i}", "UNKNOWN", "", "", "bench", "RUNNING", ts, None,
                             "", "active", f"file://{root}/{exp_id}/{rid}/artifacts", exp_id,
                             None, base + i))
                params += [(k, v, rid) for k, v in run_params(i).items()]
                tags += [("mlflow.user", "bench", rid), ("team", f"t{i % 3}", rid)]
                for k, v in run_values(i).items():
                    metrics.append((k, v, ts, rid, 0, 0, 1, ctx))
                    latest.append((k, v, ts, 0, 0, rid, 1, ctx))
            con.executemany(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id, deleted_time, row_num) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
            con.executemany("INSERT INTO params (key, value_str, run_uuid) VALUES (?,?,?)", params)
            con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
            con.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan, iter, "
                "context_id) VALUES (?,?,?,?,?,?,?,?)", metrics)
            con.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid, "
                "last_iter, context_id) VALUES (?,?,?,?,?,?,?,?)", latest)
            con.commit()
        con.execute("ANALYZE")
        con.commit()
        con.execute(f"PRAGMA journal_mode={mode}")
    finally:
        con.close()
    return str(exp_id)
