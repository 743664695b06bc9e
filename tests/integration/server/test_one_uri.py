"""One tracking URI for the distributed roles: forwarding, its auth, and its errors.

On the secured cluster of roles_cluster.py (auth on, TLS, real Kafka) a second
ingest node is started with `--query-upstream` pointing at the writer's query
API. Through that one ingest URI a client creates experiments, logs, reads and
searches; the forwarded reads are authorized by the upstream with the caller's
own token (bob READ, carol nothing), and refused without a valid token. The
first ingest node, started without an upstream, answers a read with an error
that names the query role and the flag.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from roles_cluster import Cluster, Role, call_raw, grpc_methods, wait_for

from metricflow.errors import InvalidState, NotFound, PermissionDenied

pytestmark = pytest.mark.timeout(300)

BAD_TOKENS = [None, "Bearer mft_0123456789abcdef_not-the-secret", "Bearer garbage"]


@pytest.fixture(scope="module")
def forwarding_ingest(cluster: Cluster) -> Iterator[Role]:
    """An ingest node whose query reads (and artifacts) go to the writer's query API."""
    writer = cluster.roles["writer"]
    sec = ["--auth", "on", "--default-permission", "NO_PERMISSIONS",
           "--tls-cert", cluster.pki["cert"], "--tls-key", cluster.pki["key"]]
    role = Role("ingest", [*cluster.kafka_args, *sec,
                           "--query-upstream", f"grpcs://{writer.target}",
                           "--upstream-ca", cluster.pki["ca_file"]],
                cluster.env, cluster.tmp / "ingest-forwarding.log")
    try:
        yield role
    finally:
        role.stop()


def _client(cluster: Cluster, role: Role, user: str):  # type: ignore[no-untyped-def]
    import metricflow as mf

    return mf.Client(f"grpcs://{role.target}", token=cluster.tokens[user],
                     root_certificates=cluster.pki["ca"], linger_ms=10)


def test_ready_line_says_what_is_served_and_forwarded(cluster: Cluster,
                                                      forwarding_ingest: Role) -> None:
    assert forwarding_ingest.info["serves"] == ["ingest", "registry"]
    assert forwarding_ingest.info["forwards"] == {
        "artifacts": f"grpcs://{cluster.roles['writer'].target}",
        "query": f"grpcs://{cluster.roles['writer'].target}"}
    assert cluster.roles["ingest"].info["forwards"] == {}
    assert set(cluster.roles["writer"].info["serves"]) == {"query", "registry", "artifacts"}


def test_one_uri_logs_and_reads_through_the_ingest_node(cluster: Cluster,
                                                        forwarding_ingest: Role) -> None:
    alice = _client(cluster, forwarding_ingest, "alice")
    bob = _client(cluster, forwarding_ingest, "bob")
    carol = _client(cluster, forwarding_ingest, "carol")
    try:
        exp = cluster.experiments["A"]
        run = alice.create_run(exp, run_name=f"one-uri-{uuid.uuid4().hex[:6]}")
        rid = run.run_id
        alice.log_params(rid, {"lr": "0.5"})
        for s in range(30):
            alice.log_metric(rid, "loss", 1.0 / (s + 1), step=s)
        alice.flush()
        # Query reads are forwarded to the writer, which authorizes them with alice's token.
        hist = wait_for(lambda: len(alice.get_metric_history(rid, "loss").steps) == 30
                        and alice.get_metric_history(rid, "loss"), 120, "30 points")
        assert hist.values.tolist() == [1.0 / (s + 1) for s in range(30)]
        assert alice.get_run(rid).params == {"lr": "0.5"}
        assert rid in {r.run_id for r in alice.search_runs([exp])[0]}
        # bob has READ on A: reads pass; carol has no grant: refused by the upstream.
        assert bob.get_run(rid).run_id == rid
        with pytest.raises((PermissionDenied, NotFound)):  # refused, or hidden from her
            carol.get_run(rid)
        # Experiments are served by the ingest node itself, from --metadata.
        assert alice.registry.get_experiment(exp).experiment_id == exp
    finally:
        for c in (alice, bob, carol):
            c.close()


def test_forwarded_calls_refuse_bad_credentials(cluster: Cluster,
                                                forwarding_ingest: Role) -> None:
    ch = grpc.secure_channel(forwarding_ingest.target,
                             grpc.ssl_channel_credentials(cluster.pki["ca"]))
    try:
        for method, cs, ss in grpc_methods("query.v1.query_pb2", "artifacts.v1.artifacts_pb2"):
            for token in BAD_TOKENS:
                md = (("authorization", token),) if token else ()
                assert call_raw(ch, method, cs, ss, md) == grpc.StatusCode.UNAUTHENTICATED, \
                    (method, token)
    finally:
        ch.close()


