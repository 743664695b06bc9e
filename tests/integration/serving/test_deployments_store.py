"""The deployment store on SQLite and on a real PostgreSQL (devservices): aliases resolved
at read time, validation with the field named, audit entries, status reports, events,
concurrency tokens and cascades.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metricflow.entities import Guardrails, StickyKey, Variant
from metricflow.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from metricflow.store.metadata import MetadataStore, model_of_deployment, open_metadata_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        uri = str(request.getfixturevalue("make_postgres_database")())
    s = open_metadata_store(uri, default_artifact_root="s3://bucket/mlruns")
    s.create_registered_model("m")
    for i in (1, 2, 3):
        s.create_model_version("m", f"s3://bucket/m/{i}")
    s.set_registered_model_alias("m", "champion", 1)
    s.set_registered_model_alias("m", "challenger", 2)
    yield s
    s.close()


def _two() -> list[Variant]:
    return [Variant("champ", alias="champion", weight=9), Variant("canary", alias="challenger",
                                                                 weight=1)]


def test_create_resolves_aliases_and_follows_moves(store: MetadataStore) -> None:
    d = store.create_deployment("d", "m", [*_two(), Variant("sh", version="3", shadow=True,
                                                            weight=0.25)],
                                sticky_key=StickyKey("field", "user_id"), actor="ann")
    assert [(v.name, v.resolved_version, v.source) for v in d.variants] == [
        ("champ", "1", "s3://bucket/m/1"), ("canary", "2", "s3://bucket/m/2"),
        ("sh", "3", "s3://bucket/m/3")]
    assert d.fallback == "champ" and [v.name for v in d.shadows] == ["sh"]
    store.set_registered_model_alias("m", "challenger", 3)
    assert store.get_deployment("d").variants[1].resolved_version == "3"
    # An alias deleted after creation: the variant resolves to nothing (serve keeps the old).
    store.delete_registered_model_alias("m", "challenger")
    assert store.get_deployment("d").variants[1].resolved_version == ""
    assert model_of_deployment(store.engine, "d") == "m"  # type: ignore[attr-defined]
    assert model_of_deployment(store.engine, "nope") is None  # type: ignore[attr-defined]


def test_validation_names_field_and_limit(store: MetadataStore) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"variants": []}, "variants"),
        ({"variants": [Variant(f"v{i}", alias="champion") for i in range(17)]}, "variants"),
        ({"variants": [Variant("a", alias="champion", weight=float("nan"))]},
         "variants[0].weight"),
        ({"variants": [Variant("a", alias="champion", shadow=True)]}, "variants"),
        ({"variants": [Variant("a", endpoint="ftp://x/y")]}, "variants[0].endpoint"),
        ({"variants": [Variant("a" * 65, alias="champion")]}, "variants[0].name"),
        ({"variants": [Variant("a", version="0")]}, "variants[0].version"),
        ({"guardrails": Guardrails(window_s=0.5)}, "guardrails.window_s"),
        ({"guardrails": Guardrails(min_requests=0)}, "guardrails.min_requests"),
        ({"guardrails": Guardrails(max_latency_p99_ms=0)}, "guardrails.max_latency_p99_ms"),
        ({"sticky_key": StickyKey("header", "bad header")}, "sticky_key.name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "-x"}, "name"),
    ]
    for kw, field in cases:
        args: dict[str, Any] = {"name": "bad", "variants": [Variant("a", alias="champion")],
                                **kw}
        with pytest.raises(InvalidArgument) as e:
            store.create_deployment(args.pop("name"), "m", args.pop("variants"), **args)
        assert e.value.details["field"] == field, (kw, e.value)
    with pytest.raises(NotFound) as nf:
        store.create_deployment("bad", "no-such-model", [Variant("a", alias="champion")])
    assert nf.value.details["field"] == "name"
    assert store.list_deployments() == []
    assert store.deployment_history("bad") == []


def _status(store: MetadataStore, variant: str) -> tuple[str, str] | None:
    st = store.get_deployment("d").status_of(variant)
    return None if st is None else (st.state, st.version)


def test_update_conflict_status_and_audit(store: MetadataStore) -> None:
    store.create_deployment("d", "m", _two(), guardrails=Guardrails(max_error_rate=0.1),
                            actor="ann")
    with pytest.raises(AlreadyExists):
        store.create_deployment("d", "m", _two())
    store.report_variant_status("d", "canary", "load_failed", version="2", reason="boom",
                                reporter="a:1", actor="svc")
    store.report_variant_status("d", "canary", "load_failed", version="2", reason="boom",
                                reporter="b:1", actor="svc")  # a repeat: no new entry
    store.report_variant_status("d", "champ", "serving", version="1", reporter="a:1",
                                actor="svc")  # the normal state: no entry either
    d = store.get_deployment("d")
    assert d.status_of("canary").reporter == "b:1"  # type: ignore[union-attr]
    assert d.status_of("champ").state == "serving"  # type: ignore[union-attr]
    # Tripped stays tripped for its version: a process that (re)loads it and says
    # "serving" does not put it back; an operator's restore or a new version does.
    store.report_variant_status("d", "champ", "out_of_rotation", version="1", reason="p99",
                                actor="svc")
    store.report_variant_status("d", "champ", "serving", version="1", actor="svc")
    assert _status(store, "champ") == ("out_of_rotation", "1")
    store.report_variant_status("d", "champ", "serving", version="1", restore=True,
                                reason="looked fine", actor="ops")
    assert _status(store, "champ") == ("serving", "1")
    store.report_variant_status("d", "champ", "out_of_rotation", version="1", actor="svc")
    store.report_variant_status("d", "champ", "serving", version="4", actor="svc")
    assert _status(store, "champ") == ("serving", "4")
    with pytest.raises(NotFound) as e:
        store.report_variant_status("d", "ghost", "serving")
    assert e.value.details["field"] == "variant"
    with pytest.raises(InvalidArgument):
        store.report_variant_status("d", "canary", "exploded")
    for bad in ["v1", "0", "-2", "1.5", "9" * 40]:  # a version is a model version number
        with pytest.raises(InvalidArgument) as e:
            store.report_variant_status("d", "champ", "serving", version=bad)
        assert e.value.details["field"] == "version", bad
    assert _status(store, "champ") == ("serving", "4")
    # Only the guardrails change: variants keep their reports; then a weight change
    # of canary clears canary's report but not champ's.
    d = store.update_deployment("d", guardrails=Guardrails(max_latency_p99_ms=50.0),
                                expected_version=1, actor="bob")
    assert d.row_version == 2 and d.status_of("canary") is not None
    assert d.guardrails.max_error_rate is None and d.guardrails.max_latency_p99_ms == 50.0
    d = store.update_deployment("d", variants=[Variant("champ", alias="champion", weight=9),
                                               Variant("canary", alias="challenger", weight=5)],
                                actor="bob", comment="more canary")
    assert d.status_of("canary") is None and d.status_of("champ") is not None
    with pytest.raises(Conflict):
        store.update_deployment("d", description="x", expected_version=2)
    assert store.get_deployment("d").description == ""
    # No change, no entry.
    same = store.update_deployment("d", variants=list(d.variants), actor="bob")
    assert same.row_version == 3
    actions = [(e.actor, e.action) for e in store.deployment_history("d")]
    assert actions == [("ann", "create_deployment"), ("svc", "deployment_variant_load_failed"),
                       ("svc", "deployment_variant_out_of_rotation"),
                       ("ops", "deployment_variant_serving"),
                       ("svc", "deployment_variant_out_of_rotation"),
                       ("svc", "deployment_variant_serving"),
                       ("bob", "update_deployment"), ("bob", "update_deployment")]
    # Entries carry the model, so the model's audit search shows them.
    assert [e.action for e in store.search_audit_log(model_name="m")[0]
            if "deployment" in e.action] == [a for _, a in actions]


def test_events_after_commit_and_cascade(store: MetadataStore) -> None:
    seen: list[Any] = []
    done = threading.Event()

    def on(ev: Any) -> None:
        if ev.name == "deployment.changed":
            seen.append(ev)
            if ev.data["action"] == "delete_deployment":
                done.set()
    store.events.subscribe(on)  # type: ignore[attr-defined]
    store.create_deployment("d", "m", _two(), actor="ann")
    with pytest.raises(InvalidArgument):  # refused: nothing emitted for it
        store.update_deployment("d", variants=[Variant("x", alias="champion", weight=0)])
    store.report_variant_status("d", "canary", "out_of_rotation", version="2",
                                reason="p99 > 50 ms", actor="svc")
    store.delete_deployment("d", actor="ann")
    assert done.wait(10)
    assert [(e.subject, e.data["action"], e.actor) for e in seen] == [
        ("deployment:d", "create_deployment", "ann"),
        ("deployment:d", "deployment_variant_out_of_rotation", "svc"),
        ("deployment:d", "delete_deployment", "ann")]
    assert seen[1].data["deployment"]["statuses"][0]["reason"] == "p99 > 50 ms"
    # An alias move is a change of every deployment that follows the alias (only those).
    seen.clear()
    done.clear()
    store.create_deployment("follows", "m", _two())
    store.create_deployment("pinned", "m", [Variant("a", version="1")])
    store.set_registered_model_alias("m", "challenger", 3, actor="cat")
    store.delete_deployment("pinned")
    assert done.wait(10)
    moved = [e for e in seen if e.data["action"] == "alias_moved"]
    assert [(e.subject, e.data["alias"], e.data["version"], e.data["previous_version"],
             e.actor) for e in moved] == [("deployment:follows", "challenger", "3", "2", "cat")]
    assert moved[0].data["deployment"]["variants"][1]["resolved_version"] == "3"
    # Deleting the version the alias points to takes the alias away: a change too.
    seen.clear()
    done.clear()
    store.delete_model_version("m", 3, actor="dan")
    store.create_deployment("pinned2", "m", [Variant("a", version="1")])
    store.delete_deployment("pinned2")  # (its delete_deployment event ends the wait)
    assert done.wait(10)
    gone = [e for e in seen if e.data["action"] == "alias_moved"]
    assert [(e.subject, e.data["alias"], e.data["version"], e.data["previous_version"],
             e.actor) for e in gone] == [("deployment:follows", "challenger", None, "3", "dan")]
    assert gone[0].data["deployment"]["variants"][1]["resolved_version"] == ""
    store.delete_deployment("follows")
    store.set_registered_model_alias("m", "challenger", 2)
    # Deleting the model deletes its deployments (the audit log keeps their history).
    store.create_deployment("d2", "m", _two())
    store.delete_registered_model("m")
    with pytest.raises(NotFound):
        store.get_deployment("d2")
    assert store.deployment_history("d2")[0].action == "create_deployment"
    assert model_of_deployment(store.engine, "d2", deleted=True) == "m"  # type: ignore[attr-defined]


def test_concurrent_updates_serialize(store: MetadataStore) -> None:
    """Writers with the same expected_version: exactly one wins, the rest get Conflict."""
    store.create_deployment("d", "m", _two())
    results: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        try:
            store.update_deployment("d", variants=[Variant("champ", alias="champion", weight=w),
                                                   Variant("canary", alias="challenger",
                                                           weight=1)], expected_version=1)
            out = "ok"
        except Conflict:
            out = "conflict"
        with lock:
            results.append(out)
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    assert store.get_deployment("d").row_version == 2
