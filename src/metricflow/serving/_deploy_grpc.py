"""grpc.aio servicer of metricflow.serving.v1.DeploymentService over the metadata store.

Store calls are synchronous SQL, so each runs in a worker thread and never blocks
the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from metricflow._grpc_errors import abort as abort_with
from metricflow._proto.metricflow.serving.v1 import serving_pb2 as pb
from metricflow._proto.metricflow.serving.v1 import serving_pb2_grpc as pb_grpc
from metricflow.auth import caller
from metricflow.entities import Deployment, Guardrails, StickyKey, Variant
from metricflow.errors import InvalidArgument, MetricflowError
from metricflow.serving._deploy_http import readable
from metricflow.store.metadata import check_deployment_name

if TYPE_CHECKING:
    from metricflow.query import QueryCore
    from metricflow.store.metadata import MetadataStore

log = logging.getLogger(__name__)
T = TypeVar("T")
ActorOf = Callable[[grpc.aio.ServicerContext], "str | None"]
ACTOR_KEY = "mf-actor"


def actor_from_metadata(context: grpc.aio.ServicerContext) -> str | None:
    """The caller with auth off: the "mf-actor" metadata, else the server's OS user."""
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_KEY:
            return caller(str(value))
    return caller()


def deployment_to_pb(d: Deployment) -> pb.Deployment:
    g = d.guardrails
    return pb.Deployment(
        name=d.name, model_name=d.model_name,
        variants=[variant_to_pb(v) for v in d.variants],
        sticky_key=None if d.sticky_key is None else pb.StickyKey(
            source=d.sticky_key.source, name=d.sticky_key.name),
        guardrails=pb.Guardrails(max_error_rate=g.max_error_rate,
                                 max_latency_p99_ms=g.max_latency_p99_ms, window_s=g.window_s,
                                 min_requests=g.min_requests, fallback=g.fallback),
        description=d.description, creation_timestamp=d.creation_timestamp,
        last_updated_timestamp=d.last_updated_timestamp, row_version=d.row_version,
        statuses=[pb.VariantStatus(variant=s.variant, state=s.state, version=s.version,
                                   reason=s.reason, reporter=s.reporter, timestamp=s.timestamp)
                  for s in d.statuses],
        fallback=d.fallback)


def variant_to_pb(v: Variant) -> pb.Variant:
    return pb.Variant(name=v.name, alias=v.alias, version=v.version, endpoint=v.endpoint,
                      weight=v.weight, shadow=v.shadow, resolved_version=v.resolved_version,
                      source=v.source)


def variant_from_pb(v: pb.Variant) -> Variant:
    return Variant(name=v.name, alias=v.alias, version=v.version, endpoint=v.endpoint,
                   weight=v.weight, shadow=v.shadow)


def guardrails_from_pb(g: pb.Guardrails) -> Guardrails:
    return Guardrails(
        max_error_rate=g.max_error_rate if g.HasField("max_error_rate") else None,
        max_latency_p99_ms=g.max_latency_p99_ms if g.HasField("max_latency_p99_ms") else None,
        window_s=g.window_s or 30.0, min_requests=g.min_requests or 20, fallback=g.fallback)


def deployment_from_pb(m: pb.Deployment) -> Deployment:
    """The entity from its message (for clients of the service)."""
    from metricflow.entities import VariantStatus

    return Deployment(
        name=m.name, model_name=m.model_name,
        variants=tuple(Variant(name=v.name, alias=v.alias, version=v.version,
                               endpoint=v.endpoint, weight=v.weight, shadow=v.shadow,
                               resolved_version=v.resolved_version, source=v.source)
                       for v in m.variants),
        sticky_key=StickyKey(m.sticky_key.source, m.sticky_key.name)
        if m.HasField("sticky_key") else None,
        guardrails=guardrails_from_pb(m.guardrails), description=m.description,
        creation_timestamp=m.creation_timestamp,
        last_updated_timestamp=m.last_updated_timestamp, row_version=m.row_version,
        statuses=tuple(VariantStatus(variant=s.variant, state=s.state, version=s.version,
                                     reason=s.reason, reporter=s.reporter,
                                     timestamp=s.timestamp) for s in m.statuses))


def _opt(msg: Any, name: str) -> float | None:
    return getattr(msg, name) if msg.HasField(name) else None


