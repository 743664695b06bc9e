"""Versioned migrations: a database at the first revision upgrades with data intact."""

from __future__ import annotations

import sqlalchemy as sa

from metricflow.store.metadata import (
    create_metadata_engine,
    current_revision,
    head_revision,
    open_metadata_store,
    upgrade,
)
from metricflow.store.metadata._tables import metadata as latest_schema


def test_first_revision_upgrades_to_head_with_data_intact(metadata_uri: str) -> None:
    engine = create_metadata_engine(metadata_uri)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:  # data written by a 0001-era release
        conn.execute(sa.text(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
            " creation_time, last_update_time) VALUES (0, 'Default', 'file:///a/0', 'active',"
            " 1, 1), (7, 'old-exp', 'file:///a/7', 'deleted', 2, 3)"))
        conn.execute(sa.text(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (7, 'team', 'x')"))
        conn.execute(sa.text(
            "INSERT INTO audit_log (ts, actor, action, entity_type, entity_id, after_json)"
            " VALUES (2, 'ann', 'create_experiment', 'experiment', '7', '{\"name\": 1}')"))
        tables_before = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert "registered_models" not in tables_before

    store = open_metadata_store(metadata_uri)
    try:
        assert current_revision(store.engine) == head_revision()  # type: ignore[attr-defined]
        old = store.get_experiment("7")
        assert (old.name, old.lifecycle_stage, dict(old.tags)) == ("old-exp", "deleted",
                                                                  {"team": "x"})
        assert store.get_experiment("0").artifact_location == "file:///a/0"
        assert store.deleted_experiment_ids() == {"7"}
        assert [e.actor for e in store.search_audit_log(experiment_id="7")[0]] == ["ann"]
        # New ids continue after the migrated ones, and the new tables work.
        assert int(store.create_experiment("new")) > 7
        store.create_registered_model("m")
        assert store.create_model_version("m", "s3://b/m").version == "1"
    finally:
        store.close()


def test_head_schema_matches_table_definitions(store: object) -> None:
    engine = store.engine  # type: ignore[attr-defined]
    insp = sa.inspect(engine)
    for table in latest_schema.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name


def test_reopen_is_a_no_op_and_audit_log_is_append_only(metadata_uri: str) -> None:
    s1 = open_metadata_store(metadata_uri)
    s1.create_experiment("e")
    s1.close()
    s2 = open_metadata_store(metadata_uri)
    try:
        assert s2.get_experiment_by_name("e") is not None
        with s2.engine.connect() as conn:  # type: ignore[attr-defined]
            for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
                try:
                    with conn.begin():
                        conn.execute(sa.text(stmt))
                except sa.exc.DBAPIError as e:
                    assert "append-only" in str(e)
                else:
                    raise AssertionError(f"{stmt} was allowed")
    finally:
        s2.close()
