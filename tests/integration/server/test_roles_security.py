"""Auth, TLS and the MLflow API on the distributed roles (real Kafka, chDB, subprocesses).

- every RPC and route of ingest, query (writer --serve-query) and registry refuses
  callers without valid credentials; only the probes are open;
- a READ-only token cannot write through ingest or through the MLflow API;
- an EDIT token logs through `metricflow ingest` and reads back through the query
  API (gRPC and MLflow REST with the real `mlflow` client), and MLflow writes go
  through Kafka to the writer and back out through both APIs;
- mTLS on the registry role: no or a foreign client certificate is refused on
  gRPC and HTTPS.
"""

from __future__ import annotations

import ssl
import time
import uuid

import grpc
import httpx
import numpy as np
import pytest
from roles_cluster import Cluster, call_raw, grpc_methods, wait_for

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb
from metricflow._wire import encode_metrics
from metricflow.errors import PermissionDenied

pytestmark = pytest.mark.timeout(300)

BAD = [None, "Bearer mft_0123456789abcdef_not-the-secret", "Bearer garbage"]


def _mtls_channel(c: Cluster) -> grpc.Channel:
    return grpc.secure_channel(c.roles["registry"].target, grpc.ssl_channel_credentials(
        c.pki["ca"], *c.pki["client"]))


def _ssl(c: Cluster, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=c.pki["ca_file"])
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def test_roles_report_auth_and_tls(cluster: Cluster) -> None:
    for name, role in cluster.roles.items():
        assert role.info["auth"] == "on", (name, role.info)
        assert role.info["tls"] is True, (name, role.info)
    assert cluster.roles["registry"].info["mtls"] is True
    assert cluster.roles["ingest"].info["mtls"] is False


def test_every_rpc_of_every_role_refuses_bad_credentials(cluster: Cluster) -> None:
    plan = {"ingest": grpc_methods("ingest.v1.ingest_pb2"),
            "writer": grpc_methods("query.v1.query_pb2"),
            "registry": grpc_methods("registry.v1.registry_pb2")}
    assert len(plan["ingest"]) >= 4 and len(plan["writer"]) >= 8
    assert len(plan["registry"]) >= 30
    for role, methods in plan.items():
        ch = _mtls_channel(cluster) if role == "registry" else cluster.channel(role)
        with ch:
            for cred in BAD:
                md = (("authorization", cred),) if cred else ()
                got = {m: call_raw(ch, m, cs, ss, md) for m, cs, ss in methods}
                wrong = {m: c for m, c in got.items() if c != grpc.StatusCode.UNAUTHENTICATED}
                assert not wrong, (role, cred, wrong)
            # The standard health protocol stays open for probes.
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                        timeout=20)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, role


def test_every_route_of_every_role_refuses_bad_credentials(cluster: Cluster) -> None:
    from metricflow.auth.policy import mlflow_rules

    ctx = _ssl(cluster)
    mctx = _ssl(cluster, cluster.pki["client_cert_file"], cluster.pki["client_key_file"])
    for role, verify in (("writer", ctx), ("registry", mctx)):
        base = cluster.https(role)
        spec = httpx.get(base + "/openapi.json", headers=cluster.headers("admin"), verify=verify,
                         timeout=30)
        assert spec.status_code == 200, spec.text
        routes = [(m.upper(), p) for p, ops in spec.json()["paths"].items() for m in ops]
        if role == "writer":
            assert ("GET", "/api/v1/runs/{run_id}") in routes
            # MLflow routes are not in the schema; the policy table lists every one of them
            # (a unit test checks the table against the mounted routers).
            routes += [(m, p) for m, p in mlflow_rules()]
        else:
            assert ("POST", "/api/v1/experiments/create") in routes
        assert len(routes) >= 20
        with httpx.Client(verify=verify, timeout=30) as http:
            for i, (method, path) in enumerate(routes):
                if path in ("/health", "/ready"):
                    continue
                # Every route gets no credentials and a forged token; the malformed-token
                # path is the same code for every route, so every 4th route gets it.
                creds = BAD if i % 4 == 0 else BAD[:2]
                url = base + path.replace("{run_id}", "0" * 32).replace("{key:path}", "k") \
                    .replace("{artifact_path:path}", f"0/{'0' * 32}/artifacts/x") \
                    .replace("{rest:path}", "x").replace("{model_id}", "m-" + "0" * 32) \
                    .replace("{tag_key:path}", "k").replace("{upload_id}", "u") \
                    .replace("{part_number}", "1")
                for cred in creds:
                    headers = {"authorization": cred} if cred else {}
                    r = http.request(method, url, headers=headers, json={})
                    assert r.status_code == 401, (role, method, path, cred, r.status_code,
                                                  r.text[:200])
            assert http.get(base + "/health").status_code == 200
    # Ingest's HTTP port serves only probes and Prometheus metrics (no client data).
    ingest = f"https://127.0.0.1:{cluster.roles['ingest'].http_port}"
    assert httpx.get(ingest + "/metrics", verify=ctx, timeout=30).status_code == 200
    assert httpx.get(ingest + "/ready", verify=ctx, timeout=30).status_code == 200


