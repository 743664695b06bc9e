"""Experiment API on SQLite (the full suite also runs on PostgreSQL in integration)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from metricflow.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from metricflow.store.metadata import MetadataStore, open_metadata_store


def test_default_experiment_exists_after_open(store: MetadataStore) -> None:
    exp = store.get_experiment("0")
    assert exp.name == "Default"
    assert exp.artifact_location == "file:///data/artifacts/0"
    assert exp.lifecycle_stage == "active"


def test_create_get_and_default_location(store: MetadataStore) -> None:
    eid = store.create_experiment("exp-a", tags={"team": "a"}, actor="ann")
    assert eid == "1"
    exp = store.get_experiment(eid)
    assert exp.artifact_location == "file:///data/artifacts/1"
    assert exp.tags == {"team": "a"}
    assert store.get_experiment_by_name("exp-a") == exp
    assert store.get_experiment_by_name("nope") is None
    eid2 = store.create_experiment("exp-b", artifact_location="s3://b/x")
    assert store.get_experiment(eid2).artifact_location == "s3://b/x"


def test_duplicate_name_is_a_clear_error(store: MetadataStore) -> None:
    store.create_experiment("dup")
    with pytest.raises(AlreadyExists, match="'dup' already exists"):
        store.create_experiment("dup")


@pytest.mark.parametrize("bad", ["", "   ", "x" * 501, "a\nb"])
def test_bad_names(store: MetadataStore, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="experiment name"):
        store.create_experiment(bad)


def test_wal_and_busy_timeout(store: MetadataStore, sqlite_uri: str) -> None:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    # WAL is persistent in the file, so plain sqlite3 readers see it too.
    raw = sqlite3.connect(sqlite_uri.removeprefix("sqlite:///"))
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_second_opener_sees_same_data(store: MetadataStore, sqlite_uri: str) -> None:
    store.create_experiment("shared")
    other = open_metadata_store(sqlite_uri)
    try:
        assert other.get_experiment_by_name("shared") is not None
        assert other.get_or_create_experiment("shared").experiment_id == "1"
    finally:
        other.close()


def test_default_root_for_sqlite_is_next_to_db(tmp_path: Path) -> None:
    s = open_metadata_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert s.get_experiment("0").artifact_location == (tmp_path / "artifacts" / "0").as_uri()
    finally:
        s.close()


def test_unsupported_uris() -> None:
    with pytest.raises(InvalidArgument, match="SQLite file"):
        open_metadata_store("sqlite://")
    with pytest.raises(InvalidArgument, match="not supported"):
        open_metadata_store("mysql://x/y")


def test_delete_restore_and_deleted_ids(store: MetadataStore) -> None:
    eid = store.create_experiment("e")
    store.delete_experiment(eid)
    assert store.deleted_experiment_ids() == {eid}
    with pytest.raises(InvalidState):
        store.require_active_experiment(eid)
    with pytest.raises(InvalidState):
        store.get_or_create_experiment("e")
    with pytest.raises(InvalidState, match="Default"):
        store.delete_experiment("0")
    store.restore_experiment(eid)
    assert store.deleted_experiment_ids() == set()
    with pytest.raises(NotFound):
        store.get_experiment("999")
    with pytest.raises(InvalidArgument, match="must be an integer"):  # as MLflow: 400
        store.get_experiment("abc")