def test_a_node_without_the_service_names_the_role_that_serves_it(cluster: Cluster) -> None:
    plain = cluster.client("ingest", "alice")  # started without --query-upstream
    try:
        with pytest.raises(InvalidState) as ei:
            plain.get_run("0" * 32)
        msg = ei.value.message
        assert "metricflow.query.v1.QueryService" in msg and "metricflow query" in msg
        assert "--query-upstream" in msg
    finally:
        plain.close()
    ch = cluster.channel("ingest")
    try:
        status = call_raw(ch, "/metricflow.query.v1.QueryService/GetRun", False, False,
                          cluster.md("alice"))
        assert status == grpc.StatusCode.UNIMPLEMENTED
    finally:
        ch.close()


def test_registry_node_forwards_writes_to_ingest_and_reads_to_query(cluster: Cluster) -> None:
    """The other direction: a role without ingest forwards the Write stream (and CreateRun)."""
    writer, ingest = cluster.roles["writer"], cluster.roles["ingest"]
    sec = ["--auth", "on", "--default-permission", "NO_PERMISSIONS",
           "--tls-cert", cluster.pki["cert"], "--tls-key", cluster.pki["key"]]
    role = Role("registry", [*sec, "--ingest-upstream", f"grpcs://{ingest.target}",
                             "--query-upstream", f"grpcs://{writer.target}",
                             "--upstream-ca", cluster.pki["ca_file"]],
                cluster.env, cluster.tmp / "registry-forwarding.log")
    alice = _client(cluster, role, "alice")
    bob = _client(cluster, role, "bob")
    try:
        assert role.info["serves"] == ["registry"]
        assert set(role.info["forwards"]) == {"ingest", "query", "artifacts"}
        rid = alice.create_run(cluster.experiments["A"], run_name="via-registry").run_id
        alice.log_metrics(rid, {"acc": 0.5, "loss": 2.0}, step=0)
        alice.log_metrics(rid, {"acc": 0.75, "loss": 1.0}, step=1)
        alice.flush()
        hist = wait_for(lambda: len(alice.get_metric_history(rid, "acc").steps) == 2
                        and alice.get_metric_history(rid, "acc"), 120, "2 points")
        assert hist.values.tolist() == [0.5, 0.75]
        # bob may read A but not write to it: the forwarded stream is refused upstream.
        with pytest.raises((PermissionDenied, NotFound)):
            bob.log_params(rid, {"lr": "1"})
    finally:
        alice.close()
        bob.close()
        role.stop()


def test_ingest_http_port_says_where_the_http_apis_are(cluster: Cluster) -> None:
    import ssl

    import httpx

    base = cluster.https("ingest")
    with httpx.Client(verify=ssl.create_default_context(cafile=cluster.pki["ca_file"])) as h:
        r = h.post(base + "/api/2.0/mlflow/runs/search", json={})
        assert r.status_code == 404
        assert "query role" in r.json()["message"]
        doc = h.get(base + "/").json()
        assert doc["role"] == "ingest" and doc["grpc"]["port"] == cluster.roles["ingest"].grpc_port
        assert set(doc["http"]) == {"metrics", "health", "ready", "openapi"}


def test_the_forwarding_node_authenticates_before_it_forwards(cluster: Cluster) -> None:
    """With auth on, a bad credential is refused at the edge, whatever the upstream would
    do; a good one reaches the (here unreachable) upstream, whose failure names it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    sec = ["--auth", "on", "--tls-cert", cluster.pki["cert"], "--tls-key", cluster.pki["key"]]
    role = Role("ingest", [*cluster.kafka_args, *sec, "--query-upstream", dead],
                cluster.env, cluster.tmp / "ingest-dead-upstream.log")
    ch = grpc.secure_channel(role.target, grpc.ssl_channel_credentials(cluster.pki["ca"]))
    try:
        method = "/metricflow.query.v1.QueryService/GetRun"
        for token in BAD_TOKENS:
            md = (("authorization", token),) if token else ()
            assert call_raw(ch, method, False, False, md) == grpc.StatusCode.UNAUTHENTICATED
        try:
            ch.unary_unary(method)(b"", metadata=cluster.md("alice"), timeout=20)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE
            assert f"query upstream grpc://{dead}" in (e.details() or "")
        else:
            raise AssertionError("a call to an unreachable upstream succeeded")
    finally:
        ch.close()
        role.stop()
