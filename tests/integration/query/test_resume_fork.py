"""Resume after preemption and fork chains, end to end on real processes.

`metricflow server` runs as a subprocess. A training process (a real subprocess)
logs a run and is SIGKILLed mid-run (preemption); a second process resumes the run
from an earlier checkpoint and logs those steps again. Every read (gRPC history,
downsampling, summaries, search, compare, tail, the MLflow REST API) must show each
step once, with the last write. Then a chain of forks is read through the same APIs
and checked against reference runs built by copying the points a fork should show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import metricflow as mf
from metricflow.errors import InvalidArgument, MetricflowError

pytestmark = pytest.mark.timeout(300)

METRICFLOW = str(Path(sys.executable).with_name("metricflow"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("resume-fork")
    log = open(tmp / "server.log", "ab")
    proc = subprocess.Popen([METRICFLOW, "server", "--data-dir", str(tmp / "data"),
                             "--grpc-port", "0", "--http-port", "0"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    ready = None
    while line := proc.stdout.readline():
        if line.startswith("{") and json.loads(line).get("event") == "ready":
            ready = json.loads(line)
            break
    assert ready is not None, f"server exited with {proc.wait()}; see {tmp / 'server.log'}"
    yield {"uri": f"grpc://127.0.0.1:{ready['grpc_port']}",
           "http": f"http://127.0.0.1:{ready['http_port']}", "tmp": tmp}
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def client(server: dict) -> Iterator[mf.Client]:
    c = mf.Client(server["uri"])
    yield c
    c.close()


def values(run: int, steps: np.ndarray) -> np.ndarray:
    """The value a process of generation `run` logs at each step (distinct per run)."""
    return np.sin(steps / 37.0) + 1000.0 * run


TRAIN = textwrap.dedent("""
    import sys, time
    import numpy as np
    import metricflow as mf
    uri, run_id, gen, first, last, hold = sys.argv[1:7]
    gen, first, last = int(gen), int(first), int(last)
    mf.set_tracking_uri(uri)
    if run_id == "new":
        run = mf.start_run(run_name="preempted")
    else:
        run = mf.start_run(run_id=run_id, resume=True)
    mf.log_params({"lr": "0.01"})
    for step in range(first, last + 1):
        mf.log_metrics({"loss": float(np.sin(step / 37.0) + 1000.0 * gen),
                        "acc": float(step)}, step=step)
    mf.flush()
    print(run.info.run_id, flush=True)
    if hold == "hold":  # the job is still training when the machine goes away
        time.sleep(600)
    mf.end_run()
""")


def train(server: dict, run_id: str, gen: int, first: int, last: int, hold: bool
          ) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-c", TRAIN, server["uri"], run_id, str(gen),
                          str(first), str(last), "hold" if hold else "end"],
                         stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    assert len(line) == 32, f"training process printed {line!r} (exit {p.poll()})"
    return p, line


def rest_history(server: dict, run_id: str, key: str) -> list[tuple[int, float]]:
    out, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": key, "max_results": 700}
        if token:
            params["page_token"] = token
        r = httpx.get(f"{server['http']}/api/2.0/mlflow/metrics/get-history", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        out += [(m["step"], m["value"]) for m in body.get("metrics", [])]
        token = body.get("next_page_token")
        if not token:
            return out


def test_resume_after_sigkill_relogged_steps_win(server: dict, client: mf.Client) -> None:
    p1, run_id = train(server, "new", 1, 0, 1999, hold=True)
    p1.send_signal(signal.SIGKILL)  # preempted at step 1999, checkpoint was at 1500
    p1.wait(30)
    info = client.get_run(run_id).info
    assert info.status == "RUNNING" and info.resume_count == 0
    p2, same = train(server, run_id, 2, 1500, 2999, hold=False)
    assert p2.wait(60) == 0 and same == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.resume_count == 1
    assert run.params == {"lr": "0.01"}

    steps = np.arange(3000)
    want = np.where(steps < 1500, values(1, steps), values(2, steps))
    h = client.get_metric_history(run_id, "loss", page_size=1000)
    np.testing.assert_array_equal(h.steps, steps)  # each step once, across pages
    np.testing.assert_array_equal(h.values, want)
    s = run.metrics["loss"]
    assert (s.count, s.last_step, s.last_value) == (3000, 2999, want[-1])
    assert (s.min_value, s.max_value) == (want.min(), want.max())
    # the replaced generation-1 values of steps 1500..1999 are gone from every read
    assert s.max_value < 2000.0 + 1.0
    for buckets in (4, 100):  # block-aligned (rollup) and narrow (raw) buckets
        ds = client.downsample_history([run_id], "loss", buckets)[0]
        assert int(ds.count.sum()) == 3000
        assert float(ds.min.min()) == want.min() and float(ds.max.max()) == want.max()
    col = client.compare_runs([run_id], ["loss"]).metrics[0]
    assert (np.frombuffer(col.min, "<f8")[0], np.frombuffer(col.max, "<f8")[0]) == (
        want.min(), want.max())
    hit, _ = client.search_runs([], f"metrics.acc = 2999 AND attributes.run_id = '{run_id}'")
    assert [r.info.run_id for r in hit] == [run_id]
    rest = rest_history(server, run_id, "loss")
    assert [st for st, _ in rest] == list(range(3000))
    assert [v for _, v in rest] == want.tolist()
    r = httpx.get(f"{server['http']}/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    loss = [m for m in r.json()["run"]["data"]["metrics"] if m["key"] == "loss"]
    assert loss == [{"key": "loss", "value": want[-1], "timestamp": loss[0]["timestamp"],
                     "step": 2999}]
    # params keep their immutability rule across a resume
    client.resume_run(run_id)
    with pytest.raises(MetricflowError):
        client.log_batch(run_id, params={"lr": "0.5"})
        client.flush()
    assert client.get_run(run_id).params == {"lr": "0.01"}
    client.set_terminated(run_id)


def copy_run(client: mf.Client, parts: list[tuple[str, int, int]], keys: list[str]) -> str:
    """A plain run holding copies of the given (run, lo, hi) step ranges' points."""
    ref = client.create_run(run_name="reference").info.run_id
    for key in keys:
        for src, lo, hi in parts:
            h = client.get_metric_history(src, key)
            keep = (h.steps >= lo) & (h.steps <= hi)
            for st, ts, v in zip(h.steps[keep], h.timestamps[keep], h.values[keep]):
                client.log_metric(ref, key, float(v), step=int(st), timestamp=int(ts))
    client.flush()
    return ref


