"""A secured distributed deployment: ingest -> real Kafka -> writer (chDB, --serve-query), registry.

Every role runs as a `metricflow <role>` subprocess with `--auth on` and TLS
(certificates made at test time). The writer owns the chDB directory (one
process per data dir), so it also serves the query role's API (`--serve-query`:
the same code path as `metricflow query`, MLflow REST included). Users, tokens
and grants are written to the shared SQLite control plane before the roles start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "_support"))  # certs, rawgrpc
from certs import issue_pki
from rawgrpc import call_raw, grpc_methods  # noqa: F401 - re-exported for the tests


class Role:
    """One `metricflow <role>` subprocess; ports from its ready line."""

    def __init__(self, role: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.role, self.log_path = role, log
        self._log = open(log, "ab")  # closed in stop()
        cmd = [sys.executable, "-m", "metricflow.server.cli", role, "--grpc-port", "0",
               "--http-port", "0", "--no-uvloop", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=env,
                                     text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self._log.close()
                raise RuntimeError(f"{role} exited with {self.proc.wait()}: "
                                   f"{log.read_text()[-3000:]}")
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                self.info: dict[str, Any] = json.loads(line)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not become ready")
        self.grpc_port, self.http_port = self.info["grpc_port"], self.info["http_port"]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self) -> None:
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.write(f"[test] stopped in {time.monotonic() - t0:.1f}s\n".encode())
        self._log.close()


@dataclass
class Cluster:
    tmp: Path
    pki: dict[str, Any]
    tokens: dict[str, str]
    experiments: dict[str, str]
    kafka_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)

    def https(self, role: str) -> str:
        return f"https://127.0.0.1:{self.roles[role].http_port}"

    def headers(self, user: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[user]}"}

    def md(self, user: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[user]}"),)

    def channel(self, role: str) -> Any:
        import grpc

        return grpc.secure_channel(self.roles[role].target,
                                   grpc.ssl_channel_credentials(self.pki["ca"]))

    def client(self, role: str, user: str) -> Any:
        import metricflow as mf

        return mf.Client(f"grpcs://{self.roles[role].target}", token=self.tokens[user],
                         root_certificates=self.pki["ca"], linger_ms=10)


def seed_control_plane(uri: str) -> tuple[dict[str, str], dict[str, str]]:
    """Users admin/alice/bob/carol with tokens; experiments A and B; alice EDIT and bob READ
    on A; nobody but the admin on B (default permission NO_PERMISSIONS)."""
    from metricflow.auth._store import AuthStore
    from metricflow.auth._types import Permission
    from metricflow.store.metadata import open_metadata_store

    md = open_metadata_store(uri)
    try:
        store = AuthStore(md.engine)
        store.create_user("admin", is_admin=True)
        for u in ("alice", "bob", "carol"):
            store.create_user(u)
        tokens = {u: store.create_token(u)[1] for u in ("admin", "alice", "bob", "carol")}
        exps = {n: str(md.create_experiment(f"roles-{n}-{uuid.uuid4().hex[:6]}"))
                for n in ("A", "B")}
        store.set_experiment_permission(exps["A"], "alice", Permission.EDIT, actor="admin")
        store.set_experiment_permission(exps["A"], "bob", Permission.READ, actor="admin")
    finally:
        md.close()
    return tokens, exps


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str,
            kafka_topic_prefix: str) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("roles")
    pki = issue_pki(tmp, "metricflow roles CA")
    uri = f"sqlite:///{tmp}/metadata.db"
    tokens, exps = seed_control_plane(uri)
    env = dict(os.environ)
    env.pop("METRICFLOW_CLICKHOUSE_DSN", None)
    env["METRICFLOW_METADATA_URI"] = uri
    kafka = ["--kafka", kafka_bootstrap, "--topic", f"{kafka_topic_prefix}roles-"
             f"{uuid.uuid4().hex[:8]}", "--partitions", "2"]
    sec = ["--auth", "on", "--default-permission", "NO_PERMISSIONS",
           "--tls-cert", pki["cert"], "--tls-key", pki["key"]]
    c = Cluster(tmp, pki, tokens, exps, kafka, env)
    try:
        c.roles["writer"] = Role("writer", [*kafka, *sec, "--clickhouse", f"chdb://{tmp}/ch",
                                            "--serve-query", "--linger-ms", "50",
                                            "--artifacts", f"file://{tmp}/artifacts"],
                                 env, tmp / "writer.log")
        c.roles["ingest"] = Role("ingest", [*kafka, *sec], env, tmp / "ingest.log")
        c.roles["registry"] = Role("registry", [*sec, "--tls-client-ca", pki["ca_file"]],
                                   env, tmp / "registry.log")
        yield c
    finally:
        for r in reversed(list(c.roles.values())):
            r.stop()


def wait_for(cond: Any, timeout: float, what: str) -> Any:
    """Poll `cond` until it returns something truthy (generous deadlines: loaded CI)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except Exception as e:  # not there yet
            last = e
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
