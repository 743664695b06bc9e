"""One tracking URI for every deployment: a role forwards the gRPC services it does not serve.

A client uses one channel (`METRICFLOW_TRACKING_URI`) for every service: ingest
writes, query reads, experiments, the model registry and artifacts. In the
distributed deployment these live in different roles, so each client-facing role
puts a `ForwardInterceptor` in front of its own services:

- a service the role serves itself goes to its handler (auth interceptor first);
- a service it does not serve goes, as raw bytes, to the upstream role given by
  `--query-upstream` / `--ingest-upstream` (any of the four call shapes travel as
  one bidirectional stream: the gRPC wire format is the same for all of them);
- with no upstream for it, the call fails with UNIMPLEMENTED and a message that
  names the role serving it and the flag that would forward it.

Auth is enforced where the call is served: the caller's metadata (its bearer
token included) is passed on unchanged, and the upstream role runs its own guard
with its own data (run -> experiment lookups the forwarding node may not have).
With auth on, the forwarding node also authenticates the caller first, so an
upstream that was left without auth is not opened to anonymous callers. A
client certificate (mTLS) identifies its caller only at the node it connects
to; forwarded calls need a bearer token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from metricflow import _grpc_errors as ge
from metricflow.errors import InvalidState, MetricflowError, Unauthenticated
from metricflow.server._kinds import ARTIFACTS, INGEST, QUERY, REGISTRY
from metricflow.server._net import grpc_options

log = logging.getLogger(__name__)


SERVICE_KIND: dict[str, str] = {
    "metricflow.ingest.v1.IngestService": INGEST,
    "metricflow.query.v1.QueryService": QUERY,
    "metricflow.artifacts.v1.ArtifactService": ARTIFACTS,
    "metricflow.registry.v1.ExperimentService": REGISTRY,
    "metricflow.registry.v1.RegistryService": REGISTRY,
    "metricflow.serving.v1.DeploymentService": REGISTRY,  # deployments: the control plane
    "metricflow.alerts.v1.AlertService": REGISTRY,  # alert rules, mf.alert: the control plane
    "metricflow.governance.v1.GovernanceService": REGISTRY,  # approvals, policies, lineage
}
"""Client-facing gRPC services and the kind of role that serves each."""

SERVED_BY: dict[str, str] = {
    INGEST: "the ingest role (`metricflow ingest`)",
    QUERY: "the query role (`metricflow query`, or `metricflow writer --serve-query`)",
    ARTIFACTS: "the query role (`metricflow query`, or `metricflow writer --serve-query`) "
               "with an artifact store (--artifacts)",
    REGISTRY: "the registry role (`metricflow registry`), and by the ingest and query roles "
              "from their --metadata store",
}
UPSTREAM_FLAG: dict[str, str] = {INGEST: "--ingest-upstream", QUERY: "--query-upstream",
                                 ARTIFACTS: "--query-upstream"}
"""The flag that makes a role forward a kind of service it does not serve."""

FORWARDED_KEY = "mf-forwarded-by"
"""Metadata added to a forwarded call; a call that carries it is never forwarded again."""

# Transport headers that describe the hop, not the call (grpc sets its own).
_HOP_HEADERS = frozenset({"user-agent", "content-type", "te", "host", "grpc-accept-encoding",
                          "grpc-encoding", "grpc-timeout", "grpc-message-type"})


@dataclass(frozen=True)
class Upstream:
    """A role this one forwards to: `grpc://host:port` or `grpcs://host:port`."""

    uri: str
    """Where the upstream role's gRPC port listens."""
    root_certificates: bytes | None = None
    """PEM CA for a grpcs:// upstream with a private CA (None: the system roots)."""

    @property
    def target(self) -> str:
        return self.uri.split("://", 1)[-1].rstrip("/")

    @property
    def tls(self) -> bool:
        return self.uri.startswith("grpcs://")

    @staticmethod
    def parse(value: str, ca_file: str | None = None) -> Upstream:
        """Validate a flag value (host:port, grpc://host:port or grpcs://host:port)."""
        uri = value if "://" in value else f"grpc://{value}"
        scheme, _, rest = uri.partition("://")
        host, _, port = rest.rstrip("/").rpartition(":")
        if scheme not in ("grpc", "grpcs") or not host or not port.isdigit():
            raise ValueError(f"upstream {value!r}: expected grpc://HOST:PORT or "
                             "grpcs://HOST:PORT")
        ca = None
        if ca_file:
            with open(ca_file, "rb") as f:
                ca = f.read()
        return Upstream(uri, ca)


def forwarded_metadata(md: Iterable[tuple[str, Any]] | None, role: str) -> list[tuple[str, Any]]:
    """The caller's metadata to pass upstream (bearer token included), plus the hop marker."""
    out = [(k, v) for k, v in md or () if not k.startswith(":") and k not in _HOP_HEADERS
           and k != FORWARDED_KEY]
    out.append((FORWARDED_KEY, role))
    return out


def not_served_message(role: str, kind: str, service: str, looped: bool = False) -> str:
    """One line: which role serves `service`, and how to reach it through this one."""
    where = f"{service} is not served by this {role} node; it is served by {SERVED_BY[kind]}"
    if looped:
        return f"{where}, and the call was already forwarded once (check the upstream flags)"
    flag = UPSTREAM_FLAG.get(kind)
    if flag is None:
        return f"{where}: point the client at one of those"
    return (f"{where}: start this {role} node with {flag} HOST:PORT to forward it, "
            "or point the client there")


Authenticate = Callable[[grpc.aio.ServicerContext, str], Any]
"""Awaitable check of the caller's credential (raises MetricflowError when refused)."""


