"""The registry on a PostgreSQL primary + synchronous standby: load, SIGKILL, promote, check.

Shared by `governance_bench.py` (failover_lost_acked, transitions_per_sec) and the
failover integration test (tests/integration/store/test_registry_failover.py).

    primary (REPLICATION_SETTINGS: synchronous_commit = remote_apply)
       |  synchronous streaming replication ("standby1")
    standby                         <- promoted after the primary is SIGKILLed
       ^
    `metricflow registry --metadata <failover_url(primary, standby)>`  (one real process)
       ^  HTTP /api/v1 (version creates, stage transitions, alias moves)
    client threads, each operation named by a unique op id

An operation is *acknowledged* when the registry answered 200. The op id travels in
the change itself (a version's description, a transition's comment, an alias's
name), so afterwards one SQL count per op id on the new primary tells whether it
was applied once, never, or more than once. Clients never retry a failed operation
(its outcome is unknown: "in doubt"); each attempt has a new id.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from metricflow.devservices import (
    REPLICATION_SETTINGS,
    PostgresServer,
    PostgresStandby,
    failover_url,
    set_sync_standbys,
    wait_for_sync_standby,
)

STANDBY = "standby1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RoleProcess:
    """One `metricflow <role>` subprocess on free ports; ports from its ready line."""

    def __init__(self, role: str, args: list[str], log: Path, *,
                 env: dict[str, str] | None = None, timeout: float = 120.0) -> None:
        self.log_path = log
        self._log = open(log, "ab")  # closed in stop()
        cmd = [sys.executable, "-m", "metricflow.server.cli", role, "--grpc-port", "0",
               "--http-port", "0", "--no-uvloop", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log,
                                     env=env or dict(os.environ), text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self._log.close()
                raise RuntimeError(f"{role} exited with {self.proc.wait()}: "
                                   f"{log.read_text()[-3000:]}")
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                self.info: dict[str, Any] = json.loads(line)
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{role} did not become ready in {timeout:.0f} s")
        self.http = f"http://127.0.0.1:{self.info['http_port']}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@contextlib.contextmanager
def replicated_postgres(*, sync: bool = True, rtt_ms: float = 0.0
                        ) -> Iterator[tuple[PostgresServer, PostgresStandby]]:
    """A primary and a streaming standby on loopback; synchronous (remote_apply) if `sync`.

    `rtt_ms` > 0: the standby streams through a relay (`_delay_proxy.py`) that delays
    each direction by rtt_ms / 2, as a standby in a far region would.
    """
    primary = PostgresServer(settings=REPLICATION_SETTINGS)
    proxy: subprocess.Popen[str] | None = None
    stream_port = None
    if rtt_ms > 0:
        stream_port = free_port()
    standby = PostgresStandby(primary, name=STANDBY, stream_port=stream_port)
    try:
        primary.start()
        if stream_port is not None:
            proxy = subprocess.Popen(
                [sys.executable, "-m", "loadtests._delay_proxy", str(stream_port),
                 str(primary.port), str(rtt_ms / 2)], stdout=subprocess.PIPE, text=True,
                cwd=str(Path(__file__).resolve().parents[1]))
            assert proxy.stdout is not None
            if proxy.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the delay relay did not start (exit {proxy.wait()})")
        standby.start()
        if sync:
            set_sync_standbys(primary, [STANDBY])
            wait_for_sync_standby(primary, STANDBY)
        yield primary, standby
    finally:
        standby.close()
        primary.close()
        if proxy is not None:
            proxy.kill()
            proxy.wait()


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/api/v1/{path}", json=body)


def seed_models(base: str, models: int, versions: int) -> list[str]:
    """Create `models` models with `versions` versions each; return their names."""
    names = [f"ha-model-{i}" for i in range(models)]
    with httpx.Client(base_url=base, timeout=60) as http:
        for name in names:
            _post(http, "registered-models/create", {"name": name}).raise_for_status()
            for v in range(versions):
                _post(http, "model-versions/create",
                      {"name": name, "source": f"runs:/{v:032x}/model"}).raise_for_status()
    return names


@dataclass
class Ledger:
    """What the clients were told, op by op (thread-safe)."""

    acked: dict[str, str] = field(default_factory=dict)
    """op id -> kind, for every operation answered 200."""
    in_doubt: dict[str, str] = field(default_factory=dict)
    """op id -> kind, for every operation that failed (applied or not: unknown)."""
    ack_times: list[float] = field(default_factory=list)
    """monotonic time of each acknowledgement, in order."""
    latencies: list[float] = field(default_factory=list)
    """Seconds each acknowledged request took."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, kind: str, ok: bool, took: float = 0.0) -> None:
        with self.lock:
            if ok:
                self.acked[op] = kind
                self.ack_times.append(time.monotonic())
                self.latencies.append(took)
            else:
                self.in_doubt[op] = kind

    @property
    def n_acked(self) -> int:
        with self.lock:
            return len(self.acked)


