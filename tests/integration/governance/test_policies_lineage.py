"""Policies and lineage in the control plane, on SQLite and PostgreSQL.

The gate is the real evaluator (`metricflow.governance.policy_gate`) without a data
plane or artifact store: rules that need them must fail closed, naming why. The
run-metric and artifact rules are exercised against a real server in
test_governance_server.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from metricflow.errors import InvalidArgument, InvalidState
from metricflow.governance import parse_policy, policy_gate
from metricflow.store.metadata import (
    ApprovalRequired,
    DatasetInput,
    PolicyViolation,
    open_metadata_store,
)

PROD = """
description = "What production needs"
applies_to = ["stage:Production", "alias:champion"]

[[rules]]
name = "documented"
require = ["description"]

[[rules]]
name = "trained-on-data"
require = ["training_dataset"]

[[rules]]
name = "fresh"
max_age_days = 30
"""


@pytest.fixture
def pstore(metadata_uri: str) -> Any:
    s = open_metadata_store(metadata_uri, policy_gate=policy_gate(None, None))
    s.create_registered_model("m", actor="admin")
    s.create_model_version("m", "s3://bucket/m/1", run_id="r1", actor="alice")
    s.grant_approver("bob", actor="admin")
    yield s
    s.close()


def test_policies_refuse_naming_rule_and_value_then_pass(pstore: Any) -> None:
    pstore.put_policy("prod", PROD, actor="admin")
    with pytest.raises(PolicyViolation) as e:
        pstore.transition_model_version_stage("m", 1, "Production", actor="alice")
    msgs = {(v.rule, v.message) for v in e.value.violations}
    assert ("documented", "the version needs a description; found: none") in msgs
    assert any(r == "trained-on-data" and "found: 0 input(s)" in m for r, m in msgs)
    assert "[prod/documented]" in e.value.message
    assert pstore.get_model_version("m", 1).current_stage == "None"
    # Policies apply to their targets only.
    pstore.transition_model_version_stage("m", 1, "Staging", actor="alice")
    # An eval dataset is not a training dataset; the value found is named.
    pstore.log_run_inputs("r1", [DatasetInput("holdout", "d1", context="eval")])
    found = pstore.check_policies("m", 1, kind="stage", target="Production")
    assert any("['eval']" in v.message for v in found)
    pstore.update_model_version("m", 1, "A fraud model", actor="alice")
    pstore.log_run_inputs("r1", [DatasetInput("train", "d2", context="training")])
    assert pstore.check_policies("m", 1) == []
    assert pstore.transition_model_version_stage("m", 1, "Production",
                                                 actor="alice").current_stage == "Production"


def test_rules_needing_the_data_plane_fail_closed_here(pstore: Any) -> None:
    pstore.put_policy("acc", """
[[rules]]
name = "accurate"
run = "metrics.val_accuracy >= 0.9"

