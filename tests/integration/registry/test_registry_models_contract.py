"""Registered models, versions, stages, aliases, URIs and audit on both backends."""

from __future__ import annotations

import pytest

from metricflow.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
)
from metricflow.store.metadata import MetadataStore, open_metadata_store


def test_model_crud_and_search(store: MetadataStore) -> None:
    m = store.create_registered_model("m1", tags={"team": "a"}, description="d", actor="ann")
    assert (m.name, m.description, dict(m.tags), m.row_version) == ("m1", "d", {"team": "a"}, 1)
    with pytest.raises(AlreadyExists, match="'m1' already exists"):
        store.create_registered_model("m1")
    store.create_registered_model("m2", tags={"team": "b"})
    store.create_registered_model("zz")
    got, _ = store.search_registered_models("tags.team = 'a'")
    assert [x.name for x in got] == ["m1"]
    got, token = store.search_registered_models("name LIKE 'm%'", max_results=1,
                                                order_by=["name DESC"])
    assert [x.name for x in got] == ["m2"] and token
    got, token = store.search_registered_models("name LIKE 'm%'", max_results=1,
                                                order_by=["name DESC"], page_token=token)
    assert [x.name for x in got] == ["m1"] and token is None
    renamed = store.rename_registered_model("m1", "m1b", expected_version=1)
    assert renamed.row_version == 2
    with pytest.raises(NotFound, match="'m1' does not exist"):
        store.get_registered_model("m1")
    with pytest.raises(AlreadyExists):
        store.rename_registered_model("m1b", "m2")
    store.set_registered_model_tag("m1b", "k", "v")
    store.delete_registered_model_tag("m1b", "k")
    with pytest.raises(NotFound):
        store.delete_registered_model_tag("m1b", "k")
    store.delete_registered_model("m1b")
    with pytest.raises(NotFound):
        store.get_registered_model("m1b")
    # History survives rename and delete.
    actions = [e.action for e in store.search_audit_log(model_name="m1b")[0]]
    assert actions == ["create_registered_model", "rename_registered_model",
                       "set_registered_model_tag", "delete_registered_model_tag",
                       "delete_registered_model"]


@pytest.mark.parametrize("call", [
    lambda s: s.get_registered_model("missing"),
    lambda s: s.create_model_version("missing", "s3://x"),
    lambda s: s.transition_model_version_stage("missing", 1, "Staging"),
    lambda s: s.set_registered_model_alias("missing", "champ", 1),
    lambda s: s.get_model_version_by_alias("missing", "champ"),
    lambda s: s.delete_registered_model("missing"),
    lambda s: s.update_registered_model("missing", "d"),
    lambda s: s.resolve_model_uri("models:/missing/1"),
])
def test_missing_model(store: MetadataStore, call: object) -> None:
    with pytest.raises(NotFound, match="'missing' does not exist"):
        call(store)  # type: ignore[operator]


def test_versions_numbering_status_and_crud(store: MetadataStore) -> None:
    store.create_registered_model("m")
    v1 = store.create_model_version("m", "runs:/r1/model", tags={"t": "1"}, description="d",
                                    actor="ann")
    assert (v1.version, v1.run_id, v1.status, v1.current_stage) == ("1", "r1", "READY", "None")
    assert v1.user_id == "ann" and v1.tags == {"t": "1"}
    v2 = store.create_model_version("m", "s3://bucket/model")
    store.delete_model_version("m", v2.version)
    assert store.create_model_version("m", "s3://bucket/model2").version == "3"  # no reuse
    with pytest.raises(NotFound, match="no version 2"):
        store.get_model_version("m", 2)
    with pytest.raises(InvalidArgument, match="does not match"):
        store.create_model_version("m", "runs:/r1/model", run_id="other")
    with pytest.raises(InvalidArgument, match="source"):
        store.create_model_version("m", "")
    with pytest.raises(InvalidArgument, match="positive integer"):
        store.get_model_version("m", "x")
    store.set_model_version_tag("m", 1, "k", "v")
    assert store.get_model_version("m", 1).tags == {"t": "1", "k": "v"}
    store.delete_model_version_tag("m", 1, "k")
    with pytest.raises(NotFound):
        store.delete_model_version_tag("m", 1, "k")
    got, _ = store.search_model_versions("name = 'm' AND run_id = 'r1'")
    assert [v.version for v in got] == ["1"]
    got, _ = store.search_model_versions("tags.t = '1'")
    assert [v.version for v in got] == ["1"]
    got, _ = store.search_model_versions("name = 'm'", order_by=["version_number ASC"])
    assert [v.version for v in got] == ["1", "3"]