def _write_batch(run_id: str) -> bytes:
    b = ipb.WriteBatch(client_id=uuid.uuid4().hex, seq=1, run_id=run_id)
    encode_metrics(b.metrics, ["raw"], np.zeros(3, np.int32), np.arange(3, dtype=np.int64),
                   np.full(3, int(time.time() * 1000), np.int64), np.ones(3))
    return b.SerializeToString()


@pytest.fixture(scope="module")
def alice_run(cluster: Cluster) -> str:
    """A run alice (EDIT on A) created and logged 50 points to, through the ingest role."""
    c = cluster.client("ingest", "alice")
    try:
        run = c.create_run(cluster.experiments["A"], run_name="via-ingest")
        for step in range(50):
            c.log_metrics(run.run_id, {"loss": 1.0 / (step + 1)}, step=step)
        c.log_params(run.run_id, {"lr": "0.1"})
        c.flush(timeout=60)
    finally:
        c.close()
    return run.run_id


def test_read_only_token_cannot_write_through_ingest(cluster: Cluster, alice_run: str) -> None:
    bob = cluster.client("ingest", "bob")
    try:
        with pytest.raises(PermissionDenied):
            bob.create_run(cluster.experiments["A"])
        with pytest.raises(PermissionDenied):
            bob.log_params(alice_run, {"lr": "9"})
    finally:
        bob.close(timeout=5)
    # The metrics stream answers a batch for a run bob may not edit with a failed ack.
    with cluster.channel("ingest") as ch:
        write = ch.stream_stream("/metricflow.ingest.v1.IngestService/Write",
                                 lambda b: b, ipb.WriteAck.FromString)
        acks = list(write(iter([_write_batch(alice_run)]), metadata=cluster.md("bob"),
                          timeout=30))
    assert [(a.ok, a.error_code) for a in acks] == [(False, "PERMISSION_DENIED")]
    # ... and accepts the same batch from alice (EDIT).
    with cluster.channel("ingest") as ch:
        write = ch.stream_stream("/metricflow.ingest.v1.IngestService/Write",
                                 lambda b: b, ipb.WriteAck.FromString)
        acks = list(write(iter([_write_batch(alice_run)]), metadata=cluster.md("alice"),
                          timeout=60))
    assert [(a.ok, a.points) for a in acks] == [(True, 3)], acks