KINDS = ("create", "transition", "alias")
"""create: a version; transition: a stage move (archiving the stage's others); alias: a new
alias named after the op; move: the `champion` alias to another version (not countable per
op: for throughput only)."""


def client_loop(base: str, models: list[str], versions: int, client: int, ledger: Ledger,
                stop: threading.Event, *, kinds: tuple[str, ...] = KINDS,
                timeout: float = 30.0) -> None:
    """Issue operations until `stop`, each with a fresh op id; record every outcome."""
    rng = random.Random(client)
    with httpx.Client(base_url=base, timeout=timeout) as http:
        for i in itertools.count():
            if stop.is_set():
                return
            op = f"op-{client}-{i}"
            kind = kinds[i % len(kinds)]
            name = rng.choice(models)
            version = rng.randint(1, versions)
            if kind == "create":
                path, body = "model-versions/create", {
                    "name": name, "source": f"runs:/{rng.getrandbits(128):032x}/model",
                    "description": op}
            elif kind == "transition":
                path, body = "model-versions/transition-stage", {
                    "name": name, "version": str(version),
                    "stage": rng.choice(("Staging", "Production")),
                    "archive_existing_versions": True, "comment": op}
            else:
                path, body = "registered-models/alias", {
                    "name": name, "alias": "champion" if kind == "move" else op,
                    "version": str(version)}
            started = time.monotonic()
            try:
                ok = _post(http, path, body).status_code == 200
            except httpx.HTTPError:
                ok = False
            ledger.record(op, kind, ok, time.monotonic() - started)
            if not ok:
                time.sleep(0.05)  # the primary is gone: do not spin


def applied_counts(dsn: str) -> dict[str, int]:
    """op id -> how many times it is in the control plane at `dsn` (read with SQL)."""
    counts: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = list(conn.execute(
            "SELECT description, count(*) FROM model_versions WHERE description LIKE 'op-%' "
            "GROUP BY description"))
        rows += list(conn.execute(
            "SELECT comment, count(*) FROM audit_log WHERE action = "
            "'transition_model_version_stage' AND comment LIKE 'op-%' GROUP BY comment"))
        rows += list(conn.execute(
            "SELECT alias, count(*) FROM model_aliases WHERE alias LIKE 'op-%' "
            "GROUP BY alias"))
        rows += [(a, n) for a, n in conn.execute(
            "SELECT after_json::json->>'alias', count(*) FROM audit_log WHERE action = "
            "'set_registered_model_alias' AND after_json::json->>'alias' LIKE 'op-%' "
            "GROUP BY 1")]
    for op, n in rows:
        # An alias shows twice by design (the row and its audit entry): count moves.
        counts[op] = max(counts.get(op, 0), int(n))
    return counts


def models_with_bad_version_numbers(dsn: str) -> list[str]:
    """Models whose version numbers are not exactly 1..N (a duplicate or a gap)."""
    bad: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, nums in conn.execute(
                "SELECT m.name, array_agg(v.version ORDER BY v.version) FROM model_versions v "
                "JOIN registered_models m USING (model_id) GROUP BY m.name"):
            if list(nums) != list(range(1, len(nums) + 1)):
                bad.append(name)
    return bad


def dsn_of(server: PostgresServer) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname={server.database}"


@dataclass
class FailoverResult:
    """What one failover run saw (the test asserts on it; the bench reports it)."""

    acked_before_kill: int
    acked_total: int
    in_doubt: int
    in_doubt_applied: int
    lost_acked: list[str]
    applied_twice: list[str]
    bad_version_numbers: list[str]
    promote_s: float
    writes_back_s: float
    """From the SIGKILL to the first acknowledgement through the promoted standby."""
    registry_survived: bool
    """The same registry process served before and after (no restart)."""
    audit_chain: str
    """`verify_chain` on the promoted server: "ok" or the first problem it reports."""
    new_role_agrees: bool
    """A registry started afterwards on the promoted server's own URL lists the same
    versions as SQL there."""


