"""Experiments on SQLite and PostgreSQL (same suite on both)."""

from __future__ import annotations

import pytest

from metricflow.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from metricflow.store.metadata import MetadataStore


def test_default_and_create(store: MetadataStore) -> None:
    assert store.get_experiment("0").name == "Default"
    eid = store.create_experiment("a", tags={"team": "x"}, actor="ann")
    assert eid == "1"
    exp = store.get_experiment(eid)
    assert exp.artifact_location == "s3://bucket/mlruns/1"
    assert exp.tags == {"team": "x"}
    assert exp.creation_time == exp.last_update_time > 0


def test_duplicate_name_including_deleted(store: MetadataStore) -> None:
    eid = store.create_experiment("dup")
    with pytest.raises(AlreadyExists, match="'dup' already exists"):
        store.create_experiment("dup")
    store.delete_experiment(eid)
    # The hint is the same whether or not the holder is deleted: the caller may not be
    # allowed to see that experiment (docs/security.md, existence oracles).
    with pytest.raises(AlreadyExists, match="restore it or choose another name"):
        store.create_experiment("dup")


def test_get_or_create_is_idempotent(store: MetadataStore) -> None:
    a = store.get_or_create_experiment("g")
    assert store.get_or_create_experiment("g") == a


def test_search_filter_order_paging(store: MetadataStore) -> None:
    for i in range(5):
        store.create_experiment(f"exp-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    got, _ = store.search_experiments("tags.parity = 'even'", order_by=["name DESC"])
    assert [e.name for e in got] == ["exp-4", "exp-2", "exp-0"]
    got, _ = store.search_experiments("name LIKE 'exp-%' AND tags.parity != 'even'")
    assert [e.name for e in got] == ["exp-1", "exp-3"]
    got, _ = store.search_experiments("name ILIKE 'EXP-1%'")
    assert [e.name for e in got] == ["exp-1"]
    got, _ = store.search_experiments("name IN ('exp-1', 'Default')")
    assert {e.name for e in got} == {"exp-1", "Default"}
    pages, token = [], None
    while True:
        page, token = store.search_experiments(max_results=2, page_token=token)
        pages.append([e.name for e in page])
        if token is None:
            break
    assert [n for p in pages for n in p] == ["Default"] + [f"exp-{i}" for i in range(5)]
    assert len(pages) == 3


@pytest.mark.parametrize("bad", ["name = ", "name ~ 'x'", "params.x = '1'", "nope = 'x'",
                                 "name = 'a' OR name = 'b'", "experiment_id LIKE '1'"])
def test_bad_filters(store: MetadataStore, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="filter"):
        store.search_experiments(bad)


def test_bad_search_arguments(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="view_type"):
        store.search_experiments(view_type="sometimes")
    with pytest.raises(InvalidArgument, match="order_by"):
        store.search_experiments(order_by=["artifact_location; DROP TABLE x"])
    with pytest.raises(InvalidArgument, match="page_token"):
        store.search_experiments(page_token="garbage!")
    with pytest.raises(InvalidArgument, match="max_results"):
        store.search_experiments(max_results=0)


def test_filter_values_are_bound_not_pasted(store: MetadataStore) -> None:
    store.create_experiment("x'); DROP TABLE experiments; --")
    got, _ = store.search_experiments("name = 'x\\'); DROP TABLE experiments; --'")
    assert [e.name for e in got] == ["x'); DROP TABLE experiments; --"]
    assert store.get_experiment("0").name == "Default"


def test_rename_tags_delete_restore_and_audit(store: MetadataStore) -> None:
    eid = store.create_experiment("r", actor="ann")
    other = store.create_experiment("taken")
    with pytest.raises(AlreadyExists):
        store.rename_experiment(eid, "taken")
    store.rename_experiment(eid, "r2", actor="bob")
    store.set_experiment_tag(eid, "k", "v", actor="bob")
    store.set_experiment_tag(eid, "k", "v2", actor="bob")
    assert store.get_experiment(eid).tags == {"k": "v2"}
    store.delete_experiment_tag(eid, "k", actor="bob")
    with pytest.raises(NotFound, match="no tag"):
        store.delete_experiment_tag(eid, "k")
    store.delete_experiment(eid, actor="cy")
    assert store.deleted_experiment_ids() == {eid}
    assert [e.name for e in store.search_experiments(view_type="deleted")[0]] == ["r2"]
    with pytest.raises(InvalidState):
        store.delete_experiment(eid)
    with pytest.raises(InvalidState):
        store.rename_experiment(eid, "r3")
    with pytest.raises(InvalidState):
        store.set_experiment_tag(eid, "k", "v")
    store.restore_experiment(eid, actor="cy")
    with pytest.raises(InvalidState):
        store.restore_experiment(eid)
    with pytest.raises(NotFound):
        store.delete_experiment("12345")
    log, _ = store.search_audit_log(experiment_id=eid)
    assert [e.action for e in log] == [
        "create_experiment", "rename_experiment", "set_experiment_tag", "set_experiment_tag",
        "delete_experiment_tag", "delete_experiment", "restore_experiment"]
    assert log[1].before["name"] == "r" and log[1].after["name"] == "r2"  # type: ignore[index]
    assert log[3].before == {"key": "k", "value": "v"}
    assert [e.action for e in store.search_audit_log(actor="cy")[0]] == [
        "delete_experiment", "restore_experiment"]
    assert other not in {e.entity_id for e in store.search_audit_log(actor="bob")[0]}


def test_tag_limits(store: MetadataStore) -> None:
    eid = store.create_experiment("t")
    with pytest.raises(InvalidArgument, match="limit is 250"):
        store.set_experiment_tag(eid, "k" * 251, "v")
    with pytest.raises(InvalidArgument, match="limit is 20000"):
        store.set_experiment_tag(eid, "k", "v" * 20001)