def log_range(client: mf.Client, run_id: str, first: int, last: int, gen: int) -> None:
    for st in range(first, last + 1):
        client.log_metrics(run_id, {"loss": float(values(gen, np.array([st]))[0]),
                                    "acc": float(st * gen)}, step=st)
    client.flush()


def test_fork_chain_reads_match_copied_reference(server: dict, client: mf.Client) -> None:
    root = client.create_run(run_name="root").info.run_id
    log_range(client, root, 0, 3999, 1)
    a = client.create_run(fork_from=root, fork_step=2999).info.run_id
    log_range(client, a, 3000, 4999, 2)
    b = client.create_run(fork_from=a, fork_step=3999).info.run_id
    log_range(client, b, 4000, 4499, 3)
    c = client.create_run(fork_from=b, fork_step=1000).info.run_id  # below a's fork step
    log_range(client, c, 1001, 1200, 4)
    refs = {
        a: copy_run(client, [(root, 0, 2999), (a, 3000, 10**9)], ["loss", "acc"]),
        b: copy_run(client, [(root, 0, 2999), (a, 3000, 3999), (b, 4000, 10**9)],
                    ["loss", "acc"]),
        c: copy_run(client, [(root, 0, 1000), (c, 1001, 10**9)], ["loss", "acc"]),
    }
    for run, ref in refs.items():
        info = client.get_run(run).info
        assert info.forked_from is not None and info.fork_step is not None
        for key in ("loss", "acc"):
            got, want = client.get_metric_history(run, key, 777), client.get_metric_history(ref,
                                                                                         key)
            np.testing.assert_array_equal(got.steps, want.steps)
            np.testing.assert_array_equal(got.timestamps, want.timestamps)
            np.testing.assert_array_equal(got.values, want.values)
            assert rest_history(server, run, key) == rest_history(server, ref, key)
            gs, ws = client.get_run(run).metrics[key], client.get_run(ref).metrics[key]
            assert (gs.last_value, gs.last_step, gs.min_value, gs.max_value, gs.count) == (
                ws.last_value, ws.last_step, ws.min_value, ws.max_value, ws.count)
            for buckets, lo, hi in ((3, None, None), (50, None, None), (7, 500, 4200)):
                g = client.downsample_history([run], key, buckets, lo, hi)[0]
                w = client.downsample_history([ref], key, buckets, lo, hi)[0]
                for col in ("count", "min", "max", "last", "step_first", "step_last"):
                    np.testing.assert_array_equal(getattr(g, col), getattr(w, col))
                np.testing.assert_allclose(g.avg, w.avg, rtol=1e-9)
        tails = [t for t in client.tail_metrics([run], ["loss"], from_start=True, timeout=2.0)]
        np.testing.assert_array_equal(np.concatenate([t.points.steps for t in tails]),
                                      client.get_metric_history(ref, "loss").steps)
    # lineage is on the run and searchable
    assert (client.get_run(b).info.forked_from, client.get_run(b).info.fork_step) == (a, 3999)
    found, _ = client.search_runs([], f"tags.`metricflow.forkedFrom` = '{a}'")
    assert [r.info.run_id for r in found] == [b]
    # a search on a metric sees a fork's inherited history (d logged nothing itself)
    d = client.create_run(fork_from=a, fork_step=2000).info.run_id
    found, _ = client.search_runs([], "metrics.acc = 2000 AND tags.`metricflow.forkedFrom` = "
                                  f"'{a}'")
    assert [r.info.run_id for r in found] == [d]
    found, _ = client.search_runs([], f"metrics.acc = 4800 AND attributes.run_id = '{c}'")
    assert [r.info.run_id for r in found] == [c]
    # fork_step: an int with room for a step after it, named when it is not
    for wrong in (2**63 - 1, 2**63, -1, "3", True):
        with pytest.raises(InvalidArgument, match="fork_step"):
            client.create_run(fork_from=root, fork_step=wrong)  # type: ignore[arg-type]
    # a fork's own steps come after its fork step
    bad = client.create_run(fork_from=root, fork_step=100).info.run_id
    r = httpx.post(f"{server['http']}/api/2.0/mlflow/runs/log-metric",
                   json={"run_id": bad, "key": "loss", "value": 1.0, "step": 100,
                         "timestamp": int(time.time() * 1000)})
    assert r.status_code == 400 and "greater than 100" in r.text
    # deleting a parent with forks is safe (soft delete): the forks read on
    client.delete_run(a)
    np.testing.assert_array_equal(client.get_metric_history(b, "loss").values,
                                  client.get_metric_history(refs[b], "loss").values)
    with pytest.raises(MetricflowError, match="deleted"):
        client.create_run(fork_from=a, fork_step=10)


