"""`DeployClient`: the deployment calls over gRPC (what `metricflow deploy` uses)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from metricflow._grpc_errors import from_rpc_error
from metricflow._proto.metricflow.serving.v1 import serving_pb2 as pb
from metricflow._proto.metricflow.serving.v1 import serving_pb2_grpc as pb_grpc
from metricflow.client import open_channel as open_channel  # the channel the CLI opens
from metricflow.entities import Deployment, Guardrails, StickyKey, Variant
from metricflow.serving._deploy_grpc import deployment_from_pb, report_from_pb, variant_to_pb

_UNSET: Any = object()


def _guard_pb(g: Guardrails) -> pb.Guardrails:
    return pb.Guardrails(max_error_rate=g.max_error_rate, max_latency_p99_ms=g.max_latency_p99_ms,
                         window_s=g.window_s, min_requests=g.min_requests, fallback=g.fallback)


def _sticky_pb(s: StickyKey | None) -> pb.StickyKey | None:
    return None if s is None else pb.StickyKey(source=s.source, name=s.name)


class DeployClient:
    """metricflow.serving.v1.DeploymentService from Python.

    Args:
        channel: a `grpc.Channel` to a server (see `open_channel`).
        actor: the user recorded in the audit log when auth is off.
    """

    def __init__(self, channel: grpc.Channel, *, actor: str | None = None,
                 timeout: float = 60.0) -> None:
        self._stub = pb_grpc.DeploymentServiceStub(channel)
        self._metadata = (("mf-actor", actor),) if actor else ()
        self._timeout = timeout

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def create(self, name: str, model_name: str, variants: Sequence[Variant], *,
               sticky_key: StickyKey | None = None, guardrails: Guardrails | None = None,
               description: str = "") -> Deployment:
        req = pb.CreateDeploymentRequest(
            name=name, model_name=model_name, variants=[variant_to_pb(v) for v in variants],
            sticky_key=_sticky_pb(sticky_key),
            guardrails=None if guardrails is None else _guard_pb(guardrails),
            description=description)
        return deployment_from_pb(self._call(self._stub.CreateDeployment, req))

    def update(self, name: str, *, variants: Sequence[Variant] | None = None,
               sticky_key: StickyKey | None = _UNSET, guardrails: Guardrails | None = None,
               description: str | None = None, expected_version: int | None = None,
               comment: str = "") -> Deployment:
        req = pb.UpdateDeploymentRequest(name=name, comment=comment)
        if variants is not None:
            req.set_variants = True
            req.variants.extend(variant_to_pb(v) for v in variants)
        if sticky_key is not _UNSET:
            req.set_sticky_key = True
            if sticky_key is not None:
                req.sticky_key.CopyFrom(_sticky_pb(sticky_key))
        if guardrails is not None:
            req.guardrails.CopyFrom(_guard_pb(guardrails))
        if description is not None:
            req.description = description
        if expected_version is not None:
            req.expected_version = expected_version
        return deployment_from_pb(self._call(self._stub.UpdateDeployment, req))

    def get(self, name: str) -> Deployment:
        return deployment_from_pb(self._call(self._stub.GetDeployment,
                                             pb.DeploymentRef(name=name)))

    def list_deployments(self, model_name: str = "") -> list[Deployment]:
        resp = self._call(self._stub.ListDeployments,
                          pb.ListDeploymentsRequest(model_name=model_name))
        return [deployment_from_pb(d) for d in resp.deployments]

    def delete(self, name: str, *, expected_version: int | None = None) -> None:
        req = pb.DeploymentRef(name=name)
        if expected_version is not None:
            req.expected_version = expected_version
        self._call(self._stub.DeleteDeployment, req)

    def report_status(self, name: str, variant: str, state: str, *, version: str = "",
                      reason: str = "", reporter: str = "", restore: bool = False
                      ) -> Deployment:
        return deployment_from_pb(self._call(self._stub.ReportVariantStatus,
                                             pb.ReportVariantStatusRequest(
                                                 name=name, variant=variant, state=state,
                                                 version=version, reason=reason,
                                                 reporter=reporter, restore=restore)))

    def report(self, name: str, *, confidence: float = 0.95, baseline: str = ""
               ) -> dict[str, Any]:
        """The report, in the JSON form of `/api/v1/deployments/report`."""
        return report_from_pb(self._call(self._stub.GetDeploymentReport, pb.ReportRequest(
            name=name, confidence=confidence, baseline=baseline)))

    def history(self, name: str, max_results: int = 1000) -> list[dict[str, Any]]:
        resp = self._call(self._stub.GetDeploymentHistory,
                          pb.HistoryRequest(name=name, max_results=max_results))
        entries: list[dict[str, Any]] = json.loads(resp.json)["entries"]
        return entries
