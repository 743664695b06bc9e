"""Role security settings and the run-owner lookup the distributed roles authorize with."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from metricflow.app import SecurityConfig, auth_banner
from metricflow.auth._server import build_server_auth
from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument

RUN = "d" * 32


@pytest.mark.parametrize(("host", "mode", "enabled"), [
    ("127.0.0.1", "auto", False), ("0.0.0.0", "auto", True), ("10.1.2.3", "auto", True),
    ("127.0.0.1", "on", True), ("0.0.0.0", "off", False)])
def test_non_loopback_binds_get_auth_unless_disabled(host: str, mode: str,
                                                     enabled: bool) -> None:
    sec = SecurityConfig(host=host, auth_mode=mode)
    assert sec.auth.enabled is enabled
    if host == "0.0.0.0" and mode == "off":
        assert auth_banner(sec.auth, host).startswith("OFF (explicitly disabled")


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(InvalidArgument) as ei:
        SecurityConfig(auth_mode="maybe")
    assert ei.value.details["field"] == "auth_mode"
    with pytest.raises(InvalidArgument) as ei:
        SecurityConfig(run_wait_s=500)
    assert ei.value.details == {"field": "run_wait_s", "limit": 120, "received": 500}
    with pytest.raises(InvalidArgument) as ei:
        SecurityConfig(tls_cert="/nonexistent/cert.pem", tls_key="/nonexistent/key.pem")
    assert ei.value.details["field"] == "cert_file"


class _LateRuns:
    """A data plane where a run shows up from the `visible_from`-th lookup on (Kafka lag).

    Counting lookups, not seconds, keeps the test independent of machine load."""

    def __init__(self, visible_from: int) -> None:
        self.visible_from = visible_from
        self.calls = 0
        self._lock = threading.Lock()

    def get_run_infos(self, run_ids: list[str]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            visible = self.calls >= self.visible_from
        if visible and RUN in run_ids:
            return {RUN: SimpleNamespace(experiment_id="7")}
        return {}


def test_authorization_waits_a_bounded_time_for_a_run_not_yet_applied(md: Any) -> None:
    late = _LateRuns(visible_from=3)
    auth = build_server_auth(AuthConfig(enabled=True), md, late, run_wait_s=10.0)
    assert auth.guard.authz is not None
    assert auth.guard.authz.experiments_of_runs([RUN]) == {RUN: "7"}
    assert late.calls >= 3  # looked again instead of answering "does not exist"
    # An id that never appears is given up on after run_wait_s, not forever.
    absent = _LateRuns(visible_from=10**9)
    never = build_server_auth(AuthConfig(enabled=True), md, absent, run_wait_s=0.5)
    t0 = time.monotonic()
    assert never.guard.authz.experiments_of_runs(["e" * 32]) == {}  # type: ignore[union-attr]
    assert 0.5 <= time.monotonic() - t0 < 60
    # Existence checks (CreateRun with a client-chosen id) ask once and never wait.
    before = absent.calls
    assert never.guard.authz.run_exists("e" * 32) is False  # type: ignore[union-attr]
    assert absent.calls == before + 1


def test_without_a_data_plane_only_remembered_runs_are_known(md: Any) -> None:
    auth = build_server_auth(AuthConfig(enabled=True), md, None, run_wait_s=0.0)
    authz = auth.guard.authz
    assert authz is not None
    assert authz.experiments_of_runs([RUN]) == {}
    authz.remember_run(RUN, "3")  # what the interceptor does after this node's CreateRun
    assert authz.experiments_of_runs([RUN]) == {RUN: "3"}


def _writer_args(*argv: str) -> Any:
    import argparse

    from metricflow.app import add_role_parsers

    parser = argparse.ArgumentParser()
    add_role_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(["writer", "--clickhouse", "chdb:///tmp/authfix-unused", *argv])


@pytest.mark.parametrize("flag", [["--tls-cert", "c.pem"], ["--tls-key", "k.pem"],
                                  ["--tls-client-ca", "ca.pem"], ["--auth", "on"],
                                  ["--default-permission", "EDIT"], ["--rate-limit", "5"],
                                  ["--cert-admin-user", "svc"]])
def test_writer_refuses_security_flags_it_would_ignore(flag: list[str]) -> None:
    from metricflow.app import settings_from_args, writer_flag_errors

    args = _writer_args(*flag)
    err = writer_flag_errors(args)
    assert flag[0] in err and "--serve-query" in err
    with pytest.raises(SystemExit, match=flag[0]):
        settings_from_args(args)  # before anything is opened or bound
    assert writer_flag_errors(_writer_args(*flag, "--serve-query")) == ""
    assert writer_flag_errors(_writer_args()) == ""


def test_certificate_principals_never_get_the_admin_scope_unless_mapped(auth: Any) -> None:
    from metricflow.auth._authn import Authenticator

    auth.create_user("root", is_admin=True)
    p = Authenticator(auth, AuthConfig(enabled=True)).authenticate(None, cert_user="root")
    assert p.user == "root" and p.is_admin and "admin" not in p.scopes
    assert not p.admin  # admin powers need the admin scope
    mapped = Authenticator(auth, AuthConfig(enabled=True, cert_admin_users=frozenset({"root"})))
    assert mapped.authenticate(None, cert_user="root").admin


def test_roles_map_certificate_admins_only_when_told() -> None:
    from metricflow.app import settings_from_args

    args = _writer_args("--serve-query", "--cert-admin-user", "svc", "--cert-admin-user", "ops")
    assert settings_from_args(args).security.auth.cert_admin_users == frozenset({"svc", "ops"})
    assert settings_from_args(
        _writer_args("--serve-query")).security.auth.cert_admin_users == frozenset()


def test_a_node_without_the_data_plane_refuses_client_chosen_run_ids(md: Any) -> None:
    from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb
    from metricflow.auth.policy._common import _create_run

    blind = build_server_auth(AuthConfig(enabled=True), md, None).guard.authz
    assert blind is not None and not blind.sees_all_runs
    with pytest.raises(InvalidArgument) as ei:  # it cannot know whether the run exists
        _create_run(blind, ipb.CreateRunRequest(run_id=RUN, experiment_id="1"))
    assert ei.value.details["field"] == "run_id" and "--clickhouse" in str(ei.value)
    fresh = _create_run(blind, ipb.CreateRunRequest(experiment_id="1"))  # server picks the id
    assert [(n.kind, n.ident) for n in fresh] == [("experiment", "1")]
    seeing = build_server_auth(AuthConfig(enabled=True), md, _LateRuns(10**9)).guard.authz
    assert seeing is not None and seeing.sees_all_runs
    assert [n.ident for n in _create_run(seeing, ipb.CreateRunRequest(run_id=RUN,
                                                                   experiment_id="1"))] == ["1"]
