"""Transitions, alias moves and version numbering are serialized per model, on SQLite
and on a real PostgreSQL, by writers in several OS processes.

The store locks the model's row before it reads what it changes (PostgreSQL:
SELECT ... FOR UPDATE under READ COMMITTED; SQLite: BEGIN IMMEDIATE takes the write
lock up front). So no two writers can read the same "before": the audit log of every
alias move and every archiving transition forms one chain, each step starting where
the previous one ended. A lost update would show as two steps with the same before.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from metricflow.store.metadata import MetadataStore, open_metadata_store

WORKER = str(Path(__file__).with_name("_transition_worker.py"))


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    make: Callable[[], str] = request.getfixturevalue("make_postgres_database")
    return make()


@pytest.fixture
def store(metadata_uri: str) -> Iterator[MetadataStore]:
    md = open_metadata_store(metadata_uri)
    try:
        yield md
    finally:
        md.close()


def _run_workers(uri: str, op: str, model: str, chunks: list[list[int]],
                 threads: int) -> list[str]:
    start_at = time.time() + 3.0  # each process opens its store first, then all go at once
    procs = [subprocess.Popen([sys.executable, WORKER, uri, op, model,
                               ",".join(map(str, chunk)), str(threads), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for chunk in chunks]
    out: list[str] = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.extend(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _audit(store: MetadataStore, model: str, action: str) -> list:  # type: ignore[type-arg]
    entries, token = store.search_audit_log(model_name=model, action=action,
                                            max_results=10_000)
    assert token is None
    return entries


def _alias_chain(store: MetadataStore, model: str) -> list[int]:
    """The versions the alias pointed at, move by move; fails on a forked history."""
    moves = _audit(store, model, "set_registered_model_alias")
    chain: list[int] = []
    for entry in moves:  # oldest first (audit id order = commit order per model)
        before = entry.before["version"]
        assert before == (chain[-1] if chain else None), (
            f"move {entry.id} started from {before}, but the alias was at "
            f"{chain[-1] if chain else None}: two writers read the same alias")
        chain.append(int(entry.after["version"]))
    return chain


def test_racing_alias_moves_from_4_processes_form_one_history(
        store: MetadataStore, metadata_uri: str) -> None:
    store.create_registered_model("race")
    for i in range(40):
        store.create_model_version("race", f"runs:/{i:032x}/m")
    chunks = [list(range(1 + k, 41, 4)) for k in range(4)]
    got = _run_workers(metadata_uri, "alias", "race", chunks, threads=4)
    assert sorted(int(v) for v in got) == list(range(1, 41))
    chain = _alias_chain(store, "race")
    assert sorted(chain) == list(range(1, 41))  # every writer's move is in it, once
    assert store.get_model_version_by_alias("race", "champion").version == str(chain[-1])


def test_racing_create_promote_and_alias_keep_numbers_stages_and_alias_linear(
        store: MetadataStore, metadata_uri: str) -> None:
    store.create_registered_model("mixed")
    chunks = [list(range(k * 8, k * 8 + 8)) for k in range(4)]
    got = _run_workers(metadata_uri, "mixed", "mixed", chunks, threads=4)
    # Version numbers: each writer got its own, no duplicates, no gaps.
    assert sorted(int(v) for v in got) == list(range(1, 33))
    versions, _ = store.search_model_versions("name = 'mixed'", max_results=100)
    assert sorted(int(v.version) for v in versions) == list(range(1, 33))
    stages = [v.current_stage for v in versions]
    assert stages.count("Production") == 1 and stages.count("Archived") == 31
    # Each promotion archived exactly the version the previous promotion left there.
    promotions = _audit(store, "mixed", "transition_model_version_stage")
    assert len(promotions) == 32
    previous: str | None = None
    for entry in promotions:
        archived = entry.after["archived_versions"]
        assert archived == ([] if previous is None else [previous]), (
            f"promotion of {entry.version} archived {archived}, expected {previous}")
        previous = entry.version
    prod = store.get_latest_versions("mixed", ["Production"])[0]
    assert prod.version == previous
    chain = _alias_chain(store, "mixed")
    assert sorted(chain) == list(range(1, 33))


def _hold_model_lock(uri: str, model: str, new_version: int) -> tuple[Callable[[], None],
                                                                       Callable[[], None]]:
    """Open a foreign transaction that locks `model` as the store does and moves its
    alias to `new_version`; returns (commit, rollback)."""
    url = sa.make_url(uri)
    if url.get_backend_name() == "sqlite":
        lite = sqlite3.connect(url.database or "", isolation_level=None, timeout=30)
        lite.execute("BEGIN IMMEDIATE")
        lite.execute("UPDATE model_aliases SET version = ? WHERE alias = 'champion' AND "
                     "model_id = (SELECT model_id FROM registered_models WHERE name = ?)",
                     (new_version, model))
        return (lambda: (lite.execute("COMMIT"), lite.close()) and None,
                lambda: lite.close())
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    pg = psycopg.connect(dsn)
    row = pg.execute("SELECT model_id FROM registered_models WHERE name = %s FOR UPDATE",
                     (model,)).fetchone()
    assert row is not None
    pg.execute("UPDATE model_aliases SET version = %s WHERE model_id = %s AND alias = "
               "'champion'", (new_version, row[0]))
    return (lambda: (pg.commit(), pg.close()) and None, lambda: pg.close())


def test_an_alias_move_waits_for_the_model_lock_and_then_reads_the_new_state(
        store: MetadataStore, metadata_uri: str) -> None:
    store.create_registered_model("locked")
    for i in range(3):
        store.create_model_version("locked", f"runs:/{i:032x}/m")
    store.set_registered_model_alias("locked", "champion", 1)
    commit, rollback = _hold_model_lock(metadata_uri, "locked", 2)
    done = threading.Event()
    errors: list[BaseException] = []

    def move() -> None:
        try:
            store.set_registered_model_alias("locked", "champion", 3, actor="waiter")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        done.set()

    t = threading.Thread(target=move, daemon=True)
    t.start()
    try:
        # A window in which nothing may happen: the move must wait for the lock holder.
        assert not done.wait(1.5), "the alias move did not wait for the model's lock"
    finally:
        commit()
    assert done.wait(30) and not errors, errors
    t.join(5)
    last = _audit(store, "locked", "set_registered_model_alias")[-1]
    assert last.actor == "waiter"
    # It read the alias after the lock holder committed (2), not the stale 1.
    assert last.before == {"alias": "champion", "version": 2}
    assert store.get_model_version_by_alias("locked", "champion").version == "3"
    del rollback