[[rules]]
name = "card"
require = ["artifact:model_card.md", "signature"]
""", actor="admin")
    found = {v.rule: v.message for v in pstore.check_policies("m", 1)}
    assert "run r1 cannot be read here (this process has no data plane)" in found["accurate"]
    assert "not a runs:/ URI" in found["card"]


def test_the_last_approval_is_checked_against_policy(pstore: Any) -> None:
    pstore.protect_target("stage", "Production", actor="admin")
    pstore.put_policy("prod", PROD, actor="admin")
    with pytest.raises(ApprovalRequired) as e:  # protection first: a request is made
        pstore.transition_model_version_stage("m", 1, "Production", actor="alice")
    rid = e.value.request.request_id
    with pytest.raises(PolicyViolation, match="documented"):
        pstore.approve_request(rid, comment="ok", actor="bob")
    r = pstore.get_approval_request(rid)
    assert (r.state, r.votes) == ("pending", ())  # the vote did not count
    assert pstore.get_model_version("m", 1).current_stage == "None"
    pstore.delete_policy("prod", actor="admin")
    assert pstore.approve_request(rid, comment="ok", actor="bob").state == "applied"


def test_policies_are_versioned_and_audited(pstore: Any) -> None:
    p1 = pstore.put_policy("prod", PROD, actor="admin")
    p2 = pstore.put_policy("prod", PROD.replace("30", "7"), actor="root")
    assert (p1.version, p2.version) == (1, 2)
    assert pstore.get_policy("prod").source == p2.source
    assert pstore.get_policy("prod", 1).source == PROD
    pstore.delete_policy("prod", actor="admin")
    assert pstore.list_policies() == []
    assert [p.version for p in pstore.list_policies(history=True)] == [1, 2, 3]
    actions = [e.action for e in pstore.search_audit_log(actor="admin")[0]]
    assert actions.count("put_policy") == 1 and "delete_policy" in actions


def test_age_rule_names_the_age(pstore: Any) -> None:
    pstore.put_policy("young", '[[rules]]\nname = "fresh"\nmax_age_days = 0.000001\n',
                      actor="admin")
    time.sleep(0.2)  # the version must grow older than the limit: time passing is the point
    (v,) = pstore.check_policies("m", 1)
    assert v.rule == "fresh" and "days old" in v.message


def test_no_gate_means_fail_closed(metadata_uri: str) -> None:
    s = open_metadata_store(metadata_uri)
    try:
        s.create_registered_model("m")
        s.create_model_version("m", "s3://b/m")
        s.put_policy("prod", PROD, actor="admin")
        with pytest.raises(InvalidState, match="no policy evaluator"):
            s.transition_model_version_stage("m", 1, "Production", actor="alice")
    finally:
        s.close()


@pytest.mark.parametrize("doc,field", [
    ("x = ", "source"),
    ("[[rules]]\nname = 'a'\nrequire = ['colour']\n", "rules[0].require"),
    ("[[rules]]\nname = 'a'\nrun = 'metrics.acc >>= 1'\n", "rules[0].run"),
    ("[[rules]]\nname = 'a'\n", "rules[0]"),
    ("applies_to = ['branch:main']\n[[rules]]\nname='a'\nmax_age_days=1\n", "applies_to"),
    ("[[rules]]\nname = 'a'\nmax_age_days = -1\n", "rules[0].max_age_days"),
])
def test_bad_policies_are_refused_naming_the_field(doc: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_policy("p", doc)
    assert e.value.details["field"] == field


def test_yaml_policies_parse() -> None:
    doc = parse_policy("p", "applies_to: ['alias:prod-*']\nrules:\n  - name: acc\n"
                       "    run: metrics.val_accuracy >= 0.9\n", "yaml")
    assert doc.applies_to == (("alias", "prod-*"),) and doc.rules[0].run is not None


def test_lineage_and_trained_on_one_query(pstore: Any) -> None:
    train = DatasetInput("train", "abc", source_type="s3", source="s3://d/train",
                         schema='{"cols": 3}', context="training")
    pstore.log_run_inputs("r1", [train, DatasetInput("holdout", "def", context="eval")])
    pstore.log_run_inputs("r1", [train])  # logged again: no duplicate
    pstore.create_model_version("m", "s3://bucket/m/2", run_id="r1", actor="alice")
    pstore.create_registered_model("n", actor="admin")
    pstore.create_model_version("n", "models:/m/1", actor="alice")  # registered from m/1
    pstore.create_model_version("n", "s3://bucket/n/2", run_id="r9", actor="alice")
    # n/1 was registered from m/1 and inherits its run: it was trained on abc too.
    assert pstore.versions_trained_on("abc") == [("m", "1", "r1"), ("m", "2", "r1"),
                                                 ("n", "1", "r1")]
    assert pstore.versions_trained_on("abc", name="other") == []
    assert pstore.versions_trained_on("nope") == []
    g = pstore.lineage("m", 1)
    edges = {(e.source, e.target, e.relation) for e in g.edges}
    assert ("dataset:train@abc", "run:r1", "training") in edges
    assert ("dataset:holdout@def", "run:r1", "eval") in edges
    assert ("run:r1", "model_version:m/1", "produced") in edges
    assert ("model_version:m/1", "model_version:n/1", "registered_as") in edges
    ds = {n.id: n.attrs for n in g.nodes if n.kind == "dataset"}
    assert ds["train@abc"]["source"] == "s3://d/train"
    with pytest.raises(InvalidArgument, match="name and a digest"):
        pstore.log_run_inputs("r1", [DatasetInput("x", "")])


def test_lineage_reaches_deployments(pstore: Any) -> None:
    from metricflow.entities import Variant

    pstore.create_model_version("m", "s3://bucket/m/2", run_id="r2", actor="alice")
    pstore.set_registered_model_alias("m", "live", 1, actor="alice")
    pstore.create_deployment("fraud-api", "m", [Variant(name="main", alias="live", weight=9),
                                                Variant(name="canary", version="2", weight=1)],
                             actor="alice")
    g1, g2 = pstore.lineage("m", 1), pstore.lineage("m", 2)
    assert ("model_version:m/1", "deployment:fraud-api", "served_by") in {
        (e.source, e.target, e.relation) for e in g1.edges}
    assert [n.attrs for n in g1.nodes if n.kind == "deployment"] == [{"variants": ["main"]}]
    assert [n.attrs for n in g2.nodes if n.kind == "deployment"] == [{"variants": ["canary"]}]
    pstore.set_registered_model_alias("m", "live", 2, actor="alice")  # the alias moves
    assert not [n for n in pstore.lineage("m", 1).nodes if n.kind == "deployment"]

