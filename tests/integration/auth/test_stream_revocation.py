"""Open streams lose access when their token is revoked (security review finding 5).

A secured embedded server whose streams check their credential again every 0.3 s
(`stream_recheck_s`), with tokens trusted for 0.2 s (`token_cache_s`): a revoked
token must end a live tail (gRPC and HTTP) and an ingest Write stream within a
few seconds, while a token that is not revoked keeps its streams.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

import metricflow as mf
from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as ipb
from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(120)
WRITE = "/metricflow.ingest.v1.IngestService/Write"


class Server:
    def __init__(self, srv: Any, store: AuthStore) -> None:
        self.srv, self.store = srv, store
        self.admin = mf.Client(f"grpc://{srv.target}",
                               token=store.create_token("admin")[1], linger_ms=5)

    def token(self, user: str) -> tuple[str, str]:
        info, secret = self.store.create_token(user)
        return info.token_id, secret

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.srv.server.http_port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread

    cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-revoke")), grpc_port=0,
                       http_port=0, security=SecurityConfig(
                           auth_mode="on",
                           auth=AuthConfig(default_permission="NO_PERMISSIONS",
                                           stream_recheck_s=0.3, token_cache_s=0.2)))
    with ServerThread(cfg) as srv:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("admin", is_admin=True)
        store.create_user("alice")
        s = Server(srv, store)
        yield s
        s.admin.close()


def _alice_run(server: Server) -> tuple[str, str, str]:
    """A run alice owns (she creates it), and her token's (id, secret)."""
    token_id, secret = server.token("alice")
    c = mf.Client(f"grpc://{server.srv.target}", token=secret)
    exp = c.create_experiment(f"revoke-{token_id}")
    run_id = c.create_run(exp).run_id
    c.close()
    return run_id, token_id, secret


class _Logger:
    """The admin logs a point to `run_id` every 50 ms until stopped."""

    def __init__(self, server: Server, run_id: str) -> None:
        self.server, self.run_id = server, run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        step = 0
        while not self.stop.is_set():
            self.server.admin.log_metrics(self.run_id, {"loss": 1.0 / (step + 1)}, step=step)
            self.server.admin.flush()
            step += 1
            time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def test_a_grpc_tail_ends_when_its_token_is_revoked(server: Server) -> None:
    run_id, token_id, secret = _alice_run(server)
    logger = _Logger(server, run_id)
    got: queue.Queue[Any] = queue.Queue()

    def tail() -> None:
        c = mf.Client(f"grpc://{server.srv.target}", token=secret)
        try:
            for item in c.tail_metrics([run_id], poll_interval_ms=50, timeout=60):
                got.put(item)
        except grpc.RpcError as e:
            got.put(e)
        finally:
            c.close()

    t = threading.Thread(target=tail, daemon=True)
    t.start()
    try:
        first = got.get(timeout=20)
        assert not isinstance(first, grpc.RpcError), first
        server.store.revoke_token(token_id)
        revoked_at = time.monotonic()
        while True:
            item = got.get(timeout=10)
            if isinstance(item, grpc.RpcError):
                break
        assert item.code() == grpc.StatusCode.UNAUTHENTICATED, item
        assert time.monotonic() - revoked_at < 5
    finally:
        logger.close()
        t.join(10)


def test_an_http_tail_ends_when_its_token_is_revoked(server: Server) -> None:
    run_id, token_id, secret = _alice_run(server)
    logger = _Logger(server, run_id)
    try:
        with httpx.stream("POST", server.http + "/api/v1/metrics/tail",
                          json={"run_ids": [run_id], "poll_interval_ms": 50},
                          headers={"authorization": f"Bearer {secret}"}, timeout=30) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            first = json.loads(next(lines))
            assert first.get("run_id") == run_id, first
            server.store.revoke_token(token_id)
            revoked_at = time.monotonic()
            last: dict[str, Any] = {}
            for line in lines:  # ends when the server closes the stream
                last = json.loads(line)
            assert last.get("error_code") == "UNAUTHENTICATED", last
            assert time.monotonic() - revoked_at < 5
    finally:
        logger.close()


def _batch(run_id: str, seq: int) -> bytes:
    wb = ipb.WriteBatch(client_id="revoke-test", seq=seq, run_id=run_id)
    wb.metrics.keys.append("acc")
    wb.metrics.key_index = np.zeros(1, np.int32).tobytes()
    wb.metrics.steps = np.array([seq], np.int64).tobytes()
    wb.metrics.timestamps = np.array([1_700_000_000_000 + seq], np.int64).tobytes()
    wb.metrics.values = np.array([0.5]).tobytes()
    return wb.SerializeToString()


def test_a_write_stream_is_closed_when_its_token_is_revoked(server: Server) -> None:
    run_id, token_id, secret = _alice_run(server)
    revoked = threading.Event()
    revoked_at: list[float] = []

    def batches() -> Iterator[bytes]:
        for seq in range(1, 400):  # one batch every 25 ms for up to 10 s
            if seq == 20:
                server.store.revoke_token(token_id)
                revoked_at.append(time.monotonic())
                revoked.set()
            yield _batch(run_id, seq)
            time.sleep(0.025)

    channel = grpc.insecure_channel(server.srv.target)
    acks: list[Any] = []
    try:
        call = channel.stream_stream(WRITE, lambda b: b, ipb.WriteAck.FromString)(
            batches(), metadata=(("authorization", f"Bearer {secret}"),), timeout=30)
        with pytest.raises(grpc.RpcError) as err:
            for ack in call:
                acks.append(ack)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value
        assert revoked.is_set() and time.monotonic() - revoked_at[0] < 5
    finally:
        channel.close()
    accepted = [a.seq for a in acks if a.ok]
    assert 1 in accepted, "batches before the revocation are accepted"
    server.admin.flush()
    stored = server.admin.get_metric_history(run_id, "acc").steps
    assert set(stored.tolist()) <= set(accepted)  # nothing stored without an ack
    assert max(accepted) < 20 + 4 * 40  # stopped within ~4 s of the revocation


def test_a_token_that_is_not_revoked_keeps_its_tail(server: Server) -> None:
    run_id, _, secret = _alice_run(server)
    logger = _Logger(server, run_id)
    items = late = 0
    c = mf.Client(f"grpc://{server.srv.target}", token=secret)
    try:
        deadline = time.monotonic() + 2.0  # several recheck periods
        for _ in c.tail_metrics([run_id], poll_interval_ms=50, timeout=10):
            items += 1
            late += time.monotonic() > deadline
            # still delivering after the rechecks (5 items in all: a busy machine logs
            # fewer points than 2 s / 50 ms)
            if late and items >= 5:
                break
    finally:
        c.close()
        logger.close()
    assert items >= 5 and late >= 1, (items, late)