def _estimate_pb(e: dict[str, Any]) -> pb.Estimate:
    return pb.Estimate(kind=e["kind"], count=e["count"], mean=e["mean"], ci_low=e["ci_low"],
                       ci_high=e["ci_high"])


def _estimate(m: pb.Estimate) -> dict[str, Any]:
    return {"kind": m.kind, "count": m.count, "mean": _opt(m, "mean"),
            "ci_low": _opt(m, "ci_low"), "ci_high": _opt(m, "ci_high")}


def _result_pb(t: dict[str, Any]) -> pb.TestResult:
    return pb.TestResult(test=t["test"], difference=t["difference"], statistic=t["statistic"],
                         p_value=t["p_value"], df=t.get("df"), ci_low=t["ci_low"],
                         ci_high=t["ci_high"])


def _result(m: pb.TestResult) -> dict[str, Any]:
    out = {"test": m.test, "difference": _opt(m, "difference"),
           "ci_low": _opt(m, "ci_low"), "ci_high": _opt(m, "ci_high"),
           "statistic": _opt(m, "statistic"), "p_value": _opt(m, "p_value")}
    if m.test == "welch_t":
        out["df"] = _opt(m, "df")
    return out


def _tests_pb(t: dict[str, Any]) -> pb.Tests:
    return pb.Tests(kind=t["kind"], fixed_horizon=_result_pb(t["fixed_horizon"]),
                    sequential=_result_pb(t["sequential"]))


def _tests(m: pb.Tests) -> dict[str, Any]:
    return {"kind": m.kind, "fixed_horizon": _result(m.fixed_horizon),
            "sequential": _result(m.sequential)}


_LATENCY = ("p50", "p95", "p99", "mean", "ci_low", "ci_high")


def report_to_pb(r: dict[str, Any]) -> pb.ReportResponse:
    """The report's JSON form (`Report.to_dict()`) as its message."""
    return pb.ReportResponse(
        deployment=r["deployment"], model_name=r["model_name"], baseline=r["baseline"],
        confidence=r["confidence"], tests=r["tests"],
        variants=[pb.VariantReport(
            variant=v["variant"], shadow=v["shadow"], versions=v["versions"], runs=v["runs"],
            count=v["count"], errors=v["errors"], error_rate=_estimate_pb(v["error_rate"]),
            latency_ms=pb.Latency(**{k: v["latency_ms"][k] for k in _LATENCY}),
            outcomes={k: _estimate_pb(o) for k, o in v["outcomes"].items()})
            for v in r["variants"]],
        comparisons=[pb.ComparisonReport(
            variant=c["variant"], baseline=c["baseline"], error_rate=_tests_pb(c["error_rate"]),
            latency_ms=_tests_pb(c["latency_ms"]),
            outcomes={k: _tests_pb(t) for k, t in c["outcomes"].items()})
            for c in r["comparisons"]])


def report_from_pb(m: pb.ReportResponse) -> dict[str, Any]:
    """The report message as the JSON form `/api/v1/deployments/report` answers."""
    return {
        "deployment": m.deployment, "model_name": m.model_name, "baseline": m.baseline,
        "confidence": m.confidence, "tests": dict(m.tests),
        "variants": [{
            "variant": v.variant, "shadow": v.shadow,
            "versions": dict(sorted(v.versions.items(), key=lambda kv: (len(kv[0]), kv[0]))),
            "runs": v.runs, "count": v.count, "errors": v.errors,
            "error_rate": _estimate(v.error_rate),
            "latency_ms": {k: _opt(v.latency_ms, k) for k in _LATENCY},
            "outcomes": {k: _estimate(v.outcomes[k]) for k in sorted(v.outcomes)},
        } for v in m.variants],
        "comparisons": [{
            "variant": c.variant, "baseline": c.baseline, "error_rate": _tests(c.error_rate),
            "latency_ms": _tests(c.latency_ms),
            "outcomes": {k: _tests(c.outcomes[k]) for k in sorted(c.outcomes)},
        } for c in m.comparisons],
    }


def _sticky(m: Any) -> StickyKey | None:
    if not m.HasField("sticky_key"):
        return None
    return StickyKey(m.sticky_key.source, m.sticky_key.name)


