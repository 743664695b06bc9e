"""The two systems of compare_mlflow.py behind one small interface.

Both get the same workloads from the same generators; only the client calls
differ. MLflow is driven through its own `MlflowClient` over its REST API,
metricflow through `metricflow.Client` over gRPC.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

MLFLOW_BATCH = 1000  # MLflow's maximum number of metrics per log_batch request


def run_values(i: int) -> dict[str, float]:
    """The 5 summary metrics of search-run i (same in both systems)."""
    return {f"s{k}": ((i * 7919 + k * 104729) % 100_003) / 100_003.0 for k in range(5)}


def run_params(i: int) -> dict[str, str]:
    return {"lr": str([0.1, 0.01, 0.001, 0.0001][i % 4]), "batch": str(32 << (i % 3)),
            "opt": ["adam", "sgd"][i % 2], "layers": str(2 + i % 6), "seed": str(i)}


SEARCH_ORDER = "metrics.s0 DESC"
SEARCH_FILTER = "metrics.s1 > 0.5 AND params.opt = 'adam'"


def step_values(worker: int, step: int, keys: int) -> list[float]:
    return [((worker * 131 + k * 7 + step * 13) % 4096) / 64.0 for k in range(keys)]


# --------------------------------------------------------------------- MLflow
@dataclass
class MlflowServer:
    """A `mlflow server` subprocess with a SQLite backend on 127.0.0.1."""

    proc: subprocess.Popen
    uri: str
    workdir: str

    def stop(self) -> None:
        """Stop the server and its worker processes (its own process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_store_uris(work: str) -> tuple[str, str]:
    """(backend store URI, default artifact root) of an MLflow work directory."""
    return f"sqlite:///{work}/mlflow.db", f"file://{work}/artifacts"


def start_mlflow(workers: int | None = None, timeout_s: float = 180.0,
                 workdir: str | None = None) -> MlflowServer:
    """Start `mlflow server` (SQLite backend, local artifacts) and wait for /health.

    `workdir` may hold a store loaded beforehand (see _bulk_load.load_mlflow).
    """
    work = workdir or tempfile.mkdtemp(prefix="mlflow-bench-")
    port = _free_port()
    db_uri, artifact_root = mlflow_store_uris(work)
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", db_uri, "--default-artifact-root", artifact_root]
    if workers:
        cmd += ["--workers", str(workers)]
    log = open(os.path.join(work, "server.log"), "w")  # lives with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            # The job runner (7 Huey consumers for GenAI jobs) is off: it
                            # is not part of tracking, and its start-up imports took ~20 s
                            # of CPU on a 2-core host, which slowed MLflow's first searches
                            # 5x. Off is the faster MLflow.
                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                                 "MLFLOW_ENABLE_TELEMETRY": "false",
                                 "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited; see {work}/server.log")
        if time.monotonic() > deadline - 1:
            break
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    return MlflowServer(proc, uri, work)
        except OSError:
            time.sleep(0.5)
    MlflowServer(proc, uri, work).stop()
    raise RuntimeError(f"mlflow server did not answer /health; see {work}/server.log")


