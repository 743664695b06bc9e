"""Deployments end to end on a secured embedded server: /api/v1, gRPC, the CLI, the audit
log, MANAGE on the model, serve-process status reports, and the report read from real
request-log runs (checked against scipy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import stats

from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig, Permission
from metricflow.entities import Guardrails, StickyKey, Variant
from metricflow.errors import InvalidArgument, NotFound, PermissionDenied
from metricflow.serving import (
    KEY_ERROR,
    KEY_LATENCY,
    TAG_DEPLOYMENT,
    TAG_ROLE,
    TAG_VARIANT,
    TAG_VERSION,
    DeployClient,
    experiment_name,
)
from metricflow.serving._deploy_client import open_channel


@dataclass
class Srv:
    srv: Any
    tokens: dict[str, str]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.srv.server.http_port}"

    @property
    def uri(self) -> str:
        return f"grpc://{self.srv.target}"

    def post(self, user: str, path: str, body: Any) -> httpx.Response:
        return httpx.post(self.http + path, json=body, timeout=30,
                          headers={"authorization": f"Bearer {self.tokens[user]}"})

    def get(self, user: str, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.http + path, params=params, timeout=30,
                         headers={"authorization": f"Bearer {self.tokens[user]}"})

    def deploy(self, user: str) -> DeployClient:
        return DeployClient(open_channel(self.uri, self.tokens[user]))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Srv]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-deploy")), grpc_port=0,
                       http_port=0, security=SecurityConfig(
                           auth_mode="on", auth=AuthConfig(default_permission="NO_PERMISSIONS")))
    with ServerThread(cfg) as s:
        store = AuthStore(s.server.metadata.engine)
        store.create_user("admin", is_admin=True)
        for u in ("owner", "reader", "editor", "stranger"):
            store.create_user(u)
        tokens = {u: store.create_token(u)[1]
                  for u in ("admin", "owner", "reader", "editor", "stranger")}
        meta = s.server.metadata
        meta.create_registered_model("clf", actor="admin")
        for i in (1, 2, 3):
            meta.create_model_version("clf", f"s3://bucket/clf/{i}", actor="admin")
        meta.set_registered_model_alias("clf", "champion", 1, actor="admin")
        meta.set_registered_model_alias("clf", "challenger", 2, actor="admin")
        store.set_model_permission("clf", "owner", Permission.MANAGE, actor="admin")
        store.set_model_permission("clf", "reader", Permission.READ, actor="admin")
        store.set_model_permission("clf", "editor", Permission.EDIT, actor="admin")
        yield Srv(s, tokens)


SPEC = {"name": "fraud", "model_name": "clf",
        "variants": [{"name": "champ", "alias": "champion", "weight": 90},
                     {"name": "canary", "alias": "challenger", "weight": 10},
                     {"name": "next", "version": "3", "shadow": True, "weight": 0.5}],
        "sticky_key": "header:X-User-Id",
        "guardrails": {"max_error_rate": 0.05, "max_latency_p99_ms": 250, "window_s": 30}}


def test_http_lifecycle_permissions_audit_and_status(srv: Srv) -> None:
    # Changes need MANAGE on the model: READ and EDIT holders are refused, strangers see nothing.
    assert srv.post("reader", "/api/v1/deployments/create", SPEC).status_code == 403
    assert srv.post("editor", "/api/v1/deployments/create", SPEC).status_code == 403
    assert srv.post("stranger", "/api/v1/deployments/create", SPEC).status_code == 404
    r = srv.post("owner", "/api/v1/deployments/create", SPEC)
    assert r.status_code == 200, r.text
    d = r.json()["deployment"]
    assert [(v["name"], v["resolved_version"], v["source"]) for v in d["variants"]] == [
        ("champ", "1", "s3://bucket/clf/1"), ("canary", "2", "s3://bucket/clf/2"),
        ("next", "3", "s3://bucket/clf/3")]
    assert d["sticky_key"] == {"source": "header", "name": "x-user-id"}
    assert d["fallback"] == "champ"

    # Reads: READ on the model; a serve process polls /get.
    got = srv.get("reader", "/api/v1/deployments/get", name="fraud")
    assert got.status_code == 200 and got.json()["deployment"]["row_version"] == 1
    hidden = srv.get("stranger", "/api/v1/deployments/get", name="fraud")
    missing = srv.get("stranger", "/api/v1/deployments/get", name="no-such-deployment")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["message"] == missing.json()["message"].replace(
        "no-such-deployment", "fraud")  # the model's name is not revealed
    assert [x["name"] for x in srv.get("reader", "/api/v1/deployments/list").json()
            ["deployments"]] == ["fraud"]
    assert srv.get("stranger", "/api/v1/deployments/list").json()["deployments"] == []

    # An alias move shows up in the next poll, with no change to the deployment itself.
    srv.srv.server.metadata.set_registered_model_alias("clf", "challenger", 3, actor="admin")
    d = srv.get("reader", "/api/v1/deployments/get", name="fraud").json()["deployment"]
    assert d["variants"][1]["resolved_version"] == "3" and d["row_version"] == 1

    # Serve processes report with EDIT: a load failure, then a guardrail trip.
    bad = {"name": "fraud", "variant": "canary", "state": "load_failed", "version": "3",
           "reason": "ModuleNotFoundError: xgboost", "reporter": "host-a:8080"}
    assert srv.post("reader", "/api/v1/deployments/report-status", bad).status_code == 403
    r = srv.post("editor", "/api/v1/deployments/report-status", bad)
    assert r.status_code == 200, r.text
    assert r.json()["deployment"]["statuses"][0]["state"] == "load_failed"
    # A second process saying the same thing is not a second audit entry.
    assert srv.post("editor", "/api/v1/deployments/report-status",
                    {**bad, "reporter": "host-b:8080"}).status_code == 200
    trip = {"name": "fraud", "variant": "canary", "state": "out_of_rotation", "version": "3",
            "reason": "error rate 0.31 > 0.05 over 30 s", "reporter": "host-a:8080"}
    assert srv.post("editor", "/api/v1/deployments/report-status", trip).status_code == 200

    # Update: MANAGE; the changed canary's status is cleared (a fresh chance).
    upd = {"name": "fraud", "variants": [{"name": "champ", "alias": "champion", "weight": 50},
                                         {"name": "canary", "version": "2", "weight": 50}],
           "expected_version": 1, "comment": "50/50 on v2"}
    assert srv.post("editor", "/api/v1/deployments/update", upd).status_code == 403
    r = srv.post("owner", "/api/v1/deployments/update", upd)
    assert r.status_code == 200, r.text
    d = r.json()["deployment"]
    assert d["row_version"] == 2 and d["statuses"] == [] and len(d["variants"]) == 2
    # A stale expected_version is a conflict, and changes nothing.
    r = srv.post("owner", "/api/v1/deployments/update", {**upd, "description": "x"})
    assert r.status_code == 409 and "expected version 1, found 2" in r.json()["message"]

    # The audit log: who did what, with the rollback's reason.
    h = srv.get("owner", "/api/v1/deployments/history", name="fraud").json()["entries"]
    assert [(e["actor"], e["action"]) for e in h] == [
        ("owner", "create_deployment"), ("editor", "deployment_variant_load_failed"),
        ("editor", "deployment_variant_out_of_rotation"), ("owner", "update_deployment")]
    assert h[2]["comment"] == trip["reason"] and h[3]["comment"] == "50/50 on v2"
    assert h[3]["before"]["variants"][1]["alias"] == "challenger"
    # ... and the model's own audit search shows them too.
    model_log = srv.srv.server.metadata.search_audit_log(model_name="clf")[0]
    assert "update_deployment" in [e.action for e in model_log]
    assert srv.get("reader", "/api/v1/deployments/history", name="fraud").status_code == 403


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"variants": [{"name": "a", "alias": "champion", "weight": 0}]}, "variants.weight",
     "add up to more than 0"),
    ({"variants": [{"name": "a", "alias": "champion", "weight": -1}]}, "variants[0].weight",
     "≥ 0"),
    ({"variants": [{"name": "a", "alias": "nope"}]}, "variants[0].alias", "has no alias 'nope'"),
    ({"variants": [{"name": "a", "version": "99"}]}, "variants[0].version", "has no version 99"),
    ({"variants": [{"name": "a", "alias": "champion"}, {"name": "a", "version": "1"}]},
     "variants[1].name", "used twice"),
    ({"variants": [{"name": "a", "alias": "champion", "version": "1"}]}, "variants[0].alias",
     "exactly one of"),
    ({"name": "bad name!"}, "name", "letters, digits"),
    ({"variants": [{"name": "a", "alias": "champion"}, {"name": "s", "version": "1",
                                                        "shadow": True, "weight": 2}]},
     "variants[1].weight", "(0, 1]"),
    ({"guardrails": {"max_error_rate": 1.5}}, "guardrails.max_error_rate", "[0, 1]"),
    ({"guardrails": {"fallback": "zzz"}}, "guardrails.fallback", "not a routed variant"),
    ({"sticky_key": "cookie:x"}, "sticky_key.source", "header, field"),
])
def test_bad_specs_are_refused_naming_the_field(srv: Srv, body: dict[str, Any], field: str,
                                                words: str) -> None:
    spec = {"name": "bad", "model_name": "clf",
            "variants": [{"name": "a", "alias": "champion"}], **body}
    r = srv.post("admin", "/api/v1/deployments/create", spec)
    assert r.status_code in (400, 404), r.text
    assert words in r.json()["message"], r.json()
    # The same refusal over gRPC; the store's error names the field (in-process).
    with pytest.raises((InvalidArgument, NotFound)) as e:
        srv.deploy("admin").create(
            spec["name"], "clf", _variants(spec["variants"]),
            sticky_key=_sticky(spec.get("sticky_key")), guardrails=_guard(spec.get("guardrails")))
    assert words in str(e.value)
    with pytest.raises((InvalidArgument, NotFound)) as e:
        srv.srv.server.metadata.create_deployment(
            spec["name"], "clf", _variants(spec["variants"]),
            sticky_key=_sticky(spec.get("sticky_key")), guardrails=_guard(spec.get("guardrails")))
    assert e.value.details.get("field") == field
    assert srv.get("admin", "/api/v1/deployments/get", name="bad").status_code == 404


def _variants(raw: list[dict[str, Any]]) -> list[Variant]:
    return [Variant(v["name"], alias=v.get("alias", ""), version=v.get("version", ""),
                    weight=v.get("weight", 1.0), shadow=v.get("shadow", False)) for v in raw]


def _sticky(raw: str | None) -> StickyKey | None:
    return None if raw is None else StickyKey(*raw.split(":", 1))


def _guard(raw: dict[str, Any] | None) -> Guardrails | None:
    return None if raw is None else Guardrails(**raw)


def test_grpc_matches_http_and_refuses_without_manage(srv: Srv) -> None:
    owner, reader = srv.deploy("owner"), srv.deploy("reader")
    with pytest.raises(PermissionDenied):
        reader.create("grpc-dep", "clf", [Variant("a", alias="champion")])
    d = owner.create("grpc-dep", "clf", [Variant("a", alias="champion", weight=3),
                                         Variant("b", version="2", weight=1)],
                     guardrails=Guardrails(max_latency_p99_ms=100.0, fallback="a"))
    assert d.guardrails.max_latency_p99_ms == 100.0 and d.guardrails.max_error_rate is None
    got = reader.get("grpc-dep")
    assert "grpc-dep" in [x.name for x in reader.list_deployments("clf")]
    assert srv.deploy("stranger").list_deployments() == []  # filtered to readable models
    http = srv.get("reader", "/api/v1/deployments/get", name="grpc-dep").json()["deployment"]
    assert got.to_dict() == {k: v for k, v in http.items() if k != "fallback"}
    d2 = owner.update("grpc-dep", sticky_key=StickyKey("field", "user_id"))
    assert d2.sticky_key == StickyKey("field", "user_id") and d2.variants == got.variants
    srv.deploy("editor").report_status("grpc-dep", "b", "out_of_rotation", version="2",
                                       reason="p99 180 ms > 100 ms")
    assert reader.get("grpc-dep").status_of("b").state == "out_of_rotation"  # type: ignore[union-attr]
    # No request log yet: zero counts and no figures (null), the same over gRPC and HTTP.
    empty = reader.report("grpc-dep")
    assert [(v["variant"], v["count"], v["latency_ms"]["p99"]) for v in empty["variants"]] == [
        ("a", 0, None), ("b", 0, None)]
    assert empty["comparisons"][0]["latency_ms"]["fixed_horizon"] == {
        "test": "welch_t", "difference": None, "statistic": None, "p_value": None, "df": None,
        "ci_low": None, "ci_high": None}
    assert empty == srv.get("reader", "/api/v1/deployments/report", name="grpc-dep").json()
    with pytest.raises(NotFound):
        reader.report("grpc-dep", baseline="zzz")
    with pytest.raises(PermissionDenied):
        reader.delete("grpc-dep")
    owner.delete("grpc-dep")
    with pytest.raises(NotFound):
        reader.get("grpc-dep")
    # The history outlives the deployment.
    assert [e["action"] for e in srv.deploy("admin").history("grpc-dep")][-1] == \
        "delete_deployment"


def test_cli_create_show_update_list_delete(srv: Srv) -> None:
    def cli(*args: str, user: str = "owner") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "metricflow.server.cli", "deploy", *args,
             "--tracking-uri", srv.uri, "--token", srv.tokens[user]],
            capture_output=True, text=True, timeout=120)

    r = cli("create", "cli-dep", "--model", "clf", "--variant", "champ=@champion:90",
            "--variant", "canary=v2:10", "--shadow", "mirror=v3:0.25",
            "--sticky", "field:user_id", "--max-error-rate", "0.1", "--window-s", "20")
    assert r.returncode == 0, r.stderr
    assert "canary" in r.stdout and "10 (10.0%)" in r.stdout and "mirror 25%" in r.stdout
    r = cli("show", "cli-dep", "--json", user="reader")
    d = json.loads(r.stdout)
    assert d["guardrails"]["max_error_rate"] == 0.1 and d["guardrails"]["window_s"] == 20
    r = cli("update", "cli-dep", "--max-p99-ms", "300", "--comment", "add latency guard")
    assert r.returncode == 0, r.stderr
    d = json.loads(cli("show", "cli-dep", "--json").stdout)
    assert d["guardrails"]["max_latency_p99_ms"] == 300 and d["guardrails"]["max_error_rate"] == 0.1
    assert "cli-dep" in cli("list", "--model", "clf").stdout
    srv.deploy("editor").report_status("cli-dep", "canary", "out_of_rotation", version="2",
                                       reason="error rate 0.4 > 0.1")
    assert "[out_of_rotation v2: error rate 0.4 > 0.1" in cli("show", "cli-dep").stdout
    r = cli("restore", "cli-dep", "canary", "--comment", "fixed upstream", user="editor")
    assert r.returncode == 0, r.stderr
    h = srv.deploy("owner").history("cli-dep")
    assert [(e["action"], e["comment"]) for e in h[-2:]] == [
        ("deployment_variant_out_of_rotation", "error rate 0.4 > 0.1"),
        ("deployment_variant_serving", "fixed upstream")]
    r = cli("delete", "cli-dep", user="reader")
    assert r.returncode == 1 and "MANAGE" in r.stderr
    r = cli("create", "cli-bad", "--model", "clf", "--variant", "a=@champion:0")
    assert r.returncode == 1 and "weights must add up to more than 0" in r.stderr
    assert cli("delete", "cli-dep").returncode == 0


def test_report_from_request_log_matches_scipy(srv: Srv) -> None:
    """Runs logged as serve logs them; the report's figures are scipy's."""
    import metricflow as mf

    owner = srv.deploy("owner")
    owner.create("ab", "clf", [Variant("champ", alias="champion", weight=90),
                               Variant("canary", version="2", weight=10)])
    rng = np.random.default_rng(7)
    data = {"champ": (rng.gamma(4.0, 5.0, 900), rng.random(900) < 0.02,
                      (rng.random(900) < 0.10).astype(float), rng.normal(10.0, 3.0, 900)),
            "canary": (rng.gamma(4.0, 6.0, 300), rng.random(300) < 0.05,
                       (rng.random(300) < 0.16).astype(float), rng.normal(11.0, 3.5, 300))}
    c = mf.Client(srv.uri, token=srv.tokens["owner"], linger_ms=5)
    try:
        exp = c.get_or_create_experiment(experiment_name("ab"))
        for variant, (lat, err, conv, revenue) in data.items():
            # Two serve processes per variant: the report joins their runs.
            for inst, part in (("a", slice(0, len(lat) // 2)), ("b", slice(len(lat) // 2, None))):
                run = c.create_run(exp, run_name=f"ab/{variant}/{inst}", tags={
                    TAG_DEPLOYMENT: "ab", TAG_VARIANT: variant, TAG_ROLE: "primary",
                    TAG_VERSION: "1" if variant == "champ" else "2"})
                rid = run if isinstance(run, str) else run.info.run_id
                for i, k in enumerate(range(len(lat))[part]):
                    c.log_metrics(rid, {KEY_LATENCY: float(lat[k]), KEY_ERROR: float(err[k]),
                                        "outcome.converted": float(conv[k]),
                                        "outcome.revenue": float(revenue[k])},
                                  step=i + 1, timestamp=1_700_000_000_000 + k)
        c.flush()
    finally:
        c.close()
    rep = owner.report("ab")
    http = srv.get("reader", "/api/v1/deployments/report", name="ab").json()
    assert http == rep
    by = {v["variant"]: v for v in rep["variants"]}
    for variant, (lat, err, _conv, revenue) in data.items():
        v = by[variant]
        assert v["count"] == len(lat) and v["runs"] == 2
        assert v["versions"] == {"1" if variant == "champ" else "2": len(lat)}
        assert v["errors"] == int(err.sum())
        assert v["latency_ms"]["p99"] == pytest.approx(np.percentile(lat, 99), rel=1e-9)
        lo, hi = stats.t.interval(0.95, len(revenue) - 1, loc=revenue.mean(),
                                  scale=stats.sem(revenue))
        o = v["outcomes"]["revenue"]
        assert o["kind"] == "continuous"
        assert (o["mean"], o["ci_low"], o["ci_high"]) == pytest.approx(
            (revenue.mean(), lo, hi), rel=1e-9)
        assert v["outcomes"]["converted"]["kind"] == "rate"
    (cmp,) = rep["comparisons"]
    assert (cmp["variant"], cmp["baseline"]) == ("canary", "champ")
    ref = stats.ttest_ind(data["canary"][3], data["champ"][3], equal_var=False)
    w = cmp["outcomes"]["revenue"]["fixed_horizon"]
    assert w["test"] == "welch_t"
    assert (w["statistic"], w["p_value"], w["df"]) == pytest.approx(
        (ref.statistic, ref.pvalue, ref.df), rel=1e-7)
    ci = ref.confidence_interval(0.95)
    assert (w["ci_low"], w["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-7)
    z = cmp["outcomes"]["converted"]["fixed_horizon"]
    x1, n1 = data["champ"][2].sum(), 900
    x2, n2 = data["canary"][2].sum(), 300
    p = (x1 + x2) / (n1 + n2)
    zref = (x2 / n2 - x1 / n1) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    assert z["test"] == "two_proportion_z"
    assert (z["statistic"], z["p_value"]) == pytest.approx(
        (zref, 2 * stats.norm.sf(abs(zref))), rel=1e-9)
    seq = cmp["outcomes"]["revenue"]["sequential"]
    assert seq["test"] == "msprt" and 0 < seq["p_value"] <= 1
    # Always valid: never smaller than the fixed-horizon p-value of the same data here.
    assert seq["p_value"] >= w["p_value"]