class ForwardInterceptor(grpc.aio.ServerInterceptor):
    """Serves, forwards or refuses each client-facing call (see the module docstring).

    Put it first in the server's interceptors: forwarded calls bypass this node's
    authorization (the upstream authorizes them with the same policy table) but not
    its authentication (`authenticate`, when auth is on).
    """

    def __init__(self, role: str, local: Iterable[str], upstreams: dict[str, Upstream],
                 authenticate: Authenticate | None = None) -> None:
        self.role = role
        self.local = frozenset(local)
        self.upstreams = {k: u for k, u in upstreams.items() if k not in self.local}
        self._authenticate = authenticate
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def intercept_service(self, continuation: Any,
                                details: grpc.HandlerCallDetails) -> Any:
        service = details.method.lstrip("/").split("/", 1)[0]
        kind = SERVICE_KIND.get(service)
        if kind is None or kind in self.local:
            return await continuation(details)
        md = dict(details.invocation_metadata or ())
        up = self.upstreams.get(kind)
        if up is None or FORWARDED_KEY in md:
            err = InvalidState(not_served_message(self.role, kind, service,
                                                  looped=up is not None))
            return grpc.stream_stream_rpc_method_handler(self._refuse(err))
        return grpc.stream_stream_rpc_method_handler(self._forward(kind, up, details.method))

    def _refuse(self, err: MetricflowError) -> Any:
        async def handler(request_iterator: Any, context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[bytes]:
            context.set_trailing_metadata(((ge.CODE_KEY, err.code.value),))
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, err.message)
            yield b""  # pragma: no cover - abort raises; this makes the handler a generator
        return handler

    def _channel(self, up: Upstream) -> grpc.aio.Channel:
        """One channel per upstream (query and artifacts usually share one)."""
        ch = self._channels.get(up.uri)
        if ch is None:
            if up.tls:
                creds = grpc.ssl_channel_credentials(up.root_certificates)
                ch = grpc.aio.secure_channel(up.target, creds, options=grpc_options())
            else:
                ch = grpc.aio.insecure_channel(up.target, options=grpc_options())
            self._channels[up.uri] = ch
        return ch

    def _forward(self, kind: str, up: Upstream, method: str) -> Any:
        async def handler(request_iterator: AsyncIterator[bytes],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            if self._authenticate is not None:
                try:
                    await self._authenticate(context, method)
                except MetricflowError as e:
                    await ge.abort(context, e)
            call = self._channel(up).stream_stream(method)(
                request_iterator, metadata=forwarded_metadata(context.invocation_metadata(),
                                                              self.role),
                timeout=context.time_remaining())
            try:
                async for msg in call:
                    yield msg
            except grpc.aio.AioRpcError as e:
                await self._relay_error(context, kind, up, e)
            finally:
                call.cancel()
        return handler

    async def _relay_error(self, context: grpc.aio.ServicerContext, kind: str, up: Upstream,
                           e: grpc.aio.AioRpcError) -> None:
        """Pass the upstream's status on; say which hop failed when it was the transport."""
        trailing = tuple((k, v) for k, v in e.trailing_metadata() or ()
                         if not k.startswith(":") and k not in _HOP_HEADERS)
        details = e.details() or ""
        if e.code() == grpc.StatusCode.UNAVAILABLE and not any(
                k == ge.CODE_KEY for k, _ in trailing):
            details = f"{kind} upstream {up.uri} (forwarded by this {self.role} node): {details}"
        context.set_trailing_metadata(trailing)
        await context.abort(e.code(), details)

    async def close(self) -> None:
        """Close the upstream channels."""
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()


def guard_authenticator(guard: Any) -> Authenticate | None:
    """Authentication only (token, password or certificate, and the rate limit) by `guard`.

    None when auth is off. Authorization is left to the upstream that serves the call.
    """
    if not guard.enabled:
        return None
    authn = guard.authn

    def check(authorization: str | None, peer: str, where: str) -> None:
        p = authn.authenticate(authorization, peer=peer, where=where)
        authn.limiter.take(p.limiter_key)

    async def authenticate(context: grpc.aio.ServicerContext, method: str) -> None:
        authorization = next((v for k, v in context.invocation_metadata() or ()
                              if k == "authorization" and isinstance(v, str)), None)
        if not authorization:
            raise Unauthenticated(
                f"{method} is forwarded to another role, which needs a bearer token "
                "(a client certificate identifies its caller only at the node it connects to)")
        await asyncio.to_thread(check, authorization, context.peer() or "", method)

    return authenticate


def build_forwarder(role: str, serves: Iterable[str], query_upstream: str,
                    ingest_upstream: str, upstream_ca: str, guard: Any) -> ForwardInterceptor:
    """The ForwardInterceptor of a role: its own services, and where the others go.

    Args:
        serves: the kinds of services the role mounts itself.
        query_upstream, ingest_upstream: --query-upstream / --ingest-upstream ("" = none).
        upstream_ca: PEM CA of grpcs:// upstreams ("" = the system roots).
        guard: the role's auth Guard (forwarded calls are authenticated by it), or None.
    """
    ca = upstream_ca or None
    upstreams: dict[str, Upstream] = {}
    if query_upstream:
        upstreams[QUERY] = upstreams[ARTIFACTS] = Upstream.parse(query_upstream, ca)
    if ingest_upstream:
        upstreams[INGEST] = Upstream.parse(ingest_upstream, ca)
    authenticate = guard_authenticator(guard) if guard is not None else None
    return ForwardInterceptor(role, serves, upstreams, authenticate)


__all__ = ["SERVICE_KIND", "ForwardInterceptor", "Upstream", "build_forwarder",
           "forwarded_metadata", "guard_authenticator", "not_served_message"]