def test_source_resolved_at_download_not_at_registration(metadata_uri: str) -> None:
    seen: list[tuple[str, str]] = []

    def exists(run_id: str, path: str) -> bool:
        seen.append((run_id, path))
        return run_id == "good"

    s = open_metadata_store(metadata_uri, source_exists=exists,
                            run_artifact_uri=lambda r, p: f"s3://art/{r}/{p}")
    try:
        s.create_registered_model("m")
        ok = s.create_model_version("m", "runs:/good/models/m")
        later = s.create_model_version("m", "runs:/bad/x")  # files not uploaded yet
        other = s.create_model_version("m", "s3://elsewhere/m")
        # READY at once, as MLflow: nothing is looked up at registration
        assert seen == []
        assert [v.status for v in (ok, later, other)] == ["READY"] * 3
        assert s.get_model_version_download_uri("m", 1) == "s3://art/good/models/m"
        with pytest.raises(NotFound, match=r"runs:/bad/x.*nothing was uploaded to run bad"):
            s.get_model_version_download_uri("m", 2)
        assert seen == [("good", "models/m"), ("bad", "x")]
        assert s.resolve_artifact_location("models:/m/3") == "s3://elsewhere/m"
        s.transition_model_version_stage("m", 2, "Production")  # READY versions move
    finally:
        s.close()


def test_stages_and_archive_existing(store: MetadataStore) -> None:
    store.create_registered_model("m")
    for i in range(3):
        store.create_model_version("m", f"s3://b/{i}")
    store.transition_model_version_stage("m", 1, "production")
    store.transition_model_version_stage("m", 2, "Production")
    assert [v.version for v in store.get_latest_versions("m", ["Production"])] == ["2"]
    mv = store.transition_model_version_stage("m", 3, "Production",
                                              archive_existing_versions=True, comment="ship")
    assert mv.current_stage == "Production"
    stages = {v.version: v.current_stage for v in store.search_model_versions("name='m'")[0]}
    assert stages == {"1": "Archived", "2": "Archived", "3": "Production"}
    entry = store.search_audit_log(model_name="m", action="transition_model_version_stage")[0][-1]
    assert entry.after["archived_versions"] == ["1", "2"]  # type: ignore[index]
    assert entry.before["current_stage"] == "None" and entry.comment == "ship"  # type: ignore[index]
    with pytest.raises(InvalidArgument, match="stage 'Prod' is not one of"):
        store.transition_model_version_stage("m", 1, "Prod")
    with pytest.raises(InvalidArgument, match="archive_existing_versions"):
        store.transition_model_version_stage("m", 1, "Archived", archive_existing_versions=True)
    with pytest.raises(NotFound):
        store.transition_model_version_stage("m", 99, "Staging")


def test_transition_comment_can_be_required(metadata_uri: str) -> None:
    s = open_metadata_store(metadata_uri, require_transition_comment=True)
    try:
        s.create_registered_model("m")
        s.create_model_version("m", "s3://b/1")
        with pytest.raises(InvalidArgument, match="comment"):
            s.transition_model_version_stage("m", 1, "Staging")
        assert s.transition_model_version_stage("m", 1, "Staging", comment="ok").current_stage \
            == "Staging"
    finally:
        s.close()


