"""One load process: a few Clients shared by many simulated workers.

A *simulated worker* is a loop (an asyncio task or a thread) that behaves like
one training process: it creates runs one after another, logs params and tags,
logs every key at each step at its own rate, optionally uploads an artifact,
and ends the run. The simulated workers of a process share
`workers.clients_per_process` metricflow Clients (default one: one sender
thread, one gRPC stream), so thousands of simulated workers do not mean
thousands of connections; see docs/loadtesting.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadtests.loadtest._ackprobe import AckProbe
from loadtests.loadtest._hist import LatencyHist
from loadtests.loadtest._scenario import Scenario, scenario_from_dict

MARKER_KEY = "loadtest.marker"


@dataclass(frozen=True)
class ProcArgs:
    """What the controller hands to one load process."""

    index: int
    target: str
    scenario: dict[str, Any]
    experiment_id: str


def error_key(op: str, e: BaseException) -> str:
    """'op:Type[code]': the key of the errors-by-type table."""
    code = getattr(e, "code", None)
    code = getattr(code, "value", code)  # ErrorCode enums print as their value
    return f"{op}:{type(e).__name__}" + (f"[{code}]" if isinstance(code, str) else "")


class _Proc:
    """State of one load process, shared by its simulated workers and helper threads."""

    def __init__(self, a: ProcArgs, q: Any, stop: Any) -> None:
        import metricflow as mf  # spawned process

        self.a, self.q, self.stop_evt = a, q, stop
        self.s: Scenario = scenario_from_dict(a.scenario)
        c = self.s.client
        self.clients = [mf.Client(a.target, linger_ms=c.linger_ms,
                                  buffer_bytes=c.buffer_mb * 1024 * 1024,
                                  batch_points=c.batch_points, block_timeout_s=120.0)
                        for _ in range(self.s.workers.clients_per_process)]
        if c.max_inflight:
            for cl in self.clients:
                cl._sender.max_inflight = c.max_inflight
        self.client = self.clients[0]  # also carries the lag probe
        self.ack_hist = LatencyHist()
        self.probes = [AckProbe(self.ack_hist) for _ in self.clients]
        self.probe = self.probes[0]
        for probe, client in zip(self.probes, self.clients):
            probe.install(client)
        self.art_hist = LatencyHist()
        self.lock = threading.Lock()
        self.runs: dict[str, list[float]] = {}  # run_id -> [points, checksum]
        self.errors: Counter[str] = Counter()
        self.logged = self.behind = self.steps = 0
        self.runs_started = self.runs_done = self.art_n = self.art_bytes = 0
        self.lag: list[tuple[float, float]] = []
        self.lag_timeouts = 0
        self.stopping = False
        self.t0 = self.deadline = float("inf")
        self.keys = [f"{self.s.runs.key_prefix}{i}" for i in range(self.s.runs.keys)]
        self.tmp = tempfile.mkdtemp(prefix="mf-loadtest-art-")

    def set_t0(self, t0: float) -> None:
        """Phase 1 (ramp-up) starts at wall-clock t0 in every process."""
        total = self.s.phases.total_s
        self.t0 = t0
        self.deadline = t0 + total if total > 0 else float("inf")

    def error(self, op: str, e: BaseException) -> None:
        with self.lock:
            self.errors[error_key(op, e)] += 1

    # ----------------------------------------------------------- one run
    def client_of(self, gidx: int) -> Any:
        return self.clients[gidx % len(self.clients)]

    def begin_run(self, gidx: int, r: int) -> tuple[str, np.ndarray] | None:
        s = self.s.runs
        client = self.client_of(gidx)
        try:
            run = client.create_run(self.a.experiment_id, run_name=f"w{gidx}-r{r}")
            if s.params or s.tags:
                client.log_batch(
                    run.info.run_id,
                    params={f"p{i}": (gidx * 31 + r * 7 + i) % 10 for i in range(s.params)},
                    tags={f"t{i}": f"v{(gidx + i) % 5}" for i in range(s.tags)})
        except Exception as e:  # counted by type, the test goes on
            self.error("create_run", e)
            return None
        rid = run.info.run_id
        with self.lock:
            self.runs[rid] = [0, 0.0]
            self.runs_started += 1
        # Values are multiples of 1/64 below 64, so float64 sums are exact in any order
        # and the checksum compare can be exact equality.
        base = (np.arange(s.keys, dtype=np.int64) * 7 + gidx * 131 + r * 17) % 4096
        return rid, base

    def log_step(self, client: Any, rid: str, base: np.ndarray, step: int) -> None:
        vals = ((base + step * 13) % 4096) / 64.0
        try:
            client.log_metrics(rid, dict(zip(self.keys, vals.tolist())), step)
        except Exception as e:
            self.error("log_metrics", e)
            return
        with self.lock:
            rec = self.runs[rid]
            rec[0] += len(vals)
            rec[1] += float(vals.sum())
            self.logged += len(vals)
            self.steps += 1

    def end_run(self, client: Any, rid: str, finished_runs: int) -> None:
        # update_run, not set_terminated: set_terminated flushes the whole shared Client,
        # which would make each simulated worker wait for every other one's points.
        try:
            client.update_run(rid, status="FINISHED", end_time=int(time.time() * 1000))
        except Exception as e:
            self.error("end_run", e)
        a = self.s.artifacts
        if a.every_n_runs and finished_runs % a.every_n_runs == 0:
            path = os.path.join(self.tmp, f"{rid}.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(a.size_bytes))
            t = time.perf_counter()
            try:
                client.log_artifact(rid, path, "loadtest")
                self.art_hist.record((time.perf_counter() - t) * 1000)
                with self.lock:
                    self.art_n += 1
                    self.art_bytes += a.size_bytes
            except Exception as e:
                self.error("log_artifact", e)
            finally:
                os.unlink(path)
        with self.lock:
            self.runs_done += 1

    def start_time(self, gidx: int) -> float:
        total = self.s.workers.total
        return self.t0 + self.s.phases.ramp_up_s * gidx / max(total, 1)

    def more_steps(self, step: int) -> bool:
        n = self.s.runs.steps
        return (n == 0 or step < n) and not self.stopping and time.time() < self.deadline

    # ----------------------------------------------------- helper threads
    def lag_probe(self) -> None:
        """Log a marker point, poll until it is counted; the lag is log call -> queryable."""
        try:
            rid = self.client.create_run(self.a.experiment_id,
                                         run_name=f"loadtest-probe-{self.a.index}").info.run_id
        except Exception as e:
            self.error("lag_probe", e)
            return
        with self.lock:
            self.runs[rid] = [0, 0.0]
        interval = self.s.queries.lag_probe_interval_s
        k = 0
        while not self.stopping:
            k += 1
            t0 = time.time()
            try:
                self.client.log_metrics(rid, {MARKER_KEY: float(k)}, k)
            except Exception as e:
                self.error("lag_probe", e)
                break
            with self.lock:
                self.runs[rid][0] += 1
                self.runs[rid][1] += float(k)
                self.logged += 1
            seen, wait = False, 0.005
            while time.time() - t0 < 60.0:
                try:
                    seen = self.client.count_points([rid])[0] >= k
                except Exception as e:
                    self.error("lag_probe", e)
                if seen:
                    break
                time.sleep(wait)
                wait = min(wait * 1.5, 0.05)
            with self.lock:
                if seen:
                    self.lag.append((t0, (time.time() - t0) * 1000.0))
                else:
                    self.lag_timeouts += 1
            time.sleep(max(0.0, t0 + interval - time.time()))

    def tick(self, kind: str = "tick") -> None:
        ack, ack_max = self.ack_hist.take()
        art, art_max = self.art_hist.take()
        if all(p.installed for p in self.probes):
            acked = sum(p.acked_points for p in self.probes)  # exact after the final flush
        else:
            acked = sum(c._sender.acked_points for c in self.clients)
        with self.lock:
            lag, self.lag = self.lag, []
            msg = {"kind": kind, "proc": self.a.index, "t": time.time(),
                   "logged": self.logged, "acked": acked,
                   "steps": self.steps, "behind": self.behind,
                   "runs_started": self.runs_started, "runs_done": self.runs_done,
                   "ack": ack, "ack_max": ack_max, "art": art, "art_max": art_max,
                   "art_n": self.art_n, "art_bytes": self.art_bytes, "lag": lag,
                   "lag_timeouts": self.lag_timeouts, "errors": dict(self.errors),
                   "rejected": sum(p.rejected_points for p in self.probes),
                   "ack_method": self.probe.method if self.probe.installed else None}
        self.q.put(msg)

    def ticker(self, done: threading.Event) -> None:
        while not done.wait(0.5):
            if self.stop_evt.is_set():
                self.stopping = True
            self.tick()


# ---------------------------------------------------------------- drivers
async def _sim_async(p: _Proc, gidx: int, pool: ThreadPoolExecutor) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, p.start_time(gidx) - time.time()))
    rate = p.s.runs.rate
    period = 1.0 / rate if rate else 0.0
    for r in range(p.s.runs.per_worker):
        if p.stopping or time.time() >= p.deadline:
            return
        begun = await loop.run_in_executor(pool, p.begin_run, gidx, r)
        if begun is None:
            continue
        rid, base = begun
        client = p.client_of(gidx)
        step, next_t = 0, time.time()
        while p.more_steps(step):
            if period:
                now = time.time()
                if next_t > now:
                    await asyncio.sleep(next_t - now)
                elif now - next_t > period:
                    p.behind += 1  # the generator could not keep this worker's rate
                next_t += period
            elif step % 32 == 0:
                await asyncio.sleep(0)
            p.log_step(client, rid, base, step)
            step += 1
        await loop.run_in_executor(pool, p.end_run, client, rid, r + 1)


def _sim_thread(p: _Proc, gidx: int) -> None:
    time.sleep(max(0.0, p.start_time(gidx) - time.time()))
    rate = p.s.runs.rate
    period = 1.0 / rate if rate else 0.0
    for r in range(p.s.runs.per_worker):
        if p.stopping or time.time() >= p.deadline:
            return
        begun = p.begin_run(gidx, r)
        if begun is None:
            continue
        rid, base = begun
        client = p.client_of(gidx)
        step, next_t = 0, time.time()
        while p.more_steps(step):
            if period:
                now = time.time()
                if next_t > now:
                    time.sleep(next_t - now)
                elif now - next_t > period:
                    p.behind += 1
                next_t += period
            p.log_step(client, rid, base, step)
            step += 1
        p.end_run(client, rid, r + 1)


def _drive(p: _Proc) -> None:
    w = p.s.workers
    first = p.a.index * w.per_process
    if w.mode == "threads":
        threads = [threading.Thread(target=_sim_thread, args=(p, first + i), daemon=True)
                   for i in range(w.per_process)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=min(32, w.per_process)) as pool:
            await asyncio.gather(*(_sim_async(p, first + i, pool)
                                   for i in range(w.per_process)))

    asyncio.run(main())


def process_main(a: ProcArgs, q: Any, stop: Any, go: Any, t0: Any) -> None:
    """Entry point of a spawned load process: drive, flush, report the run table.

    It says 'ready' once its Client exists, then waits for the controller's `go`
    so that every process starts its phase clock at the same wall-clock t0.
    """
    try:
        p = _Proc(a, q, stop)
    except Exception as e:  # reported to the controller
        q.put({"kind": "fatal", "proc": a.index, "error": error_key("startup", e)})
        return
    try:
        q.put({"kind": "ready", "proc": a.index})
        if not go.wait(600):
            return
        p.set_t0(t0.value)
        done = threading.Event()
        ticker = threading.Thread(target=p.ticker, args=(done,), daemon=True)
        prober = threading.Thread(target=p.lag_probe, daemon=True)
        ticker.start()
        prober.start()
        try:
            _drive(p)
        except Exception as e:
            p.error("driver", e)
        p.stopping = True
        prober.join(70)
        t = time.time()
        flushed = True
        for c in p.clients:
            try:
                c.flush(timeout=p.s.verify_timeout_s)
            except Exception as e:
                p.error("flush", e)
                flushed = False
        done.set()
        ticker.join()
        p.tick("final")
        q.put({"kind": "runs", "proc": a.index, "flush_s": time.time() - t,
               "dropped": sum(c.dropped_points for c in p.clients),
               "peak_buffer_bytes": max(c._acc.peak_used_bytes for c in p.clients),
               "runs": {k: (int(v[0]), v[1]) for k, v in p.runs.items()}})
        for c in p.clients:
            # Points that could not be flushed are already counted as sent: the loss
            # check will report them; do not wait for them a second time.
            c.close(timeout=60.0 if flushed else 1.0)
    finally:
        shutil.rmtree(p.tmp, ignore_errors=True)  # the artifacts it wrote to log