def _mlflow(cluster: Cluster, user: str, monkeypatch: pytest.MonkeyPatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", cluster.tokens[user])
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", cluster.pki["ca_file"])
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return mlflow.MlflowClient(tracking_uri=cluster.https("writer"))


def test_read_only_token_cannot_write_through_the_mlflow_api(
        cluster: Cluster, alice_run: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    bob = _mlflow(cluster, "bob", monkeypatch)
    wait_for(lambda: bob.get_run(alice_run), 120, "alice's run in ClickHouse")
    for call in (lambda: bob.create_run(cluster.experiments["A"]),
                 lambda: bob.log_batch(alice_run, metrics=[Metric("x", 1.0, 0, 0)]),
                 lambda: bob.set_tag(alice_run, "k", "v"),
                 lambda: bob.delete_run(alice_run)):
        with pytest.raises(MlflowException) as ei:
            call()
        assert ei.value.error_code == "PERMISSION_DENIED", ei.value
    # carol has no grant on A: she cannot even read alice's run, which is answered
    # exactly as a missing one (docs/security.md).
    carol = _mlflow(cluster, "carol", monkeypatch)
    with pytest.raises(MlflowException) as ei:
        carol.get_run(alice_run)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert carol.search_runs([cluster.experiments["A"]]) == []


def test_edit_token_logs_through_ingest_and_reads_through_query(
        cluster: Cluster, alice_run: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.entities import Metric, Param

    reads = cluster.client("writer", "alice")
    try:
        hist = wait_for(lambda: len(reads.get_metric_history(alice_run, "loss").steps) >= 50
                        and reads.get_metric_history(alice_run, "loss"), 120,
                        "50 points through ingest -> Kafka -> writer")
        assert hist.steps.tolist() == list(range(50))
        assert hist.values.tolist() == [1.0 / (s + 1) for s in range(50)]
        ml = _mlflow(cluster, "alice", monkeypatch)
        hist_ml = wait_for(lambda: ml.get_metric_history(alice_run, "loss"), 60, "history")
        by_step = {m.step: m.value for m in hist_ml}
        assert by_step[0] == 1.0 and by_step[49] == pytest.approx(1 / 50)
        assert ml.get_run(alice_run).data.params == {"lr": "0.1"}

        # MLflow writes go through Kafka to the writer; both APIs read them back.
        run = ml.create_run(cluster.experiments["A"], run_name="via-mlflow")
        rid = run.info.run_id
        assert run.info.experiment_id == cluster.experiments["A"]
        ml.log_batch(rid, metrics=[Metric("acc", 0.5 + s / 100, 1000 + s, s) for s in range(20)],
                     params=[Param("depth", "7")])
        got = wait_for(lambda: len(ml.get_metric_history(rid, "acc")) == 20
                       and ml.get_metric_history(rid, "acc"), 120, "MLflow-logged history")
        assert sorted((m.step, m.value) for m in got) == [(s, 0.5 + s / 100) for s in range(20)]
        assert ml.get_run(rid).data.params == {"depth": "7"}
        assert "mlflow.user" not in ml.get_run(rid).data.tags  # only what the client sent
        assert reads.get_metric_history(rid, "acc").values.tolist() == \
            [0.5 + s / 100 for s in range(20)]
        seen = {r.info.run_id for r in ml.search_runs([cluster.experiments["A"]])}
        assert {alice_run, rid} <= seen
        # bob (READ) may read it; nobody sees experiment B's runs without a grant.
        bob = _mlflow(cluster, "bob", monkeypatch)
        assert bob.get_run(rid).info.run_id == rid
    finally:
        reads.close()


def test_registry_role_requires_a_client_certificate(cluster: Cluster) -> None:
    from metricflow._proto.metricflow.registry.v1 import registry_pb2 as rpb

    method = "/metricflow.registry.v1.ExperimentService/GetExperiment"
    exp_a = cluster.experiments["A"]
    good = grpc.ssl_channel_credentials(cluster.pki["ca"], *cluster.pki["client"])
    rogue = grpc.ssl_channel_credentials(
        cluster.pki["ca"], open(cluster.pki["rogue_key_file"], "rb").read(),
        open(cluster.pki["rogue_cert_file"], "rb").read())
    for creds, ok in ((good, True), (grpc.ssl_channel_credentials(cluster.pki["ca"]), False),
                      (rogue, False)):
        with grpc.secure_channel(cluster.roles["registry"].target, creds) as ch:
            call = ch.unary_unary(method, rpb.ExperimentRef.SerializeToString,
                                  rpb.Experiment.FromString)
            if ok:
                assert call(rpb.ExperimentRef(experiment_id=exp_a), metadata=cluster.md("alice"),
                            timeout=20).experiment_id == exp_a
            else:
                with pytest.raises(grpc.RpcError) as ei:
                    call(rpb.ExperimentRef(experiment_id=exp_a), metadata=cluster.md("alice"),
                         timeout=20)
                assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
    url = cluster.https("registry") + f"/api/v1/experiments/get?experiment_id={exp_a}"
    mctx = _ssl(cluster, cluster.pki["client_cert_file"], cluster.pki["client_key_file"])
    r = httpx.get(url, verify=mctx, headers=cluster.headers("alice"), timeout=30)
    assert r.status_code == 200, r.text
    # carol has a certificate-bearing connection but no grant on A (hidden: as missing).
    assert httpx.get(url, verify=mctx, headers=cluster.headers("carol"),
                     timeout=30).status_code == 404
    for ctx in (_ssl(cluster),
                _ssl(cluster, cluster.pki["rogue_cert_file"], cluster.pki["rogue_key_file"])):
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, verify=ctx, headers=cluster.headers("alice"), timeout=30)


def test_query_role_serves_the_mlflow_api_and_writes_through_kafka(cluster: Cluster) -> None:
    """`metricflow query` itself (not the writer): guarded MLflow API whose writes go to
    Kafka. It reads its own (empty) ClickHouse here, so the run it creates is read back
    through the writer, which consumes the same topic."""
    from roles_cluster import Role

    q = Role("query", [*cluster.kafka_args, "--clickhouse", f"chdb://{cluster.tmp}/q-ch",
                       "--auth", "on", "--artifacts", f"file://{cluster.tmp}/artifacts"],
             cluster.env, cluster.tmp / "query.log")
    try:
        assert q.info["auth"] == "on" and q.info["tls"] is False
        base = f"http://127.0.0.1:{q.http_port}/api/2.0/mlflow"
        assert httpx.get(base + "/experiments/search", timeout=30).status_code == 401
        body = {"experiment_id": cluster.experiments["A"], "run_name": "via-query-role"}
        r = httpx.post(base + "/runs/create", json=body, headers=cluster.headers("bob"),
                       timeout=30)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        r = httpx.post(base + "/runs/create", json=body, headers=cluster.headers("alice"),
                       timeout=30)
        assert r.status_code == 200, r.text
        rid = r.json()["run"]["info"]["run_id"]
        r = httpx.post(base + "/runs/log-batch", headers=cluster.headers("alice"), timeout=30,
                       json={"run_id": rid, "metrics": [
                           {"key": "q", "value": float(s), "timestamp": 1, "step": s}
                           for s in range(5)]})
        assert r.status_code == 200, r.text
    finally:
        q.stop()
    reads = cluster.client("writer", "alice")
    try:
        hist = wait_for(lambda: len(reads.get_metric_history(rid, "q").steps) == 5
                        and reads.get_metric_history(rid, "q"), 120,
                        "the query role's MLflow writes, applied by the writer")
        assert hist.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert reads.get_run(rid).info.experiment_id == cluster.experiments["A"]
    finally:
        reads.close()