def eventually(read: Callable[[], Any], want: Any) -> Any:
    """`read()` once it gives `want` (the embedded server applies points after it
    acknowledges them), or what it gives after 30 s."""
    deadline = time.monotonic() + 30
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def test_a_kept_fork_chart_follows_its_parents_points(server: dict, client: mf.Client) -> None:
    """The embedded server keeps a chart's answer until a write to a run it read
    (query/_sql.kept_run_answer). A fork's chart reads its parent's points up to the fork
    step, so a point the parent logs there later must show in the fork's chart."""
    root = client.create_run(run_name="kept-root").info.run_id
    log_range(client, root, 0, 99, 1)
    fork = client.create_run(fork_from=root, fork_step=99).info.run_id
    log_range(client, fork, 100, 149, 2)
    other = client.create_run(run_name="kept-other").info.run_id

    def count() -> int:
        r = httpx.post(f"{server['http']}/api/v1/metrics/downsample", json={
            "run_ids": [fork], "key": "loss", "buckets": 10, "ends": False})
        assert r.status_code == 200, r.text
        return int(sum(r.json()["series"][0]["count"]))

    assert eventually(count, 150) == 150
    client.log_metrics(other, {"loss": 1.0}, step=0)  # another run: the answer stays
    client.flush()
    assert count() == 150
    client.log_metrics(root, {"loss": 5.0}, step=50)  # the parent, below the fork step
    client.flush()
    assert eventually(count, 151) == 151
    client.log_metrics(root, {"loss": 5.0}, step=120)  # past it: not the fork's
    client.log_metrics(fork, {"loss": 5.0}, step=150)
    client.flush()
    assert eventually(count, 152) == 152


def test_a_kept_run_lookup_of_a_fork_follows_its_resumed_parent(server: dict,
                                                                 client: mf.Client) -> None:
    """A run page's lookup (a search pinned to the run's id) is kept until a write to a
    run it read. The summaries of a fork of a resumed run are computed from the parent's
    points, so a point the parent logs below the fork step must show in them."""
    root = client.create_run(run_name="kept-resumed-root").info.run_id
    for st in range(100):
        client.log_metrics(root, {"loss": 1.0}, step=st)
    client.flush()
    client.resume_run(root)
    fork = client.create_run(fork_from=root, fork_step=99).info.run_id
    client.flush()

    def lowest() -> Any:
        r = httpx.post(f"{server['http']}/api/v1/runs/search", json={
            "filter": f"attributes.run_id = '{fork}'", "view_type": "all", "max_results": 1})
        assert r.status_code == 200, r.text
        runs = r.json()["runs"]
        return runs[0]["metrics"].get("loss", {}).get("min_value") if runs else None

    assert eventually(lowest, 1.0) == 1.0
    assert lowest() == 1.0  # (kept)
    client.log_metrics(root, {"loss": -5.0}, step=50)  # the parent, below the fork step
    client.flush()
    assert eventually(lowest, -5.0) == -5.0
