"""`metricflow query --metadata-read`: a real query-role process reads the control plane
from a streaming replica and writes to the primary (Debian's PostgreSQL on loopback).

With replay paused on an asynchronous replica the role's reads are stale while its
writes succeed: that proves which server each goes to. Made synchronous
(remote_apply), every write the role acknowledged is readable through it at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from loadtests._registry_ha import RoleProcess, dsn_of
from metricflow.devservices import (
    REPLICATION_SETTINGS,
    PostgresServer,
    PostgresStandby,
    set_sync_standbys,
    wait_for_sync_standby,
)
from metricflow.store.metadata import open_metadata_store


def _wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _caught_up(primary: PostgresServer, replica: PostgresServer) -> bool:
    with psycopg.connect(dsn_of(primary), autocommit=True) as p, \
            psycopg.connect(dsn_of(replica), autocommit=True) as r:
        sent = p.execute("SELECT pg_current_wal_lsn()").fetchone()
        row = r.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                        (str(sent[0]) if sent else "0/0",)).fetchone()
    return bool(row and row[0])


@pytest.fixture
def query_role(tmp_path: Path) -> Iterator[tuple[PostgresServer, PostgresStandby, RoleProcess]]:
    primary = PostgresServer(settings=REPLICATION_SETTINGS)
    replica = PostgresStandby(primary, name="replica1")
    role = None
    try:
        primary.start()
        replica.start()
        open_metadata_store(primary.url).close()  # migrate the primary first ...
        _wait(lambda: _caught_up(primary, replica), 60, "the replica to replay the schema")
        role = RoleProcess("query", [
            "--clickhouse", f"chdb://{tmp_path / 'ch'}", "--metadata", primary.url,
            "--metadata-read", replica.url, "--auth", "off", "--no-mlflow"],
            tmp_path / "query.log")
        yield primary, replica, role
    finally:
        if role is not None:
            role.stop()
        replica.close()
        primary.close()


def test_reads_go_to_the_replica_and_writes_to_the_primary(
        query_role: tuple[PostgresServer, PostgresStandby, RoleProcess]) -> None:
    primary, replica, role = query_role
    with httpx.Client(base_url=role.http + "/api/v1", timeout=30) as http:
        assert http.post("/registered-models/create", json={"name": "rr"}).status_code == 200
        _wait(lambda: http.get("/registered-models/get", params={"name": "rr"}
                               ).status_code == 200, 30, "the model on the replica")
        with psycopg.connect(dsn_of(replica), autocommit=True) as r:
            r.execute("SELECT pg_wal_replay_pause()")
            _wait(lambda: r.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
                  == ("paused",), 30, "replay to pause")
            # The write succeeds (a read-only replica could not have taken it) ...
            made = http.post("/model-versions/create",
                             json={"name": "rr", "source": f"runs:/{'a' * 32}/model"})
            assert made.status_code == 200, made.text
            with psycopg.connect(dsn_of(primary), autocommit=True) as p:
                assert p.execute("SELECT count(*) FROM model_versions").fetchone() == (1,)
            # ... and the role's read, served by the paused replica, does not see it yet.
            stale = http.get("/model-versions/get", params={"name": "rr", "version": "1"})
            assert stale.status_code == 404, stale.text
            r.execute("SELECT pg_wal_replay_resume()")
        _wait(lambda: http.get("/model-versions/get", params={"name": "rr", "version": "1"}
                               ).status_code == 200, 30, "the version on the replica")


def test_with_a_synchronous_replica_every_acknowledged_write_reads_back_at_once(
        query_role: tuple[PostgresServer, PostgresStandby, RoleProcess]) -> None:
    primary, _replica, role = query_role
    set_sync_standbys(primary, ["replica1"])
    wait_for_sync_standby(primary, "replica1")
    with httpx.Client(base_url=role.http + "/api/v1", timeout=30) as http:
        assert http.post("/registered-models/create", json={"name": "ryw"}).status_code == 200
        for i in range(1, 31):
            made = http.post("/model-versions/create",
                             json={"name": "ryw", "source": f"runs:/{i:032x}/model"})
            assert made.status_code == 200, made.text
            assert http.post("/registered-models/alias", json={
                "name": "ryw", "alias": "champion", "version": str(i)}).status_code == 200
            got = http.get("/registered-models/alias",
                           params={"name": "ryw", "alias": "champion"})
            assert got.status_code == 200 and got.json()["model_version"]["version"] == str(i)


def test_an_unusable_replica_fails_the_start_naming_the_flag(tmp_path: Path) -> None:
    import subprocess
    import sys

    base = [sys.executable, "-m", "metricflow.server.cli", "query", "--clickhouse",
            f"chdb://{tmp_path / 'ch'}", "--metadata", f"sqlite:///{tmp_path / 'm.db'}",
            "--no-mlflow", "--grpc-port", "0", "--http-port", "0", "--metadata-read"]
    for replica, why in (("postgresql+psycopg://postgres@127.0.0.1:1/mf", "unreachable"),
                         (f"sqlite:///{tmp_path / 'missing' / 'r.db'}", "does not exist")):
        r = subprocess.run([*base, replica], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert why in last and "--metadata-read" in last, r.stderr
        assert "Traceback" not in r.stderr


def test_reads_keep_answering_from_the_replica_while_the_primary_is_down(
        query_role: tuple[PostgresServer, PostgresStandby, RoleProcess]) -> None:
    import signal

    primary, _replica, role = query_role
    set_sync_standbys(primary, ["replica1"])
    wait_for_sync_standby(primary, "replica1")
    with httpx.Client(base_url=role.http + "/api/v1", timeout=30) as http:
        assert http.post("/registered-models/create", json={"name": "up"}).status_code == 200
        made = http.post("/model-versions/create",
                         json={"name": "up", "source": f"runs:/{'b' * 32}/model"})
        assert made.status_code == 200, made.text
        primary.stop(signal.SIGKILL)
        for _ in range(5):  # served by the replica: the primary's loss does not matter
            got = http.get("/model-versions/get", params={"name": "up", "version": "1"})
            assert got.status_code == 200, got.text
        # A write fails promptly (no hang) and names no success.
        failed = http.post("/model-versions/create",
                           json={"name": "up", "source": f"runs:/{'c' * 32}/model"})
        assert failed.status_code >= 500, failed.text
    assert role.alive