class DeploymentServicer(pb_grpc.DeploymentServiceServicer):
    """metricflow.serving.v1.DeploymentService."""

    def __init__(self, store: MetadataStore, query: QueryCore | None = None,
                 actor_of: ActorOf = actor_from_metadata) -> None:
        from metricflow.serving._report import report_core

        self._store, self._query, self._actor_of = store, report_core(query), actor_of

    async def _run(self, context: grpc.aio.ServicerContext, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except MetricflowError as e:
            await abort_with(context, e)
        except Exception as e:  # one bad request must not kill the server
            log.exception("deployment RPC failed")
            await abort_with(context, MetricflowError(f"internal error: {type(e).__name__}"))
        raise AssertionError("unreachable")  # abort raises

    async def CreateDeployment(self, request: pb.CreateDeploymentRequest,
                               context: grpc.aio.ServicerContext) -> pb.Deployment:
        actor = self._actor_of(context)
        d = await self._run(context, lambda: self._store.create_deployment(
            request.name, request.model_name, [variant_from_pb(v) for v in request.variants],
            sticky_key=_sticky(request),
            guardrails=guardrails_from_pb(request.guardrails)
            if request.HasField("guardrails") else None,
            description=request.description, actor=actor))
        return deployment_to_pb(d)

    async def UpdateDeployment(self, request: pb.UpdateDeploymentRequest,
                               context: grpc.aio.ServicerContext) -> pb.Deployment:
        actor = self._actor_of(context)
        kw: dict[str, Any] = {}
        if request.set_variants:
            kw["variants"] = [variant_from_pb(v) for v in request.variants]
        if request.set_sticky_key:
            kw["sticky_key"] = _sticky(request)
        if request.HasField("guardrails"):
            kw["guardrails"] = guardrails_from_pb(request.guardrails)
        d = await self._run(context, lambda: self._store.update_deployment(
            request.name,
            description=request.description if request.HasField("description") else None,
            expected_version=request.expected_version
            if request.HasField("expected_version") else None,
            comment=request.comment, actor=actor, **kw))
        return deployment_to_pb(d)

    async def GetDeployment(self, request: pb.DeploymentRef,
                            context: grpc.aio.ServicerContext) -> pb.Deployment:
        d = await self._run(context, lambda: self._store.get_deployment(request.name))
        return deployment_to_pb(d)

    async def ListDeployments(self, request: pb.ListDeploymentsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> pb.ListDeploymentsResponse:
        found = await self._run(context, lambda: readable(
            self._store.list_deployments(request.model_name or None)))
        return pb.ListDeploymentsResponse(deployments=[deployment_to_pb(d) for d in found])

    async def DeleteDeployment(self, request: pb.DeploymentRef,
                               context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_deployment(
            request.name, expected_version=request.expected_version
            if request.HasField("expected_version") else None, actor=actor))
        return pb.Empty()

    async def ReportVariantStatus(self, request: pb.ReportVariantStatusRequest,
                                  context: grpc.aio.ServicerContext) -> pb.Deployment:
        actor = self._actor_of(context)
        d = await self._run(context, lambda: self._store.report_variant_status(
            request.name, request.variant, request.state, version=request.version,
            reason=request.reason, reporter=request.reporter, restore=request.restore,
            actor=actor))
        return deployment_to_pb(d)

    async def GetDeploymentReport(self, request: pb.ReportRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ReportResponse:
        from metricflow.serving._report import build_report

        rep = await self._run(context, lambda: build_report(
            self._store, self._query, request.name, confidence=request.confidence or 0.95,
            baseline=request.baseline))
        return report_to_pb(rep.to_dict())

    async def GetDeploymentHistory(self, request: pb.HistoryRequest,
                                   context: grpc.aio.ServicerContext) -> pb.HistoryResponse:
        def go() -> str:
            check_deployment_name(request.name)
            n = request.max_results or 1000
            if not 1 <= n <= 10_000:
                raise InvalidArgument(f"max_results must be in [1, 10000], got {n}",
                                      field="max_results", limit=10_000, received=n)
            return json.dumps({"entries": [dataclasses.asdict(e) for e in
                                           self._store.deployment_history(request.name, n)]})
        return pb.HistoryResponse(json=await self._run(context, go))


def add_to_server(server: grpc.aio.Server, store: MetadataStore, query: QueryCore | None = None,
                  *, actor_of: ActorOf = actor_from_metadata) -> None:
    """Register DeploymentService on `server`."""
    pb_grpc.add_DeploymentServiceServicer_to_server(
        DeploymentServicer(store, query, actor_of), server)
