"""Live tails are bounded (security review finding 5; issue 22 item 7).

A secured embedded server whose tail limits are small (set through the
METRICFLOW_TAIL_* variables, read into its settings as `metricflow server` reads
them): 3 streams in all, 2 per user, a 256 KiB buffer per
stream and a 1 s stall allowance. Checks that each limit answers with the right
status and a message naming it, that a gRPC tail nobody reads is cut off with
its buffer bounded and released (the hub's own byte accounting), and that a
client-side timeout ends `tail_metrics` cleanly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

import metricflow as mf
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.auth._store import AuthStore
from metricflow.auth._types import AuthConfig

pytestmark = pytest.mark.timeout(180)
TAIL = "/metricflow.query.v1.QueryService/TailMetrics"
BUFFER = 256 * 1024
LIMITS = {"METRICFLOW_TAIL_MAX_STREAMS": "3", "METRICFLOW_TAIL_MAX_STREAMS_PER_USER": "2",
          "METRICFLOW_TAIL_BUFFER_BYTES": str(BUFFER), "METRICFLOW_TAIL_STALL_S": "1",
          "METRICFLOW_TAIL_MIN_POLL_MS": "100"}


@dataclass
class Srv:
    srv: Any
    tokens: dict[str, str]
    run_id: str

    @property
    def hub(self) -> Any:
        return self.srv.server.query.tails

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.srv.server.http_port}"

    def md(self, user: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[user]}"),)

    def client(self, user: str) -> Any:
        return mf.Client(f"grpc://{self.srv.target}", token=self.tokens[user], linger_ms=5)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Srv]:
    from metricflow.app import SecurityConfig, ServerConfig, ServerThread, tail_limits_from_env

    with pytest.MonkeyPatch.context() as mp:
        for k, v in LIMITS.items():
            mp.setenv(k, v)
        cfg = ServerConfig(data_dir=str(tmp_path_factory.mktemp("mf-tail")), grpc_port=0,
                           http_port=0, tail=tail_limits_from_env(), security=SecurityConfig(
                               auth_mode="on", auth=AuthConfig(default_permission="READ")))
        thread = ServerThread(cfg)
        srv = thread.__enter__()
    try:
        store = AuthStore(srv.server.metadata.engine)
        store.create_user("admin", is_admin=True)
        for u in ("alice", "bob"):
            store.create_user(u)
        tokens = {u: store.create_token(u)[1] for u in ("admin", "alice", "bob")}
        c = mf.Client(f"grpc://{srv.target}", token=tokens["admin"], linger_ms=5)
        run_id = c.create_run(c.create_experiment("tail-limits")).run_id
        n = 200_000  # far more than one stream's buffer (8.3k points)
        for i in range(n):
            c.log_metric(run_id, "loss", float(i), step=i)
        c.flush()
        c.close()
        yield Srv(srv, tokens, run_id)
    finally:
        thread.__exit__(None, None, None)


def _wait(cond: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _open_grpc(s: Srv, user: str, channel: grpc.Channel, from_start: bool = False) -> Any:
    fn = channel.unary_stream(TAIL, request_serializer=qpb.TailMetricsRequest.SerializeToString,
                              response_deserializer=qpb.TailMetricsResponse.FromString)
    return fn(qpb.TailMetricsRequest(run_ids=[s.run_id], from_start=from_start,
                                     poll_interval_ms=50), metadata=s.md(user), timeout=120)


def _refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        next(call)
    return e.value


def test_per_user_and_global_stream_limits(srv: Srv) -> None:
    ch = grpc.insecure_channel(srv.srv.target)
    calls = []
    try:
        calls = [_open_grpc(srv, "alice", ch), _open_grpc(srv, "alice", ch)]
        _wait(lambda: srv.hub.stats().open_streams == 2, "alice's two tails")
        third = _refused(_open_grpc(srv, "alice", ch))
        assert third.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "METRICFLOW_TAIL_MAX_STREAMS_PER_USER" in third.details()
        assert "'alice'" in third.details() and "2 may be open" in third.details()

        # Over HTTP too, for the same user: 429 naming the limit.
        r = httpx.post(srv.http + "/api/v1/metrics/tail", json={"run_ids": [srv.run_id]},
                       headers={"authorization": f"Bearer {srv.tokens['alice']}"}, timeout=30)
        assert r.status_code == 429, r.text
        assert r.json()["error_code"] == "RESOURCE_EXHAUSTED"
        assert "METRICFLOW_TAIL_MAX_STREAMS_PER_USER" in r.json()["message"]

        calls.append(_open_grpc(srv, "bob", ch))  # another user still gets one
        _wait(lambda: srv.hub.stats().open_streams == 3, "bob's tail")
        full = _refused(_open_grpc(srv, "admin", ch))  # the process-wide limit
        assert full.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "METRICFLOW_TAIL_MAX_STREAMS" in full.details()
        assert "allows 3 at once" in full.details()
    finally:
        for c in calls:
            c.cancel()
    # A cancelled tail frees its slot: alice may open again.
    _wait(lambda: srv.hub.stats().open_streams == 0, "the slots to be released")
    again = _open_grpc(srv, "alice", ch)
    _wait(lambda: srv.hub.stats().open_streams == 1, "alice's new tail")
    again.cancel()
    _wait(lambda: srv.hub.stats().open_streams == 0, "the slot to be released")
    ch.close()


def test_a_never_read_grpc_tail_is_cut_off_and_its_buffer_released(srv: Srv) -> None:
    before = srv.hub.stats()
    # A channel with a small receive window, so the transport cannot absorb the backlog.
    ch = grpc.insecure_channel(srv.srv.target, options=[("grpc.http2.bdp_probe", 0),
                                                        ("grpc.http2.lookahead_bytes", 0)])
    call = _open_grpc(srv, "alice", ch, from_start=True)  # 200k points, 4.8 MB
    try:
        _wait(lambda: srv.hub.stats().cut_off > before.cut_off, "the stalled tail's cut-off",
              within=90)
        st = srv.hub.stats()
        assert st.peak_stream_bytes <= BUFFER  # never more than one buffer held for it
        assert st.open_streams == 0 and st.buffered_bytes == 0  # slot and buffer released
        # Reading now gives what the transport held, then the status naming the limit.
        points = 0
        with pytest.raises(grpc.RpcError) as e:
            for m in call:
                points += len(m.steps) // 8
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value
        assert "METRICFLOW_TAIL_BUFFER_BYTES" in e.value.details()
        assert "cut off" in e.value.details()
        assert points < 200_000  # the backlog was not all queued for it
    finally:
        call.cancel()
        ch.close()


def test_tails_of_the_same_runs_share_their_polls(srv: Srv) -> None:
    # Three tails of one run at the same position cost one store poll, not three.
    ch = grpc.insecure_channel(srv.srv.target)
    calls = [_open_grpc(srv, "alice", ch), _open_grpc(srv, "alice", ch),
             _open_grpc(srv, "bob", ch)]
    try:
        _wait(lambda: srv.hub.stats().open_streams == 3, "three tails")
        start = srv.hub.stats()
        _wait(lambda: srv.hub.stats().polls - start.polls >= 5, "five polls")
        st = srv.hub.stats()
        assert st.served - start.served >= 2 * (st.polls - start.polls)
    finally:
        for c in calls:
            c.cancel()
        ch.close()
    _wait(lambda: srv.hub.stats().open_streams == 0, "the slots")


def test_a_reading_tail_gets_the_whole_backlog_within_its_buffer(srv: Srv) -> None:
    # The bounded buffer paces a reader that keeps up; it is not cut off.
    c = srv.client("alice")
    try:
        steps = []
        for chunk in c.tail_metrics([srv.run_id], from_start=True, timeout=60):
            steps.append(chunk.points.steps)
            if sum(len(x) for x in steps) >= 200_000:
                break
        got = np.concatenate(steps)
        assert np.array_equal(got, np.arange(200_000))
        assert srv.hub.stats().peak_stream_bytes <= BUFFER
    finally:
        c.close()


def test_http_tail_slot_is_released_when_the_client_leaves(srv: Srv) -> None:
    hdr = {"authorization": f"Bearer {srv.tokens['bob']}"}
    with httpx.stream("POST", srv.http + "/api/v1/metrics/tail", headers=hdr, timeout=30,
                      json={"run_ids": [srv.run_id], "from_start": True}) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = json.loads(next(lines))
        assert first["run_id"] == srv.run_id and first["steps"][0] == 0
        # Keep reading until the slot is seen: a client that stopped after its first line
        # would soon be cut as a slow reader (its backlog is far over the buffer), which
        # also frees the slot, before a busy test thread looked (seen in a CI run).
        deadline = time.monotonic() + 30
        while srv.hub.stats().open_streams != 1:
            assert "error_code" not in json.loads(next(lines))
            assert time.monotonic() < deadline, "timed out waiting for the HTTP tail's slot"
    _wait(lambda: srv.hub.stats().open_streams == 0, "the HTTP tail's slot")


def test_tail_metrics_timeout_ends_the_iteration(srv: Srv) -> None:
    # Issue 22 item 7: the client's own timeout used to surface as DEADLINE_EXCEEDED.
    c = srv.client("bob")
    try:
        got = list(c.tail_metrics([srv.run_id], ["no-such-key"], timeout=1.5))
    finally:
        c.close()
    assert got == []


def test_poll_interval_below_the_minimum_is_raised_not_refused(srv: Srv) -> None:
    ch = grpc.insecure_channel(srv.srv.target)
    call = _open_grpc(srv, "bob", ch)  # asks for 50 ms; the server's minimum is 100 ms
    try:
        _wait(lambda: srv.hub.stats().open_streams == 1, "the tail")
        with srv.hub.lock:
            intervals = [s.interval for s in srv.hub._streams]
        assert intervals == [0.1]
    finally:
        call.cancel()
        ch.close()
    _wait(lambda: srv.hub.stats().open_streams == 0, "the slot")
