"""`metricflow.alerts.v1.AlertService`: rules and `mf.alert` over gRPC (alerts.proto).

The same operations as `/api/v1/alerts/...` (`_http.py`), on the same AlertsService;
permissions are in `auth/policy/_alerts.py` (the experiment's, as over HTTP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from metricflow._grpc_errors import handles_errors
from metricflow._proto.metricflow.alerts.v1 import alerts_pb2 as pb
from metricflow._proto.metricflow.alerts.v1 import alerts_pb2_grpc as pb_grpc
from metricflow.alerts._model import FOREVER_MS, Rule, check_id, check_mute_s, rule_from_dict
from metricflow.alerts._service import AlertsService
from metricflow.alerts._store import now_ms
from metricflow.auth import caller
from metricflow.errors import InvalidArgument

ActorOf = Callable[[grpc.aio.ServicerContext], "str | None"]


def _actor(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "mf-actor":
            return caller(str(value))
    return caller()


def rule_to_pb(r: Rule) -> pb.Rule:
    d = r.to_dict()
    c = d["condition"]
    return pb.Rule(rule_id=d["rule_id"], name=r.name, experiment_ids=list(r.experiment_ids),
                   run_filter=r.run_filter, condition=pb.Condition(
                       type=c["type"], metric=c.get("metric", ""), op=c.get("op", ""),
                       value=c.get("value", 0.0), window_steps=c.get("window_steps", 0),
                       seconds=c.get("seconds", 0.0)),
                   for_s=r.for_s, severity=r.severity, channels=d["channels"],
                   muted_until=r.muted_until, created_by=r.created_by,
                   creation_time=r.creation_time)


def rule_from_pb(m: pb.Rule) -> Rule:
    c = m.condition
    cond: dict[str, Any] = {"type": c.type}
    if c.metric:
        cond["metric"] = c.metric
    if c.type in ("threshold", "change"):
        cond.update(op=c.op or ">", value=c.value)
    if c.type == "change":
        cond["window_steps"] = c.window_steps
    if c.type == "stalled":
        cond["seconds"] = c.seconds
    return rule_from_dict({"name": m.name, "experiment_ids": list(m.experiment_ids),
                           "run_filter": m.run_filter, "condition": cond, "for_s": m.for_s,
                           "severity": m.severity or "warning",
                           "channels": list(m.channels)})


def _rule_id(v: str) -> int:
    return check_id(v, "rule_id")


class AlertServicer(pb_grpc.AlertServiceServicer):
    def __init__(self, service: AlertsService, run_experiment: Callable[[str], str],
                 actor_of: ActorOf = _actor) -> None:
        self._svc, self._run_experiment, self._actor_of = service, run_experiment, actor_of

    @handles_errors
    async def CreateRule(self, request: pb.CreateRuleRequest,
                         context: grpc.aio.ServicerContext) -> pb.RuleResponse:
        rule = rule_from_pb(request.rule)
        actor = self._actor_of(context) or ""

        def go() -> Rule:
            self._svc.validate_filter(rule)
            out = self._svc.store.create_rule(rule, actor)
            self._svc.rules_changed()
            return out
        return pb.RuleResponse(rule=rule_to_pb(await asyncio.to_thread(go)))

    @handles_errors
    async def ListRules(self, request: pb.ListRulesRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListRulesResponse:
        exps = [request.experiment_id] if request.experiment_id else None
        rules = await asyncio.to_thread(self._svc.store.list_rules, exps)
        return pb.ListRulesResponse(rules=[rule_to_pb(r) for r in rules])

    @handles_errors
    async def MuteRule(self, request: pb.MuteRuleRequest,
                       context: grpc.aio.ServicerContext) -> pb.RuleResponse:
        rid = _rule_id(request.rule_id)
        d = 0.0 if request.unmute else check_mute_s(request.duration_s)
        until = 0 if request.unmute else (FOREVER_MS if d == 0 else now_ms() + int(d * 1000))
        actor = self._actor_of(context) or ""

        def go() -> Rule:
            out = self._svc.store.mute_rule(rid, until, actor)
            self._svc.rules_changed()
            return out
        return pb.RuleResponse(rule=rule_to_pb(await asyncio.to_thread(go)))

    @handles_errors
    async def DeleteRule(self, request: pb.RuleRef,
                         context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context) or ""

        def go() -> None:
            self._svc.store.delete_rule(_rule_id(request.rule_id), actor)
            self._svc.rules_changed()
        await asyncio.to_thread(go)
        return pb.Empty()

    @handles_errors
    async def Notify(self, request: pb.NotifyRequest,
                     context: grpc.aio.ServicerContext) -> pb.NotifyResponse:
        actor = self._actor_of(context) or ""

        if not request.run_id:
            raise InvalidArgument("run_id is required", field="run_id", received="")

        def go() -> dict[str, Any]:
            exp = self._run_experiment(request.run_id)
            return self._svc.code_alert(request.run_id, exp, request.title, request.text,
                                        request.level, actor)
        out = await asyncio.to_thread(go)
        return pb.NotifyResponse(sent=bool(out.get("sent")), reason=str(out.get("reason", "")),
                                 deliveries=int(out.get("deliveries", 0)))


def add_alerts_to_server(server: grpc.aio.Server, service: AlertsService,
                         run_experiment: Callable[[str], str], **kw: Any) -> None:
    pb_grpc.add_AlertServiceServicer_to_server(AlertServicer(service, run_experiment, **kw),
                                               server)