def test_aliases_and_uri_resolution(store: MetadataStore) -> None:
    store.create_registered_model("m")
    for i in range(3):
        store.create_model_version("m", f"s3://b/{i + 1}")
    store.transition_model_version_stage("m", 2, "Staging")
    store.set_registered_model_alias("m", "champion", 1, actor="ann")
    store.set_registered_model_alias("m", "champion", "3", actor="bob")  # moves
    assert store.get_model_version_by_alias("m", "champion").version == "3"
    assert store.get_registered_model("m").aliases == {"champion": "3"}
    assert store.get_model_version("m", 3).aliases == ("champion",)
    assert store.resolve_artifact_location("models:/m@champion") == "s3://b/3"
    assert store.resolve_artifact_location("models:/m/1") == "s3://b/1"
    assert store.resolve_artifact_location("models:/m/staging") == "s3://b/2"
    assert store.resolve_artifact_location("models:/m/latest") == "s3://b/3"
    with pytest.raises(NotFound, match="Production"):
        store.resolve_model_uri("models:/m/Production")
    for bad in ("models:/m", "runs:/x/y", "models:/m/Prod", "models:/m@"):
        with pytest.raises(InvalidArgument, match="model"):
            store.resolve_model_uri(bad)
    for reserved in ("latest", "LATEST", "v3", "V12"):
        with pytest.raises(InvalidArgument, match="reserved"):
            store.set_registered_model_alias("m", reserved, 1)
    with pytest.raises(InvalidArgument, match="may only contain"):
        store.set_registered_model_alias("m", "a b", 1)
    with pytest.raises(NotFound, match="no version 9"):
        store.set_registered_model_alias("m", "x", 9)
    store.delete_model_version("m", 3)
    with pytest.raises(NotFound, match="no alias 'champion'"):
        store.get_model_version_by_alias("m", "champion")
    with pytest.raises(NotFound):
        store.delete_registered_model_alias("m", "champion")
    log = store.search_audit_log(model_name="m", action="set_registered_model_alias")[0]
    assert [(e.actor, e.before["version"], e.after["version"]) for e in log] == [  # type: ignore[index]
        ("ann", None, 1), ("bob", 1, 3)]


def test_optimistic_concurrency_conflicts(store: MetadataStore) -> None:
    m = store.create_registered_model("m")
    store.update_registered_model("m", "first", expected_version=m.row_version)
    with pytest.raises(Conflict, match="expected version 1, found 2"):
        store.update_registered_model("m", "stale", expected_version=m.row_version)
    with pytest.raises(Conflict):
        store.delete_registered_model("m", expected_version=1)
    assert store.get_registered_model("m").description == "first"
    mv = store.create_model_version("m", "s3://b/1")
    store.update_model_version("m", 1, "desc", expected_version=mv.row_version)
    with pytest.raises(Conflict):
        store.transition_model_version_stage("m", 1, "Staging", expected_version=mv.row_version)
    with pytest.raises(Conflict):
        store.update_model_version("m", 1, "other", expected_version=mv.row_version)
    cur = store.get_model_version("m", 1)
    assert cur.current_stage == "None" and cur.description == "desc"
    assert store.transition_model_version_stage(
        "m", 1, "Staging", expected_version=cur.row_version).row_version == cur.row_version + 1


def test_registered_model_latest_versions(store: MetadataStore) -> None:
    store.create_registered_model("m")
    for i in range(4):
        store.create_model_version("m", f"s3://b/{i}")
    store.transition_model_version_stage("m", 1, "Production")
    store.transition_model_version_stage("m", 2, "Staging")
    latest = {v.current_stage: v.version for v in store.get_registered_model("m").latest_versions}
    assert latest == {"None": "4", "Staging": "2", "Production": "1"}
