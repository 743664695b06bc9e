"""RegistryClient against the grpc.aio services over a real loopback channel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from metricflow.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidState,
    NotFound,
)
from metricflow.registry import RegistryClient, add_to_server
from metricflow.store.metadata import MetadataStore


@pytest.fixture
def client(store: MetadataStore, aio_server: Any) -> Iterator[RegistryClient]:
    port = aio_server(lambda server: add_to_server(server, store))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield RegistryClient(channel, actor="alice")
    finally:
        channel.close()


def test_experiments_over_grpc(client: RegistryClient) -> None:
    eid = client.create_experiment("e1", tags={"a": "b"})
    assert client.get_experiment(eid).tags == {"a": "b"}
    assert client.get_experiment_by_name("e1").experiment_id == eid  # type: ignore[union-attr]
    assert client.get_experiment_by_name("nope") is None
    assert client.get_or_create_experiment("e1").experiment_id == eid
    with pytest.raises(AlreadyExists, match="already exists"):
        client.create_experiment("e1")
    client.rename_experiment(eid, "e2")
    client.set_experiment_tag(eid, "k", "v")
    client.delete_experiment_tag(eid, "k")
    client.delete_experiment(eid)
    assert [e.name for e in client.search_experiments(view_type="deleted")] == ["e2"]
    client.restore_experiment(eid)
    page = client.search_experiments(max_results=1)
    assert len(page) == 1 and page.token
    with pytest.raises(NotFound):
        client.get_experiment("404")
    with pytest.raises(InvalidArgument, match="filter"):
        client.search_experiments("bogus ~ 1")
    assert {e.actor for e in client.search_audit_log(experiment_id=eid)} == {"alice"}


def test_registry_flow_over_grpc(client: RegistryClient) -> None:
    client.create_registered_model("m", tags={"t": "1"}, description="d")
    mv1 = client.register_model("runs:/abc/model", "m")
    mv2 = client.register_model("runs:/def/model", "m")
    assert (mv1.version, mv1.run_id, mv2.version) == ("1", "abc", "2")
    fresh = client.register_model("s3://b/x", "new-model")  # creates the model
    assert fresh.version == "1"
    staged = client.transition_model_version_stage("m", 1, "Production", comment="go")
    assert staged.current_stage == "Production"
    client.transition_model_version_stage("m", 2, "Production", archive_existing_versions=True)
    assert [v.version for v in client.get_latest_versions("m", ["Production"])] == ["2"]
    client.set_registered_model_alias("m", "champion", 2)
    assert client.get_model_version_by_alias("m", "champion").version == "2"
    mv, loc = client.resolve_model_uri("models:/m@champion")
    assert (mv.version, loc) == ("2", "runs:/def/model")
    copy = client.register_model("models:/m@champion", "m-copy")
    assert (copy.source, copy.run_id) == ("runs:/def/model", "def")
    found = client.search_model_versions("name = 'm'", order_by=["version_number ASC"])
    assert [v.current_stage for v in found] == ["Archived", "Production"]
    assert [m.name for m in client.search_registered_models("tags.t = '1'")] == ["m"]
    m = client.get_registered_model("m")
    client.update_registered_model("m", "new", expected_version=m.row_version)
    with pytest.raises(Conflict):
        client.update_registered_model("m", "stale", expected_version=m.row_version)
    with pytest.raises(InvalidArgument, match="reserved"):
        client.set_registered_model_alias("m", "latest", 1)
    with pytest.raises(InvalidArgument, match="not one of"):
        client.transition_model_version_stage("m", 1, "Prod")
    with pytest.raises(NotFound, match="does not exist"):
        client.create_model_version("missing", "s3://x")
    with pytest.raises(AlreadyExists):
        client.create_registered_model("m")
    client.set_model_version_tag("m", 1, "k", "v")
    assert client.get_model_version("m", 1).tags == {"k": "v"}
    client.delete_model_version_tag("m", 1, "k")
    client.update_model_version("m", 1, "desc")
    client.delete_registered_model_alias("m", "champion")
    client.delete_model_version("m", 1)
    client.rename_registered_model("m", "m2")
    actions = [e.action for e in client.search_audit_log(model_name="m2")]
    assert actions[:2] == ["create_registered_model", "create_model_version"]
    assert actions[-1] == "rename_registered_model"
    assert all(e.actor == "alice" for e in client.search_audit_log(model_name="m2"))
    client.delete_registered_model("m2")
    with pytest.raises(NotFound):
        client.get_registered_model("m2")


def test_failed_registration_cannot_be_promoted(client: RegistryClient,
                                                store: MetadataStore) -> None:
    client.create_registered_model("m")
    client.create_model_version("m", "s3://ok")
    with pytest.raises(NotFound):
        client.transition_model_version_stage("m", 5, "Staging")
    assert store.get_model_version("m", 1).status == "READY"
    with pytest.raises(InvalidState):
        client.delete_experiment("0")