class MlflowSide:
    """Workloads against an MLflow tracking server through MlflowClient."""

    name = "mlflow"

    def __init__(self, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.c = MlflowClient(tracking_uri=uri)

    def experiment(self, name: str) -> str:
        return str(self.c.create_experiment(name))

    def load_run(self, exp: str, i: int) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run = self.c.create_run(exp, run_name=f"search-{i}")
        now = int(time.time() * 1000)
        self.c.log_batch(run.info.run_id,
                         metrics=[Metric(k, v, now, 0) for k, v in run_values(i).items()],
                         params=[Param(k, v) for k, v in run_params(i).items()],
                         tags=[RunTag("team", f"t{i % 3}")])

    def search(self, exp: str, filtered: bool) -> list[float | None]:
        """s0 of the top 100 runs (None for a run without it, as in the priming searches)."""
        runs = self.c.search_runs([exp], filter_string=SEARCH_FILTER if filtered else "",
                                  order_by=[SEARCH_ORDER], max_results=100)
        return [r.data.metrics.get("s0") for r in runs]

    def log_history(self, exp: str, n: int) -> str:
        from mlflow.entities import Metric

        run_id = self.c.create_run(exp, run_name="history").info.run_id
        for lo in range(0, n, MLFLOW_BATCH):
            self.c.log_batch(run_id, metrics=[Metric("loss", s / 64.0, 1_700_000_000_000 + s, s)
                                              for s in range(lo, min(n, lo + MLFLOW_BATCH))])
        return run_id

    def read_history(self, run_id: str) -> int:
        return len(self.c.get_metric_history(run_id, "loss"))


# ----------------------------------------------------------------- metricflow
class MetricflowSide:
    """The same workloads through metricflow.Client."""

    name = "metricflow"

    def __init__(self, uri: str) -> None:
        import metricflow as mf

        self.uri = uri
        self.c = mf.Client(uri, linger_ms=5)

    def experiment(self, name: str) -> str:
        return self.c.get_or_create_experiment(name)

    def load_run(self, exp: str, i: int) -> None:
        run_id = self.c.create_run(exp, run_name=f"search-{i}", tags={"team": f"t{i % 3}"}
                                   ).info.run_id
        self.c.log_batch(run_id, params=run_params(i))
        self.c.log_metrics(run_id, run_values(i), step=0)

    def search(self, exp: str, filtered: bool) -> list[float | None]:
        """s0 of the top 100 runs (None for a run without it, as in the priming searches)."""
        runs, _ = self.c.search_runs([exp], filter_string=SEARCH_FILTER if filtered else "",
                                     order_by=[SEARCH_ORDER], max_results=100)
        return [r.metrics["s0"].last_value if "s0" in r.metrics else None for r in runs]

    def log_history(self, exp: str, n: int) -> str:
        run_id = self.c.create_run(exp, run_name="history").info.run_id
        for s in range(n):
            self.c.log_metrics(run_id, {"loss": s / 64.0}, step=s,
                               timestamp=1_700_000_000_000 + s)
        self.c.flush()
        return run_id

    def read_history(self, run_id: str) -> int:
        return len(self.c.get_metric_history(run_id, "loss").values)

    def close(self) -> None:
        self.c.flush()
        self.c.close()


# ------------------------------------------------------- ingest worker process
def ingest_worker(system: str, uri: str, exp: str, worker: int, keys: int, seconds: float,
                  q: Any, go: Any, start_v: Any) -> None:
    """One ingest worker (a spawned process): log K keys per step until time is up.

    It imports, connects and creates its run, says ("ready",), then waits for `go`
    so that all workers start at the same wall-clock time `start_v.value`.
    Puts (acknowledged points, seconds from the start to the last acknowledgement, error).
    MLflow: a point counts once its log_batch (<= 1,000 metrics) returned.
    metricflow: points count once the final flush() returned (durable ack), and the
    stored count is read back.
    """
    try:
        fn = _ingest_mlflow if system == "mlflow" else _ingest_metricflow
        q.put(fn(uri, exp, worker, keys, seconds, lambda: _ready(q, go, start_v)))
    except Exception as e:  # the parent reports it
        q.put((0, 0.0, f"{type(e).__name__}: {e}"))


def _ready(q: Any, go: Any, start_v: Any) -> float:
    q.put(("ready",))
    go.wait(600)
    start_at = float(start_v.value)
    time.sleep(max(0.0, start_at - time.time()))
    return start_at


def _ingest_mlflow(uri: str, exp: str, worker: int, keys: int, seconds: float,
                   wait_start: Any) -> tuple[int, float, str]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    run_id = c.create_run(exp, run_name=f"ingest-{worker}").info.run_id
    names = [f"k{i}" for i in range(keys)]
    start_at = wait_start()
    end = start_at + seconds
    pending: list[Any] = []
    acked, step = 0, 0
    while time.time() < end:
        ts = int(time.time() * 1000)
        pending.extend(Metric(k, v, ts, step)
                       for k, v in zip(names, step_values(worker, step, keys)))
        step += 1
        while len(pending) >= MLFLOW_BATCH:
            c.log_batch(run_id, metrics=pending[:MLFLOW_BATCH])
            acked += MLFLOW_BATCH
            del pending[:MLFLOW_BATCH]
    if pending:
        c.log_batch(run_id, metrics=pending)
        acked += len(pending)
    return acked, time.time() - start_at, ""


def _ingest_metricflow(uri: str, exp: str, worker: int, keys: int, seconds: float,
                       wait_start: Any) -> tuple[int, float, str]:
    import metricflow as mf

    # 8 MiB bounds one run's drained batch below the server's 1,000,000-point batch
    # limit: with the default 64 MiB a single busy run can drain ~5M points into one
    # batch, which the server rejects (a client bug reported to its owner).
    c = mf.Client(uri, buffer_bytes=8 * 1024 * 1024)
    run_id = c.create_run(exp, run_name=f"ingest-{worker}").info.run_id
    names = [f"k{i}" for i in range(keys)]
    start_at = wait_start()
    end = start_at + seconds
    logged, step = 0, 0
    while time.time() < end:
        c.log_metrics(run_id, dict(zip(names, step_values(worker, step, keys))), step)
        logged += keys
        step += 1
    c.flush(timeout=300)
    elapsed = time.time() - start_at
    stored = c.count_points([run_id])[0]
    c.close()
    return stored, elapsed, "" if stored == logged else f"stored {stored} != logged {logged}"
