"""Governance end to end on a real server with auth on: the MLflow REST API, /api/v1, gRPC
and the `metricflow` CLI (child processes), with the policy gate reading the data plane
(chDB) and the artifact store.

Hostile cases: policy bypass attempts through the MLflow REST API and /api/v1, the
requester approving their own request, one approver voting twice, and an audit log
edited in the database behind the server's back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from metricflow.auth import AuthStore
from metricflow.auth._types import AuthConfig
from metricflow.governance import GovernanceClient, open_channel

pytestmark = pytest.mark.timeout(600)
POLICY = """
description = "production readiness"
applies_to = ["stage:Staging", "stage:Production", "alias:champion"]

[[rules]]
name = "documented"
require = ["description", "signature", "artifact:model_card.md"]

[[rules]]
name = "accurate"
run = "metrics.val_accuracy >= 0.9"

[[rules]]
name = "trained-on-data"
require = ["training_dataset"]

[[rules]]
name = "fresh"
max_age_days = 30
"""


class Env:
    def __init__(self, srv: Any, tokens: dict[str, str], data: Path) -> None:
        self.srv = srv
        self.tokens = tokens
        self.http = f"http://127.0.0.1:{srv.server.http_port}"
        self.grpc = f"grpc://{srv.target}"
        self.db = f"sqlite:///{data}/metadata.db"

    def h(self, user: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[user]}"}

    def mlflow(self, user: str, verb: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(verb, f"{self.http}/api/2.0/mlflow{path}", headers=self.h(user),
                             timeout=60, **kw)

    def api(self, user: str, verb: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(verb, f"{self.http}/api/v1{path}", headers=self.h(user),
                             timeout=60, **kw)

    def grpc_client(self, user: str) -> GovernanceClient:
        return GovernanceClient(open_channel(self.grpc, self.tokens[user]))

    def cli(self, user: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "METRICFLOW_TRACKING_URI": self.grpc}
        if user:
            env["METRICFLOW_TOKEN"] = self.tokens[user]
        return subprocess.run([sys.executable, "-m", "metricflow.server.cli", *args],
                              capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    data = tmp_path_factory.mktemp("mf-gov")
    cfg = ServerConfig(data_dir=str(data), grpc_port=0, http_port=0,
                       security=SecurityConfig(auth_mode="on", auth=AuthConfig()))
    with ServerThread(cfg) as srv:
        auth = AuthStore(srv.server.metadata.engine)
        tokens = {}
        for user in ("admin", "alice", "bob", "carol"):
            auth.create_user(user, is_admin=user == "admin", actor="setup")
            tokens[user] = auth.create_token(user, actor="setup")[1]
        yield Env(srv, tokens, data)


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def version(env: Env, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Model `fraud` v1 from a run with val_accuracy 0.85, no dataset, no model card."""
    run = _ok(env.mlflow("admin", "POST", "/runs/create", json={"experiment_id": "0"}))
    run_id = run["run"]["info"]["run_id"]
    _ok(env.mlflow("admin", "POST", "/runs/log-metric",
                   json={"run_id": run_id, "key": "val_accuracy", "value": 0.85,
                         "timestamp": 1, "step": 0}))
    tmp = tmp_path_factory.mktemp("model")
    (tmp / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    env.srv.server.components.artifacts.put_file(run_id, "model/MLmodel", tmp / "MLmodel")
    _ok(env.mlflow("admin", "POST", "/registered-models/create", json={"name": "fraud"}))
    mv = _ok(env.mlflow("admin", "POST", "/model-versions/create",
                        json={"name": "fraud", "source": f"runs:/{run_id}/model",
                              "run_id": run_id}))
    assert mv["model_version"]["version"] == "1"
    _ok(env.api("admin", "POST", "/auth/permissions/registered-models/set",
                json={"name": "fraud", "username": "alice", "permission": "EDIT"}))
    return {"run_id": run_id, "dir": str(tmp)}


def test_policies_cannot_be_bypassed_then_pass(env: Env, version: dict[str, str]) -> None:
    policy_file = Path(version["dir"]) / "prod.toml"
    policy_file.write_text(POLICY)
    r = env.cli("alice", "policy", "put", "prod", str(policy_file))
    assert r.returncode == 1 and "PERMISSION_DENIED" in r.stderr, r  # admins only
    r = env.cli("admin", "policy", "put", "prod", str(policy_file))
    assert r.returncode == 0 and "version 1 is in force" in r.stdout, r
    # Bypass attempts: the MLflow REST API and /api/v1 both meet the same gate.
    r = env.mlflow("alice", "POST", "/model-versions/transition-stage",
                   json={"name": "fraud", "version": "1", "stage": "Staging",
                         "archive_existing_versions": False})
    assert r.status_code == 400, r.text
    msg = r.json()["message"]
    assert r.json()["error_code"] == "INVALID_STATE"
    assert "[prod/accurate]" in msg and "metrics.val_accuracy = 0.85" in msg
    assert "[prod/documented]" in msg and "model_card.md" in msg and "signature" in msg
    assert "[prod/trained-on-data]" in msg
    r = env.api("alice", "POST", "/model-versions/transition-stage",
                json={"name": "fraud", "version": "1", "stage": "Staging"})
    assert r.status_code == 400 and "[prod/accurate]" in r.text, r.text
    r = env.mlflow("alice", "POST", "/registered-models/alias",
                   json={"name": "fraud", "alias": "champion", "version": "1"})
    assert r.status_code == 400 and "policy rule" in r.text, r.text
    assert _ok(env.mlflow("alice", "GET", "/model-versions/get",
                          params={"name": "fraud", "version": "1"})
               )["model_version"]["current_stage"] == "None"
    # The dry run names every violation and exits 1.
    r = env.cli("alice", "policy", "check", "fraud", "1", "--stage", "Production")
    assert r.returncode == 1 and r.stdout.count("VIOLATION") == 5, r
    # Meet them: a better metric, the training dataset (MLflow log-inputs), a card, a
    # signature, a description.
    run_id = version["run_id"]
    _ok(env.mlflow("admin", "POST", "/runs/log-metric",
                   json={"run_id": run_id, "key": "val_accuracy", "value": 0.93,
                         "timestamp": 2, "step": 1}))
    _ok(env.mlflow("admin", "POST", "/runs/log-inputs", json={"run_id": run_id, "datasets": [{
        "tags": [{"key": "mlflow.data.context", "value": "training"}],
        "dataset": {"name": "transactions", "digest": "d1g3st", "source_type": "s3",
                    "source": "{\"uri\": \"s3://data/tx\"}", "schema": "{}"}}]}))
    tmp = Path(version["dir"])
    (tmp / "MLmodel").write_text("flavors:\n  python_function: {}\nsignature:\n  inputs: '[]'\n")
    (tmp / "model_card.md").write_text("# Fraud model\n")
    art = env.srv.server.components.artifacts
    art.put_file(run_id, "model/MLmodel", tmp / "MLmodel")
    art.put_file(run_id, "model/model_card.md", tmp / "model_card.md")
    _ok(env.mlflow("alice", "PATCH", "/model-versions/update",
                   json={"name": "fraud", "version": "1", "description": "v1"}))
    r = env.cli("alice", "policy", "check", "fraud", "1")
    assert r.returncode == 0 and "every policy passes" in r.stdout, r
    _ok(env.mlflow("alice", "POST", "/model-versions/transition-stage",
                   json={"name": "fraud", "version": "1", "stage": "Staging",
                         "archive_existing_versions": False}))


def test_four_eyes_over_every_surface(env: Env, version: dict[str, str]) -> None:
    admin = env.grpc_client("admin")
    admin.call("ProtectTarget", kind="stage", pattern="Production", name="fraud",
               approvals_required=2)
    for user in ("bob", "carol", "alice"):
        r = env.cli("admin", "approvals", "grant", user, "--model", "fraud")
        assert r.returncode == 0, r
    # Through the MLflow REST API: refused, naming the request it created.
    r = env.mlflow("alice", "POST", "/model-versions/transition-stage",
                   json={"name": "fraud", "version": "1", "stage": "Production",
                         "archive_existing_versions": False})
    assert r.status_code == 400, r.text
    assert "protected" in r.json()["message"] and "approval request" in r.json()["message"]
    listed = env.cli("bob", "approvals", "list", "--state", "pending", "--json")
    reqs = json.loads(listed.stdout)["requests"]
    assert len(reqs) == 1 and reqs[0]["requester"] == "alice", listed
    rid = reqs[0]["request_id"]
    assert f"approval request {rid} " in r.json()["message"]
    # Self-approval through /api/v1 and gRPC: refused.
    r = env.api("alice", "POST", "/approvals/approve", json={"request_id": rid})
    assert r.status_code == 403 and "four eyes" in r.text, r.text
    with pytest.raises(Exception, match="four eyes"):
        env.grpc_client("alice").call("ApproveRequest", request_id=rid)
    # bob approves with the CLI, then tries again.
    r = env.cli("bob", "approvals", "approve", str(rid), "--comment", "metrics fine")
    assert r.returncode == 0 and "pending" in r.stdout and "1/2" in r.stdout, r
    r = env.cli("bob", "approvals", "approve", str(rid))
    assert r.returncode == 1 and "already voted" in r.stderr, r
    # carol's approval over gRPC applies it.
    out = env.grpc_client("carol").call("ApproveRequest", request_id=rid, comment="ok")
    assert out["request"]["state"] == "applied"
    mv = _ok(env.mlflow("bob", "GET", "/model-versions/get",
                        params={"name": "fraud", "version": "1"}))["model_version"]
    assert mv["current_stage"] == "Production"
    entries = _ok(env.api("admin", "GET", "/audit-log/search",
                          params={"model_name": "fraud"}))["entries"]
    actions = [e["action"] for e in entries]
    assert {"request_approval", "approve_request", "applied_request"} <= set(actions)
    # A protected alias is not removed behind the gate, by any surface.
    admin.call("ProtectTarget", kind="alias", pattern="champion", name="fraud",
               approvals_required=1)
    r = env.mlflow("alice", "POST", "/registered-models/alias",
                   json={"name": "fraud", "alias": "champion", "version": "1"})
    assert r.status_code == 400 and "approval request" in r.json()["message"], r.text
    rid = json.loads(env.cli("bob", "approvals", "list", "--state", "pending", "--json")
                     .stdout)["requests"][0]["request_id"]
    assert env.cli("bob", "approvals", "approve", str(rid), "--comment", "ok").returncode == 0
    r = env.mlflow("admin", "DELETE", "/model-versions/delete",  # (needs MANAGE)
                   json={"name": "fraud", "version": "1"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_STATE", r.text
    assert "has protected alias 'champion'" in r.json()["message"], r.text
    assert "deleting version 1 would remove it" in r.text, r.text
    r = env.mlflow("alice", "POST", "/registered-models/rename",
                   json={"name": "fraud", "new_name": "fraud-x"})
    assert r.status_code == 400 and "renaming the model" in r.text, r.text
    # Removing it makes a request (the CLI can ask too); bob's approval removes it.
    r = env.mlflow("alice", "DELETE", "/registered-models/alias",
                   json={"name": "fraud", "alias": "champion"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_STATE", r.text
    assert "its removal (from version 1) was not applied" in r.json()["message"], r.text
    asked = env.cli("alice", "approvals", "request", "fraud", "1", "--remove-alias",
                    "champion", "--comment", "retire it", "--json")
    req = json.loads(asked.stdout)["request"]
    assert (req["kind"], req["target"], req["state"]) == ("unalias", "champion", "pending")
    assert f"approval request {req['request_id']} " in r.json()["message"]  # the same one
    assert _ok(env.mlflow("bob", "GET", "/registered-models/alias",
                          params={"name": "fraud", "alias": "champion"})
               )["model_version"]["version"] == "1"
    r = env.cli("bob", "approvals", "approve", str(req["request_id"]), "--comment", "ok")
    assert r.returncode == 0 and "applied" in r.stdout, r
    r = env.mlflow("bob", "GET", "/registered-models/alias",
                   params={"name": "fraud", "alias": "champion"})
    assert r.status_code == 400 and "alias champion not found" in r.text, r.text  # (MLflow's)


def test_lineage_over_grpc_http_and_cli(env: Env, version: dict[str, str]) -> None:
    run_id = version["run_id"]
    # Through the MLflow REST API (as mlflow.log_input sends it); logging it again is fine.
    _ok(env.mlflow("admin", "POST", "/runs/log-inputs", json={"run_id": run_id, "datasets": [{
        "tags": [{"key": "mlflow.data.context", "value": "training"}],
        "dataset": {"name": "transactions", "digest": "d1g3st", "source_type": "s3",
                    "source": "{}", "schema": "{}"}}]}))
    g = env.grpc_client("bob").call("GetLineage", name="fraud", version="1")
    edges = {(e["source"], e["target"], e["relation"]) for e in g["edges"]}
    assert ("dataset:transactions@d1g3st", f"run:{run_id}", "training") in edges
    assert (f"run:{run_id}", "model_version:fraud/1", "produced") in edges
    h = _ok(env.api("bob", "GET", "/lineage/model-version",
                    params={"name": "fraud", "version": "1"}))
    assert h["root"] == "model_version:fraud/1" and len(h["edges"]) == len(g["edges"])
    r = env.cli("bob", "lineage", "trained-on", "d1g3st")
    assert r.returncode == 0 and f"fraud v1 (run {run_id})" in r.stdout, r
    r = env.cli("bob", "lineage", "show", "fraud", "1")
    assert "dataset:transactions@d1g3st --training-->" in r.stdout, r
    # Native recording (gRPC), then the one-query question over gRPC.
    admin = env.grpc_client("admin")
    admin.call("LogRunInputs", run_id=run_id, datasets=[
        {"name": "labels", "digest": "l4b3l5", "source_type": "delta",
         "context": "training", "tags": {"owner": "risk"}}])
    out = admin.call("VersionsTrainedOn", digest="l4b3l5")
    assert [(v["model_name"], v["version"]) for v in out["versions"]] == [("fraud", "1")]
    nodes = {n["id"]: json.loads(n["attrs_json"]) for n in
             admin.call("GetLineage", name="fraud", version="1")["nodes"]}
    assert nodes["labels@l4b3l5"]["source_type"] == "delta"
    # Native recording needs EDIT on the run: bob only reads.
    r = env.api("bob", "POST", "/lineage/log-inputs",
                json={"run_id": run_id, "datasets": [{"name": "x", "digest": "y"}]})
    assert r.status_code == 403, r.text


def test_audit_verify_export_and_tampering(env: Env, version: dict[str, str],
                                           tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"operator-secret-key-0123456789")
    r = env.cli(None, "audit", "verify", "--metadata", env.db, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"] and report["entries"] >= 10, r
    out = tmp_path / "audit.jsonl"
    r = env.cli(None, "audit", "export", "--metadata", env.db, "--format", "jsonl",
                "--output", str(out), "--key-file", str(key))
    assert r.returncode == 0, r
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) >= report["entries"] and rows[0]["prev_hash"] == "0" * 64
    anchor = json.loads(Path(str(out) + ".anchor.json").read_text())
    assert all("model_id" in row for row in rows)  # every hashed field is exported
    # The report re-verifies on its own, against its anchor.
    anchor_file = str(out) + ".anchor.json"
    r = env.cli(None, "audit", "verify", "--export", str(out), "--anchor", anchor_file,
                "--key-file", str(key), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r
    edited = tmp_path / "edited.jsonl"
    lines = out.read_text().splitlines()
    row = json.loads(lines[3])
    row["actor"] = "mallory"
    lines[3] = json.dumps(row)
    edited.write_text("\n".join(lines) + "\n")
    r = env.cli(None, "audit", "verify", "--export", str(edited))
    assert r.returncode == 2 and f"BROKEN at entry {row['id']} (edited)" in r.stdout, r
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**anchor, "head_hash": "0" * 64}))
    r = env.cli(None, "audit", "verify", "--metadata", env.db, "--anchor", str(forged),
                "--key-file", str(key))
    assert r.returncode == 2 and "anchor FORGED" in r.stdout, r
    # Mistakes are errors naming what is wrong, never tracebacks or new files.
    missing_db = tmp_path / "nope.db"
    for args, says in [
            (("verify", "--metadata", f"sqlite:///{missing_db}"), "no control-plane database"),
            (("verify", "--metadata", env.db, "--anchor", str(tmp_path / "x.json"),
              "--key-file", str(key)), "cannot read the anchor"),
            (("verify", "--metadata", env.db, "--anchor", anchor_file, "--key-file",
              str(tmp_path / "nokey")), "cannot read the key file"),
            (("export", "--metadata", env.db, "--output", str(tmp_path / "no" / "x.csv")),
             "cannot write")]:
        r = env.cli(None, "audit", *args)
        assert r.returncode == 1 and says in r.stderr and "Traceback" not in r.stderr, r
    assert not missing_db.exists()
    csv_out = tmp_path / "audit.csv"
    r = env.cli(None, "audit", "export", "--metadata", env.db, "--format", "csv",
                "--since", "2000-01-01", "--output", str(csv_out))
    assert r.returncode == 0 and csv_out.read_text().startswith("id,ts,time,actor"), r
    # An insider rewrites who made a change: verify names the entry.
    engine = sa.create_engine(env.db)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        victim = conn.execute(sa.text("SELECT id FROM audit_log WHERE action = "
                                      "'create_registered_model' ORDER BY id LIMIT 1")
                              ).scalar()
        assert victim is not None
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE id = :i"),
                     {"i": victim})
    engine.dispose()
    r = env.cli(None, "audit", "verify", "--metadata", env.db)
    assert r.returncode == 2 and f"BROKEN at entry {victim} (edited)" in r.stdout, r
    r = env.cli(None, "audit", "verify", "--metadata", env.db, "--anchor",
                str(out) + ".anchor.json", "--key-file", str(key), "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["problem"]["entry_id"] == victim
    assert anchor["head_id"] >= victim


def test_runs_lifecycle_is_in_the_chain(env: Env) -> None:
    run_id = _ok(env.mlflow("admin", "POST", "/runs/create",
                            json={"experiment_id": "0"}))["run"]["info"]["run_id"]
    _ok(env.mlflow("admin", "POST", "/runs/update",
                   json={"run_id": run_id, "status": "FINISHED", "end_time": 5}))
    _ok(env.mlflow("admin", "POST", "/runs/delete", json={"run_id": run_id}))
    _ok(env.mlflow("admin", "POST", "/runs/restore", json={"run_id": run_id}))
    engine = sa.create_engine(env.db)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT action, actor, after_json FROM audit_log WHERE "
                                    "entity_type = 'run' AND entity_id = :r ORDER BY id"),
                            {"r": run_id}).all()
    engine.dispose()
    assert [r.action for r in rows] == ["create_run", "end_run", "delete_run", "restore_run"]
    assert {r.actor for r in rows} == {"admin"}
    assert json.loads(rows[1].after_json)["status"] == "FINISHED"


def test_cli_request_reject_and_administration(env: Env, version: dict[str, str]) -> None:
    r = env.cli("admin", "approvals", "protect", "--alias", "prod-*", "--model", "fraud",
                "--expiry-s", "3600", "--json")
    assert r.returncode == 0, r
    target_id = json.loads(r.stdout)["target_id"]
    r = env.cli("alice", "approvals", "protect", "--alias", "x-*")
    assert r.returncode == 1 and "PERMISSION_DENIED" in r.stderr, r  # admins only
    r = env.cli("alice", "approvals", "request", "fraud", "1", "--alias", "prod-eu",
                "--comment", "roll out in the EU", "--json")
    assert r.returncode == 0, r
    req = json.loads(r.stdout)["request"]
    assert (req["state"], req["kind"], req["target"]) == ("pending", "alias", "prod-eu")
    assert int(req["expires_at"]) > int(req["created_at"])
    r = env.cli("carol", "approvals", "reject", str(req["request_id"]), "--comment", "not yet")
    assert r.returncode == 0 and "rejected" in r.stdout, r
    r = env.cli("bob", "approvals", "show", str(req["request_id"]), "--json")
    votes = json.loads(r.stdout)["request"]["votes"]
    assert [(v["approver"], v["decision"], v["comment"]) for v in votes] == [
        ("carol", "reject", "not yet")]
    r = env.cli("bob", "approvals", "protected", "--model", "fraud")
    assert "alias 'prod-*' on fraud" in r.stdout and "expires after 3600 s" in r.stdout, r
    assert env.cli("admin", "approvals", "unprotect", str(target_id)).returncode == 0
    r = env.mlflow("alice", "POST", "/registered-models/alias",
                   json={"name": "fraud", "alias": "prod-eu", "version": "1"})
    assert r.status_code == 200, r.text  # no longer protected (the policy skips prod-*)
    r = env.cli("admin", "approvals", "revoke", "alice", "--model", "fraud")
    assert r.returncode == 0, r
    r = env.cli("bob", "approvals", "approvers", "--model", "fraud")
    assert "alice" not in r.stdout and "bob on fraud" in r.stdout, r
    r = env.cli("admin", "policy", "delete", "prod")
    assert r.returncode == 0 and "version 2" in r.stdout, r
    r = env.cli("bob", "policy", "list", "--history")
    assert "prod v1 by admin" in r.stdout and "prod v2 (deleted)" in r.stdout, r


def test_lists_show_only_readable_models(env: Env, version: dict[str, str]) -> None:
    _ok(env.mlflow("admin", "POST", "/registered-models/create", json={"name": "hidden"}))
    _ok(env.mlflow("admin", "POST", "/model-versions/create",
                   json={"name": "hidden", "source": f"runs:/{version['run_id']}/model"}))
    _ok(env.api("admin", "POST", "/auth/permissions/registered-models/set",
                json={"name": "hidden", "username": "bob", "permission": "NO_PERMISSIONS"}))
    for model in ("hidden", "fraud"):
        env.grpc_client("admin").call("ProtectTarget", kind="stage", pattern="Archived",
                                      name=model)
        r = env.api("admin", "POST", "/model-versions/transition-stage",
                    json={"name": model, "version": "1", "stage": "Archived"})
        assert r.status_code == 400 and "approval request" in r.text, r.text
    seen = {u: {q["model_name"] for q in json.loads(env.cli(
        u, "approvals", "list", "--json").stdout)["requests"]} for u in ("bob", "carol")}
    assert "hidden" in seen["carol"] and "hidden" not in seen["bob"] and "fraud" in seen["bob"]
    targets = env.grpc_client("bob").call("ListProtectedTargets")["targets"]
    assert "hidden" not in {t["model_name"] for t in targets}
    assert "hidden" in {t["model_name"] for t in
                        env.grpc_client("carol").call("ListProtectedTargets")["targets"]}


def test_a_read_only_token_cannot_vote(env: Env, version: dict[str, str]) -> None:
    ro = AuthStore(env.srv.server.metadata.engine).create_token("carol", scopes=("read",),
                                                                actor="setup")[1]
    env.grpc_client("admin").call("ProtectTarget", kind="alias", pattern="ro-*", name="fraud")
    r = env.cli("alice", "approvals", "request", "fraud", "1", "--alias", "ro-1",
                "--comment", "try", "--json")
    assert r.returncode == 0, r
    rid = json.loads(r.stdout)["request"]["request_id"]
    for path in ("/approvals/approve", "/approvals/reject"):
        r = httpx.post(f"{env.http}/api/v1{path}", json={"request_id": rid, "comment": "x"},
                       headers={"authorization": f"Bearer {ro}"}, timeout=60)
        assert r.status_code == 403 and "scopes" in r.text, r.text
    assert json.loads(env.cli("bob", "approvals", "show", str(rid), "--json").stdout
                      )["request"]["votes"] == []
