"""The audit hash chain on SQLite and PostgreSQL: every writer chains, tampering is caught.

Tampering is done as an insider with DDL rights would: the append-only triggers are
lifted, then rows are edited, deleted or renumbered directly in the database.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from metricflow.auth import AuthStore
from metricflow.errors import InvalidArgument
from metricflow.store.metadata import (
    DatasetInput,
    create_metadata_engine,
    make_anchor,
    open_metadata_store,
    upgrade,
    verify_anchor,
    verify_chain,
)
from metricflow.store.metadata._chain import GENESIS, canonical, entry_hash

KEY = b"operator-held-key-0123456789"


def _tamper(engine: sa.Engine, *statements: str) -> None:
    """Run raw SQL on audit_log with its append-only triggers lifted (an insider)."""
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if pg:
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for s in statements:
            conn.execute(sa.text(s))
        if pg:
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def _busy_store(uri: str) -> Any:
    """A store with entries from every kind of writer: experiments, registry, approvals,
    policies, lineage, users, tokens and permissions."""
    s = open_metadata_store(uri)
    eid = s.create_experiment("exp", actor="ann")
    s.rename_experiment(eid, "exp2", actor="ann")
    s.create_registered_model("m", actor="ann")
    s.create_model_version("m", "s3://b/m", run_id="r1", actor="ann")
    s.set_model_version_tag("m", 1, "k", "v", actor="ann")
    s.transition_model_version_stage("m", 1, "Staging", actor="ann")
    s.set_registered_model_alias("m", "champion", 1, actor="ann")
    s.protect_target("stage", "Production", actor="admin")
    s.grant_approver("bob", actor="admin")
    s.log_run_inputs("r1", [DatasetInput("d", "abc", context="training")], actor="ann")
    auth = AuthStore(s.engine)
    auth.create_user("zoe", actor="admin")
    auth.create_token("zoe", actor="admin")
    auth.set_model_permission("m", "zoe", "READ", actor="admin")
    return s


def test_every_writer_chains_and_the_chain_verifies(metadata_uri: str) -> None:
    s = _busy_store(metadata_uri)
    try:
        with s.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, prev_hash, entry_hash, entity_type "
                                        "FROM audit_log ORDER BY id")).all()
        kinds = {r.entity_type for r in rows}
        assert {"experiment", "model_version", "registered_model", "protected_target",
                "permission", "run", "user", "token"} <= kinds, kinds
        assert [r.id for r in rows] == list(range(1, len(rows) + 1))  # no gaps
        assert rows[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.entry_hash for a, b in zip(rows, rows[1:]))
        report = verify_chain(s.engine)
        assert report.ok and report.entries == len(rows) and report.head_id == rows[-1].id
    finally:
        s.close()


def _report(uri: str, *sql: str) -> Any:
    s = _busy_store(uri)
    try:
        assert verify_chain(s.engine).ok
        _tamper(s.engine, *sql)
        return verify_chain(s.engine)
    finally:
        s.close()


def test_an_edited_entry_is_reported(metadata_uri: str) -> None:
    r = _report(metadata_uri, "UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    assert not r.ok and r.problem.kind == "edited" and r.problem.entry_id == 3, r.problem
    assert r.entries == 3  # stops at the first problem


def test_an_edited_and_rehashed_entry_is_reported(metadata_uri: str) -> None:
    s = _busy_store(metadata_uri)
    try:
        with s.engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT ts, actor, action, entity_type, entity_id, before_json, after_json, "
                "comment, model_id, model_name, version, prev_hash FROM audit_log "
                "WHERE id = 4")).one()
        forged = list(row[:11])
        forged[1] = "mallory"
        new_hash = entry_hash(row.prev_hash, canonical(*forged))
        _tamper(s.engine, f"UPDATE audit_log SET actor = 'mallory', entry_hash = '{new_hash}' "
                "WHERE id = 4")
        r = verify_chain(s.engine)
        assert r.problem is not None and r.problem.kind == "edited"
        assert r.problem.entry_id == 4, r.problem
    finally:
        s.close()


def test_a_deleted_entry_is_reported(metadata_uri: str) -> None:
    r = _report(metadata_uri, "DELETE FROM audit_log WHERE id = 5")
    assert r.problem is not None and r.problem.kind == "deleted", r.problem
    assert r.problem.entry_id == 5 and "5..5" in r.problem.message


def test_deleting_the_first_entries_is_reported(metadata_uri: str) -> None:
    r = _report(metadata_uri, "DELETE FROM audit_log WHERE id <= 2")
    assert r.problem is not None and r.problem.kind == "deleted" and r.problem.entry_id == 1


def test_reordered_entries_are_reported(metadata_uri: str) -> None:
    r = _report(metadata_uri,
                "UPDATE audit_log SET id = -3 WHERE id = 3",
                "UPDATE audit_log SET id = 3 WHERE id = 6",
                "UPDATE audit_log SET id = 6 WHERE id = -3")
    assert r.problem is not None and r.problem.kind == "reordered", r.problem
    # The row now at 3 was written after the one still stored as 5.
    assert r.problem.entry_id == 3 and "stored as 5" in r.problem.message


def test_an_anchor_catches_a_whole_chain_rewrite_and_a_cut_tail(metadata_uri: str) -> None:
    s = _busy_store(metadata_uri)
    try:
        anchor = make_anchor(s.engine, KEY)
        assert verify_anchor(s.engine, anchor, KEY).ok
        s.create_experiment("later", actor="ann")  # growth after the anchor is fine
        assert verify_anchor(s.engine, anchor, KEY).ok
        # A forged anchor (or another key) is refused outright.
        with pytest.raises(InvalidArgument, match="signature"):
            verify_anchor(s.engine, {**anchor, "head_hash": "0" * 64}, KEY)
        with pytest.raises(InvalidArgument, match="signature"):
            verify_anchor(s.engine, anchor, b"another-key-0123456789")
        # Rewrite everything from entry 2 on, re-hashed: the chain itself verifies...
        with s.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, ts, actor, action, entity_type, entity_id, before_json, "
                "after_json, comment, model_id, model_name, version, prev_hash FROM audit_log "
                "ORDER BY id")).all()
        prev, stmts = rows[0].prev_hash, []
        for i, r in enumerate(rows):
            fields = list(r[1:12])
            if i == 1:
                fields[1] = "mallory"
            h = entry_hash(prev, canonical(*fields))
            stmts.append(f"UPDATE audit_log SET actor = '{fields[1]}', prev_hash = '{prev}', "
                         f"entry_hash = '{h}' WHERE id = {r.id}")
            prev = h
        _tamper(s.engine, *stmts)
        assert verify_chain(s.engine).ok
        # ... but not against the anchor taken before.
        r = verify_anchor(s.engine, anchor, KEY)
        assert r.problem is not None and r.problem.kind == "edited"
        assert r.problem.entry_id == anchor["head_id"]
        # Cutting the tail (the newest entries) is caught by an anchor, too.
        anchor2 = make_anchor(s.engine, KEY)
        _tamper(s.engine, f"DELETE FROM audit_log WHERE id >= {anchor2['head_id'] - 1}")
        assert verify_chain(s.engine).ok
        r2 = verify_anchor(s.engine, anchor2, KEY)
        assert r2.problem is not None and r2.problem.kind == "deleted"
    finally:
        s.close()


def test_concurrent_writers_keep_one_linear_chain(metadata_uri: str) -> None:
    stores = [open_metadata_store(metadata_uri) for _ in range(4)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            s = stores[i % len(stores)]
            for j in range(15):
                s.create_experiment(f"e{i}-{j}", actor=f"u{i}")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        r = verify_chain(stores[0].engine)
        assert r.ok, r.problem
        created = stores[0].search_audit_log(action="create_experiment",
                                             max_results=1000)[0]
        assert len([e for e in created if e.actor != "system"]) == 8 * 15  # + Default
    finally:
        for s in stores:
            s.close()


def test_upgrade_chains_the_rows_written_before_the_chain(metadata_uri: str) -> None:
    engine = create_metadata_engine(metadata_uri)
    upgrade(engine, "0004")
    with engine.begin() as conn:  # rows of an older release, with an id gap
        conn.execute(sa.text(
            "INSERT INTO audit_log (id, ts, actor, action, entity_type, entity_id, after_json)"
            " VALUES (1, 1, 'ann', 'create_experiment', 'experiment', '7', '{\"a\": 1}'),"
            " (2, 2, 'ann', 'rename_experiment', 'experiment', '7', NULL),"
            " (9, 3, 'bob', 'delete_experiment', 'experiment', '7', NULL)"))
    engine.dispose()
    s = open_metadata_store(metadata_uri)
    try:
        s.create_experiment("after", actor="carol")
        with s.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM audit_log ORDER BY id"))]
            actors = [r[0] for r in conn.execute(
                sa.text("SELECT actor FROM audit_log ORDER BY id"))]
        assert ids == list(range(1, len(ids) + 1))
        assert actors[:3] == ["ann", "ann", "bob"] and "carol" in actors
        assert verify_chain(s.engine).ok
        # The triggers are back: the log is still append-only.
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), s.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET actor = 'x' WHERE id = 1"))
    finally:
        s.close()


def test_parallel_verify_finds_the_same_first_problem(metadata_uri: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from metricflow.store.metadata import _chain, seed_audit_rows

    monkeypatch.setattr(_chain, "PARALLEL_MIN", 100)  # split even this small log
    s = open_metadata_store(metadata_uri)
    try:
        seed_audit_rows(s.engine, 400)
        ok = verify_chain(s.engine, workers=3)
        assert ok.ok and ok.entries == verify_chain(s.engine).entries
        # Ranges are (0, 133], (133, 266], (266, 400]. Problems in the last range, then
        # rows deleted across the first boundary, then in the first range: each time
        # the earliest problem is the one reported, as by a single pass.
        cases = [("DELETE FROM audit_log WHERE id = 300", 300),
                 ("DELETE FROM audit_log WHERE id IN (133, 134)", 133),
                 ("DELETE FROM audit_log WHERE id = 40", 40)]
        for sql, first in cases:
            _tamper(s.engine, sql, f"UPDATE audit_log SET actor = 'x' WHERE id = {first + 70}")
            single, parallel = verify_chain(s.engine), verify_chain(s.engine, workers=3)
            assert single.problem is not None and parallel.problem == single.problem
            assert (parallel.problem.kind, parallel.problem.entry_id) == ("deleted", first)
    finally:
        s.close()


def test_entries_written_together_chain_like_entries_written_alone(metadata_uri: str) -> None:
    """The run lifecycle's group commit (`record_audit_many`) between single appends:
    one linear chain, ids without gaps, entries in the order given."""
    s = open_metadata_store(metadata_uri)
    try:
        s.record_audit(actor="ann", action="create_run", entity_type="run", entity_id="r0",
                       after={"status": "RUNNING"})
        ids = s.record_audit_many([
            dict(actor=f"u{i}", action="end_run", entity_type="run", entity_id=f"r{i}",
                 before={"status": "RUNNING"}, after={"status": "FINISHED"})
            for i in range(1, 6)] + [dict(actor=None, action="create_run",
                                          entity_type="run", entity_id="r6")])
        last = s.record_audit(actor="ann", action="create_run", entity_type="run",
                              entity_id="r7")
        assert ids == list(range(ids[0], ids[0] + 6)) and last == ids[-1] + 1
        assert s.record_audit_many([]) == []
        report = verify_chain(s.engine)
        assert report.ok, report.problem
        runs = [e for e in s.search_audit_log(max_results=1000)[0] if e.entity_type == "run"]
        assert [e.entity_id for e in runs] == [f"r{i}" for i in range(8)]
        assert [e.actor for e in runs[1:7]] == ["u1", "u2", "u3", "u4", "u5", "unknown"]
        assert runs[1].before == {"status": "RUNNING"} and runs[1].after == {"status": "FINISHED"}
    finally:
        s.close()
