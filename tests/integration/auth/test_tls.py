"""TLS on gRPC and HTTP, and mTLS: clients without a valid certificate are refused."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import grpc
import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "_support"))  # certs
from certs import issue_pki

from metricflow._proto.metricflow.registry.v1 import registry_pb2 as rpb

GET_EXP = "/metricflow.registry.v1.ExperimentService/GetExperiment"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    return issue_pki(tmp_path_factory.mktemp("pki"))


def _server(tmp_path_factory, pki, mtls: bool):
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    return ServerThread(ServerConfig(
        data_dir=str(tmp_path_factory.mktemp("mf-tls")), grpc_port=0, http_port=0,
        security=SecurityConfig(auth_mode="on", tls_cert=pki["cert"], tls_key=pki["key"],
                                tls_client_ca=pki["ca_file"] if mtls else "")))


def _get_exp(target: str, creds: grpc.ChannelCredentials, token: str) -> rpb.Experiment:
    with grpc.secure_channel(target, creds) as ch:
        call = ch.unary_unary(GET_EXP, rpb.ExperimentRef.SerializeToString,
                              rpb.Experiment.FromString)
        return call(rpb.ExperimentRef(experiment_id="0"), timeout=10,
                    metadata=(("authorization", f"Bearer {token}"),))


def test_tls_grpc_and_https(tmp_path_factory, pki) -> None:
    import metricflow as mf
    from metricflow.auth._store import AuthStore

    with _server(tmp_path_factory, pki, mtls=False) as srv:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("root", is_admin=True)
        _, tok = store.create_token("root")
        c = mf.Client(f"grpcs://{srv.target}", token=tok, root_certificates=pki["ca"])
        try:
            assert c.registry.get_experiment("0").name == "Default"
        finally:
            c.close()
        url = f"https://127.0.0.1:{srv.server.http_port}/api/v1/experiments/get?experiment_id=0"
        ctx = ssl.create_default_context(cafile=pki["ca_file"])
        r = httpx.get(url, verify=ctx, headers={"authorization": f"Bearer {tok}"})
        assert r.status_code == 200
        with pytest.raises(httpx.HTTPError):  # a client that does not trust the CA
            httpx.get(url, headers={"authorization": f"Bearer {tok}"})
        with pytest.raises(httpx.HTTPError):  # plaintext on the TLS port
            httpx.get(url.replace("https", "http"))
        with pytest.raises(grpc.RpcError) as ei:  # plaintext gRPC
            with grpc.insecure_channel(srv.target) as ch:
                ch.unary_unary(GET_EXP)(b"", timeout=5)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_requires_a_certificate_from_the_ca(tmp_path_factory, pki) -> None:
    from metricflow.auth._store import AuthStore

    with _server(tmp_path_factory, pki, mtls=True) as srv:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("root", is_admin=True)
        _, tok = store.create_token("root")
        good = grpc.ssl_channel_credentials(pki["ca"], *pki["client"])
        assert _get_exp(srv.target, good, tok).name == "Default"
        for creds in (grpc.ssl_channel_credentials(pki["ca"]),  # no client certificate
                      grpc.ssl_channel_credentials(pki["ca"], *pki["rogue"])):  # wrong CA
            with pytest.raises(grpc.RpcError) as ei:
                _get_exp(srv.target, creds, tok)
            assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
        # HTTPS is mTLS too: the handshake needs a certificate signed by the CA.
        url = f"https://127.0.0.1:{srv.server.http_port}/api/v1/experiments/get?experiment_id=0"
        auth = {"authorization": f"Bearer {tok}"}
        ok = ssl.create_default_context(cafile=pki["ca_file"])
        ok.load_cert_chain(pki["client_files"][0], pki["client_files"][1])
        r = httpx.get(url, verify=ok, headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["experiment"]["name"] == "Default", r.text
        rogue = ssl.create_default_context(cafile=pki["ca_file"])
        rogue.load_cert_chain(pki["rogue_files"][0], pki["rogue_files"][1])
        for ctx in (ssl.create_default_context(cafile=pki["ca_file"]), rogue):
            with pytest.raises(httpx.HTTPError):  # no client certificate / a foreign one
                httpx.get(url, verify=ctx, headers=auth, timeout=30)
        # A verified certificate whose CN names a user authenticates as that user.
        with grpc.secure_channel(srv.target, good) as ch:
            call = ch.unary_unary(GET_EXP, rpb.ExperimentRef.SerializeToString,
                                  rpb.Experiment.FromString)
            with pytest.raises(grpc.RpcError) as ei:  # no token, and the CN is no user yet
                call(rpb.ExperimentRef(experiment_id="0"), timeout=10)
            assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
            store.create_user("ingest-node-1")
            assert call(rpb.ExperimentRef(experiment_id="0"), timeout=10).name == "Default"