def wait_for_acks(ledger: Ledger, n: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while ledger.n_acked < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {ledger.n_acked} of {n} operations acknowledged "
                               f"after {timeout:.0f} s")
        time.sleep(0.02)


def run_failover(workdir: Path, *, clients: int = 10, models: int = 5, versions: int = 4,
                 acks_before_kill: int = 300, acks_after: int = 150,
                 outage_s: float = 1.0) -> FailoverResult:
    """Load the registry, SIGKILL the primary, promote the standby, load again, check."""
    with replicated_postgres() as (primary, standby):
        url = failover_url([primary, standby])
        role = RoleProcess("registry", ["--metadata", url, "--auth", "off"],
                           workdir / "registry.log")
        try:
            names = seed_models(role.http, models, versions)
            ledger, stop = Ledger(), threading.Event()
            threads = [threading.Thread(target=client_loop, daemon=True,
                                        args=(role.http, names, versions, c, ledger, stop))
                       for c in range(clients)]
            for t in threads:
                t.start()
            try:
                wait_for_acks(ledger, acks_before_kill, 300, "before the kill")
                with ledger.lock:  # answered before the kill
                    before_kill = len(ledger.acked)
                    primary.stop(signal.SIGKILL)
                    killed_at = time.monotonic()
                # A window in which the primary stays dead: clients keep failing.
                time.sleep(outage_s)
                promote_s = standby.promote()
                n_at_promotion = ledger.n_acked
                wait_for_acks(ledger, n_at_promotion + acks_after, 300,
                              "after the promotion")
            finally:
                stop.set()
                for t in threads:
                    t.join(60)
            with ledger.lock:
                back = [t for t in ledger.ack_times if t > killed_at + outage_s]
                acked, in_doubt = dict(ledger.acked), dict(ledger.in_doubt)
            survived = role.alive
        finally:
            role.stop()
        counts = applied_counts(dsn_of(standby))
        bad_numbers = models_with_bad_version_numbers(dsn_of(standby))
        agrees = _new_role_agrees(standby, names, workdir)
        chain = _verify_audit_chain(standby)
    return FailoverResult(
        acked_before_kill=before_kill, acked_total=len(acked), in_doubt=len(in_doubt),
        in_doubt_applied=sum(1 for op in in_doubt if counts.get(op, 0) > 0),
        lost_acked=sorted(op for op in acked if counts.get(op, 0) == 0),
        applied_twice=sorted(op for op, n in counts.items() if n > 1),
        bad_version_numbers=bad_numbers, promote_s=promote_s,
        writes_back_s=(min(back) - killed_at) if back else float("nan"),
        registry_survived=survived, audit_chain=chain, new_role_agrees=agrees)


def _verify_audit_chain(server: PostgresServer) -> str:
    import sqlalchemy as sa

    from metricflow.store.metadata import verify_chain

    engine = sa.create_engine(server.url)
    try:
        report = verify_chain(engine)
    finally:
        engine.dispose()
    return "ok" if report.problem is None else report.problem.message


def _new_role_agrees(server: PostgresServer, names: list[str], workdir: Path) -> bool:
    """Point a fresh registry process at `server` alone; compare its answers with SQL."""
    role = RoleProcess("registry", ["--metadata", server.url, "--auth", "off"],
                       workdir / "registry-after.log")
    try:
        with httpx.Client(base_url=role.http, timeout=60) as http, \
                psycopg.connect(dsn_of(server), autocommit=True) as conn:
            for name in names:
                r = _post(http, "model-versions/search",
                          {"filter": f"name = '{name}'", "max_results": 10_000})
                r.raise_for_status()
                served = sorted(int(v["version"]) for v in r.json()["model_versions"])
                stored = [int(v) for (v,) in conn.execute(
                    "SELECT v.version FROM model_versions v JOIN registered_models m "
                    "USING (model_id) WHERE m.name = %s ORDER BY v.version", (name,))]
                if served != stored:
                    return False
        return True
    finally:
        role.stop()
