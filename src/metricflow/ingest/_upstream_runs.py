"""UpstreamRuns: run state and params for an ingest node without a data-plane store.

The quickstart's ingest node has no `--clickhouse` (chDB belongs to the writer), so
it cannot read what the writer stored. It has `--query-upstream` (a query role or a
writer with `--serve-query`): this reads a run there with one `QueryService/GetRun`.
TrackingCore uses it off the hot path only: lifecycle calls (UpdateRun), the parent of
a child run, and ParamGuard's check of stored params. Metric batches never wait on it.

Auth: a lookup carries the credentials of the call being served (its `authorization`
metadata, see `caller_credentials`), so the node reads only what its caller may read
and holds no identity of its own. The calls that use it need EDIT (logging, updating)
or, for a parent, EDIT on the parent's experiment, which includes the READ the lookup
needs. A caller that authenticated with a client certificate alone has no credential to
pass on: the upstream refuses the lookup (UNAUTHENTICATED), and the call fails with that
error, as forwarded calls do (docs/operations.md, "One tracking URI").
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from metricflow import _grpc_errors as ge
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.entities import RunInfo
from metricflow.entities.pb import run_info_from_pb
from metricflow.errors import error_from_code

_GET_RUN = "/metricflow.query.v1.QueryService/GetRun"
_FORWARDED_KEY = "mf-forwarded-by"  # server._forward.FORWARDED_KEY: the upstream never forwards it

CALLER_AUTH: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "metricflow_upstream_auth", default=None)
"""The `authorization` metadata of the call being served (flows into worker threads)."""


@contextlib.contextmanager
def caller_credentials(context: Any) -> Iterator[None]:
    """Within the block, upstream lookups carry the credentials `context`'s caller sent."""
    auth = next((v for k, v in (context.invocation_metadata() or ())
                 if k == "authorization" and isinstance(v, str)), None)
    token = CALLER_AUTH.set(auth)
    try:
        yield
    finally:
        CALLER_AUTH.reset(token)


class UpstreamRuns:
    """`get_run_infos` / `get_params` (MetricStore's shape) over the query upstream's GetRun."""

    sees_all_runs = True
    """Every run the writers applied is readable there (unlike NoRunLookup)."""

    def __init__(self, target: str, root_certificates: bytes | None = None, tls: bool = False,
                 timeout_s: float = 5.0, uri: str = "") -> None:
        """Args:
            target: HOST:PORT of the upstream's gRPC port.
            tls: grpcs:// upstream (`root_certificates`: its CA; None = system roots).
            timeout_s: deadline of one lookup.
            uri: the upstream as configured, for error messages.
        """
        opts = [("grpc.max_receive_message_length", 64 << 20)]
        self.channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(
            root_certificates), options=opts) if tls
            else grpc.insecure_channel(target, options=opts))
        self._get_run = self.channel.unary_unary(
            _GET_RUN, request_serializer=qpb.GetRunRequest.SerializeToString,
            response_deserializer=qpb.Run.FromString)
        self.timeout_s, self.uri = timeout_s, uri or target

    @classmethod
    def from_upstream(cls, upstream: Any, timeout_s: float = 5.0) -> UpstreamRuns:
        """From a server._forward.Upstream (the role's --query-upstream)."""
        return cls(upstream.target, upstream.root_certificates, upstream.tls, timeout_s,
                   upstream.uri)

    def get_run(self, run_id: str) -> qpb.Run | None:
        """The run as the upstream stores it; None when it does not (yet)."""
        md = [(_FORWARDED_KEY, "ingest")]
        auth = CALLER_AUTH.get()
        if auth:
            md.append(("authorization", auth))
        try:
            run: qpb.Run = self._get_run(qpb.GetRunRequest(run_id=run_id), metadata=md,
                                         timeout=self.timeout_s)
            return run
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return None
            err = ge.from_rpc_error(e)
            raise error_from_code(
                err.code.value, f"run {run_id!r} could not be looked up through the query "
                f"upstream {self.uri}: {err.message}", field="run_id",
                received=run_id) from None

    def get_run_infos(self, run_ids: Iterable[str]) -> dict[str, RunInfo]:
        out: dict[str, RunInfo] = {}
        for r in dict.fromkeys(run_ids):
            run = self.get_run(r)
            if run is not None:
                out[r] = run_info_from_pb(run.info)
        return out

    def get_params(self, run_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for r in dict.fromkeys(run_ids):
            run = self.get_run(r)
            if run is not None:
                out[r] = dict(run.params)
        return out

    def close(self) -> None:
        self.channel.close()


__all__ = ["CALLER_AUTH", "UpstreamRuns", "caller_credentials"]
