"""Registry changes emit their events once the transaction commits, never before or
for a change that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from metricflow._events import Event
from metricflow.errors import NotFound
from metricflow.store.metadata import open_metadata_store


def test_registry_events_after_commit(tmp_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    got: list[Event] = []
    store.events.subscribe(got.append)  # type: ignore[attr-defined]
    try:
        store.create_registered_model("m", actor="ann")
        store.create_model_version("m", "s3://b/m", run_id="r1", tags={"k": "v"}, actor="ann")
        store.set_registered_model_alias("m", "champion", 1, actor="bob")
        store.transition_model_version_stage("m", 1, "Production", actor="bob")
        store.delete_registered_model_alias("m", "champion")
        with pytest.raises(NotFound):
            store.delete_registered_model_alias("m", "champion")  # failed: no event
        store.create_model_version("m", "s3://b/m2", actor="ann")
        store.set_registered_model_alias("m", "b", 2, actor="bob")
        store.set_registered_model_alias("m", "a", 2, actor="bob")
        store.delete_model_version("m", 2, actor="cid")  # its aliases go: one event each
        assert store.events.flush(5)  # type: ignore[attr-defined]
    finally:
        store.close()
    assert [e.name for e in got] == [
        "registered_model.created", "model_version.created", "model_version_alias.created",
        "model_version.stage_changed", "model_version_alias.deleted",
        "model_version.created", "model_version_alias.created", "model_version_alias.created",
        "model_version_alias.deleted", "model_version_alias.deleted"]
    assert [(e.data, e.actor) for e in got[-2:]] == [
        ({"name": "m", "alias": "a", "version": "2"}, "cid"),
        ({"name": "m", "alias": "b", "version": "2"}, "cid")]
    assert {e.subject for e in got} == {"model:m"}
    mv = got[1].data
    assert (mv["name"], mv["version"], mv["source"], mv["run_id"], mv["tags"]) == (
        "m", "1", "s3://b/m", "r1", {"k": "v"})
    assert got[1].actor == "ann"
    assert got[2].data == {"name": "m", "alias": "champion", "version": "1",
                           "previous_version": None}
    assert (got[3].data["from_stage"], got[3].data["to_stage"]) == ("None", "Production")
