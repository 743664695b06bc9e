"""Deployments of a model with protected targets (SQLite): a routed variant must follow a
protected alias, so no one routes traffic to a version without the approvals a move of
that alias needs. Shadows and models with nothing protected are not gated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metricflow.entities import Variant
from metricflow.errors import InvalidArgument, NotFound
from metricflow.store.metadata import MetadataStore, open_metadata_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    s = open_metadata_store(f"sqlite:///{tmp_path / 'meta.db'}",
                            default_artifact_root="s3://bucket/mlruns")
    for name in ("fraud", "free"):
        s.create_registered_model(name)
        for i in (1, 2, 3):
            s.create_model_version(name, f"s3://bucket/{name}/{i}")
        s.set_registered_model_alias(name, "champion", 1)
        s.set_registered_model_alias(name, "challenger", 2)
    s.set_registered_model_alias("fraud", "prod-eu", 2)  # set before it is protected
    s.protect_target("alias", "champion", model_name="fraud", actor="admin")
    s.protect_target("alias", "prod-*", model_name="fraud", actor="admin")
    s.protect_target("stage", "Production", actor="admin")  # global: every model
    yield s
    s.close()


def _refused(store: MetadataStore, variants: list[Variant], *, update: bool = False) -> str:
    with pytest.raises(InvalidArgument) as e:
        if update:
            store.update_deployment("d", variants=variants)
        else:
            store.create_deployment("d", "fraud", variants)
    return str(e.value)


def test_routed_variants_of_a_protected_model_follow_protected_aliases(
        store: MetadataStore) -> None:
    champ = Variant("champ", alias="champion", weight=9)
    msg = _refused(store, [champ, Variant("canary", version="3", weight=1)])
    assert ("variant 'canary' pins version 3 of 'fraud', which has protected targets "
            "(aliases champion, prod-*; stage Production): a routed variant must follow a "
            "protected alias") in msg
    msg = _refused(store, [champ, Variant("canary", alias="challenger", weight=1)])
    assert "variant 'canary' follows alias 'challenger' (not protected) of 'fraud'" in msg
    with pytest.raises(InvalidArgument) as e:
        store.create_deployment("d", "fraud", [Variant("only", version="1")])
    assert e.value.details["field"] == "variants[0]"
    assert e.value.details["received"] == "v1"
    with pytest.raises(NotFound):
        store.get_deployment("d")  # nothing was created

    # A protected alias (exact or glob) routes; a shadow may pin any version.
    d = store.create_deployment("d", "fraud", [
        champ, Variant("eu", alias="prod-eu", weight=1),
        Variant("sh", version="3", shadow=True, weight=0.5)])
    assert [(v.name, v.resolved_version) for v in d.variants] == [
        ("champ", "1"), ("eu", "2"), ("sh", "3")]

    # Updates are checked in the same way; the refused update changes nothing.
    _refused(store, [champ, Variant("eu", version="3", weight=1)], update=True)
    _refused(store, [champ, Variant("eu", alias="challenger", weight=1)], update=True)
    assert store.get_deployment("d").row_version == d.row_version
    d2 = store.update_deployment("d", variants=[champ, Variant("sh", alias="challenger",
                                                               shadow=True, weight=1)])
    assert [v.name for v in d2.variants] == ["champ", "sh"]
    assert store.update_deployment("d", description="x").description == "x"


def test_only_a_protected_stage_leaves_no_routed_registry_variant(
        store: MetadataStore) -> None:
    # "free" is covered by the global Production rule only: no alias of it is protected.
    msg = _refused_free(store, [Variant("champ", alias="champion")])
    assert ("variant 'champ' follows alias 'champion' (not protected) of 'free', which has "
            "protected targets (stage Production)") in msg and "none is protected" in msg


def _refused_free(store: MetadataStore, variants: list[Variant]) -> str:
    with pytest.raises(InvalidArgument) as e:
        store.create_deployment("f", "free", variants)
    return str(e.value)


def test_a_model_with_nothing_protected_is_unchanged(store: MetadataStore) -> None:
    for t in store.list_protected_targets("free"):
        store.unprotect_target(t.target_id, actor="admin")
    d = store.create_deployment("f", "free", [Variant("champ", alias="champion", weight=9),
                                              Variant("canary", version="3", weight=1)])
    assert [(v.name, v.resolved_version) for v in d.variants] == [("champ", "1"),
                                                                  ("canary", "3")]
    d = store.update_deployment("f", variants=[Variant("pin", version="2")])
    assert [v.resolved_version for v in d.variants] == ["2"]
