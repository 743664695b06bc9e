"""Alert rules with auth on: the experiment's permissions, over HTTP and gRPC.

alice has EDIT on experiment A, bob READ on A; nobody but the admin has anything on B.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from alerts_support import Proc

from metricflow._proto.metricflow.alerts.v1 import alerts_pb2 as apb
from metricflow._proto.metricflow.alerts.v1 import alerts_pb2_grpc as apb_grpc


def _seed(uri: str) -> tuple[dict[str, str], dict[str, str]]:
    from metricflow.auth import AuthStore, Permission
    from metricflow.store.metadata import open_metadata_store

    md = open_metadata_store(uri)
    try:
        store = AuthStore(md.engine)  # type: ignore[attr-defined]
        store.create_user("admin", is_admin=True)
        for u in ("alice", "bob"):
            store.create_user(u)
        tokens = {u: store.create_token(u)[1] for u in ("admin", "alice", "bob")}
        exps = {n: str(md.create_experiment(f"al-{n}-{uuid.uuid4().hex[:6]}"))
                for n in ("A", "B")}
        store.set_experiment_permission(exps["A"], "alice", Permission.EDIT, actor="admin")
        store.set_experiment_permission(exps["A"], "bob", Permission.READ, actor="admin")
    finally:
        md.close()
    return tokens, exps


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Proc, dict[str, str], dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("alerts-auth")
    data = tmp / "data"
    data.mkdir()
    tokens, exps = _seed(f"sqlite:///{data}/metadata.db")
    p = Proc("server", ["--data-dir", str(data), "--auth", "on", "--default-permission",
                        "NO_PERMISSIONS"], tmp / "server.log")
    yield p, tokens, exps
    p.stop()


def _post(p: Proc, token: str, path: str, body: Any) -> requests.Response:
    return requests.post(p.base + "/api/v1" + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})


def _rule(exp: str) -> dict[str, Any]:
    return {"name": "r", "experiment_ids": [exp],
            "condition": {"type": "threshold", "metric": "loss", "op": ">", "value": 1}}


def test_http_rules_need_the_experiments_permissions(
        secured: tuple[Proc, dict[str, str], dict[str, str]]) -> None:
    p, tok, exps = secured
    ok = _post(p, tok["alice"], "/alerts/rules/create", _rule(exps["A"]))
    assert ok.status_code == 200, ok.text
    rid = ok.json()["rule"]["rule_id"]
    assert _post(p, tok["bob"], "/alerts/rules/create", _rule(exps["A"])).status_code == 403
    # an experiment alice cannot read is answered as a missing one (as everywhere)
    assert _post(p, tok["alice"], "/alerts/rules/create", _rule(exps["B"])).status_code == 404
    every = {**_rule(exps["A"]), "experiment_ids": []}
    assert _post(p, tok["alice"], "/alerts/rules/create", every).status_code == 403
    assert _post(p, tok["admin"], "/alerts/rules/create", every).status_code == 200
    listed = requests.get(p.base + "/api/v1/alerts/rules/list",
                          params={"experiment_id": exps["A"]}, timeout=30,
                          headers={"Authorization": f"Bearer {tok['bob']}"})
    assert listed.status_code == 200 and [r["rule_id"] for r in listed.json()["rules"]] == [rid]
    assert _post(p, tok["bob"], "/alerts/rules/mute", {"rule_id": rid}).status_code == 403
    assert _post(p, tok["alice"], "/alerts/rules/mute", {"rule_id": rid}).status_code == 200
    hook = {"url": "http://127.0.0.1:9/x", "events": ["run.created"]}
    assert _post(p, tok["alice"], "/webhooks/create", hook).status_code == 403
    assert _post(p, tok["admin"], "/webhooks/create", hook).status_code == 200
    assert _post(p, tok["bob"], "/alerts/rules/delete", {"rule_id": rid}).status_code == 403
    assert _post(p, tok["alice"], "/alerts/rules/delete", {"rule_id": rid}).status_code == 200


def test_grpc_rules_need_the_experiments_permissions(
        secured: tuple[Proc, dict[str, str], dict[str, str]]) -> None:
    p, tok, exps = secured
    with grpc.insecure_channel(f"127.0.0.1:{p.grpc_port}") as ch:
        stub = apb_grpc.AlertServiceStub(ch)

        def create(user: str, exp: str) -> Any:
            return stub.CreateRule(apb.CreateRuleRequest(rule=apb.Rule(
                name="g", experiment_ids=[exp], condition=apb.Condition(
                    type="nonfinite", metric="loss"))),
                metadata=[("authorization", f"Bearer {tok[user]}")])

        made = create("alice", exps["A"])
        assert made.rule.rule_id
        for user, exp, code in (("bob", exps["A"], grpc.StatusCode.PERMISSION_DENIED),
                                ("alice", exps["B"], grpc.StatusCode.NOT_FOUND)):
            with pytest.raises(grpc.RpcError) as e:
                create(user, exp)
            assert e.value.code() == code
        with pytest.raises(grpc.RpcError) as e:
            stub.DeleteRule(apb.RuleRef(rule_id=made.rule.rule_id),
                            metadata=[("authorization", f"Bearer {tok['bob']}")])
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub.DeleteRule(apb.RuleRef(rule_id=made.rule.rule_id),
                        metadata=[("authorization", f"Bearer {tok['alice']}")])


def test_http_channels_ids_and_run_id_for_a_user_who_is_not_an_admin(
        secured: tuple[Proc, dict[str, str], dict[str, str]]) -> None:
    """A security tester's findings: a rule's channels only within a webhook's scope (and
    no oracle of which webhook ids exist), canonical experiment ids, 400s for an
    out-of-range rule id (it failed inside the permission check: a 403) and for
    `mf.alert` without a run id (a 404 "run '' does not exist")."""
    p, tok, exps = secured
    huge = "99999999999999999999"

    def hook(scope: list[str]) -> str:
        r = _post(p, tok["admin"], "/webhooks/create", {
            "url": "http://127.0.0.1:9/x", "events": ["run.created"], "experiment_ids": scope})
        assert r.status_code == 200, r.text
        return str(r.json()["webhook"]["webhook_id"])

    in_b, in_a, every = hook([exps["B"]]), hook([exps["A"]]), hook([])
    scoped = _post(p, tok["alice"], "/alerts/rules/create", {**_rule(exps["A"]),
                                                              "channels": [in_b]})
    missing = _post(p, tok["alice"], "/alerts/rules/create", {**_rule(exps["A"]),
                                                               "channels": ["2000000000"]})
    assert scoped.status_code == missing.status_code == 400, (scoped.text, missing.text)
    assert f"webhook {in_b}" in scoped.json()["message"]
    assert (scoped.json()["message"].replace(in_b, "N")
            == missing.json()["message"].replace("2000000000", "N"))
    made = _post(p, tok["alice"], "/alerts/rules/create", {
        **_rule("0" + exps["A"]), "channels": [in_a, every]})
    assert made.status_code == 200, made.text
    rule = made.json()["rule"]
    assert rule["experiment_ids"] == [exps["A"]] and rule["channels"] == [in_a, every]
    listed = requests.get(p.base + "/api/v1/alerts/rules/list",
                          params={"experiment_id": exps["A"]}, timeout=30,
                          headers={"Authorization": f"Bearer {tok['alice']}"})
    assert rule["rule_id"] in [r["rule_id"] for r in listed.json()["rules"]]
    for path, body in (("/alerts/rules/mute", {"rule_id": huge}),
                       ("/alerts/rules/delete", {"rule_id": huge}),
                       ("/alerts/rules/mute", {"rule_id": rule["rule_id"], "duration_s": 1e308})):
        r = _post(p, tok["alice"], path, body)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.get(p.base + "/api/v1/alerts/list", params={"rule_id": huge}, timeout=30,
                     headers={"Authorization": f"Bearer {tok['alice']}"})
    assert r.status_code == 400 and "rule_id" in r.json()["message"], r.text
    r = _post(p, tok["alice"], "/alerts/notify", {"title": "t"})
    assert r.status_code == 400 and "run_id is required" in r.json()["message"], r.text
    assert _post(p, tok["alice"], "/alerts/rules/delete",
                 {"rule_id": rule["rule_id"]}).status_code == 200
