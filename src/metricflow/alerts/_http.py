"""`/api/v1/alerts/...` and `/api/v1/webhooks/...`: manage rules, alerts and webhooks.

Permissions (with auth on), as for the experiment: creating a rule needs EDIT on each
of its experiments (a rule with none, over every experiment, needs an admin);
muting or deleting it, EDIT on its experiments; listing needs READ on the
experiment asked for. `mf.alert` (`/alerts/notify`) needs EDIT on the run. Webhooks
can carry registry events of any model, so managing them needs an admin; a rule's
channels must be webhooks whose scope covers the rule's experiments (`_model.covers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from metricflow.alerts._model import (
    FOREVER_MS,
    check_id,
    check_mute_s,
    rule_from_dict,
    webhook_from_dict,
)
from metricflow.alerts._service import AlertsService
from metricflow.alerts._store import AlertStore, now_ms
from metricflow.auth import caller
from metricflow.errors import InvalidArgument, MetricflowError

ActorOf = Callable[[Request], "str | None"]


def _actor(request: Request) -> str | None:
    return caller(request.headers.get("X-Metricflow-Actor"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRule(_Body):
    name: str
    condition: dict[str, Any]
    experiment_ids: list[str] = []
    run_filter: str = ""
    for_s: float = 0.0
    severity: str = "warning"
    channels: list[str] = []


class RuleRef(_Body):
    rule_id: str


class MuteRule(RuleRef):
    duration_s: float | None = None
    """None: muted until unmuted; 0: unmute."""


class CreateWebhook(_Body):
    name: str = ""
    url: str
    events: list[str]
    secret: str = ""
    experiment_ids: list[str] = []
    payload_format: str = "json"
    status: str = "ACTIVE"


class WebhookRef(_Body):
    webhook_id: str


class Redeliver(WebhookRef):
    delivery_ids: list[str] = []


class Notify(_Body):
    run_id: str = ""
    title: str
    text: str = ""
    level: str = "info"


def _param(req: Any, name: str) -> str:
    """A scalar request parameter as the auth guard sees it ("" when absent)."""
    get = getattr(req, "param", None)
    v = get(name) if get is not None else (req.get(name) if isinstance(req, dict) else None)
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise InvalidArgument(f"{name} must be a string", field=name, received=str(v)[:80])
    return str(v)


def _param_list(req: Any, name: str) -> list[str]:
    get = getattr(req, "param_list", None)
    v = get(name) if get is not None else (req.get(name) if isinstance(req, dict) else None)
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, (list, tuple)):
        raise InvalidArgument(f"{name} must be a list", field=name, received=str(v)[:80])
    return [str(x) for x in v]


def _int(v: str, field: str) -> int:
    return check_id(v, field)


def _run_id(v: str) -> str:
    if not v:
        raise InvalidArgument("run_id is required", field="run_id", received=v)
    return v


async def _answer(fn: Callable[[], Any]) -> JSONResponse:
    try:
        result = await asyncio.to_thread(fn)
        return JSONResponse({} if result is None else result)
    except MetricflowError as e:
        return JSONResponse({"error_code": e.code.value, "message": e.message},
                            status_code=e.http_status)


def alerts_router(service: AlertsService, run_experiment: Callable[[str], str],
                  actor_of: ActorOf = _actor) -> APIRouter:
    """The routes over `service`; `run_experiment(run_id)` names a run's experiment."""
    from metricflow.auth.policy import E, M, R, Rule, admin, run

    store = service.store
    r = APIRouter(prefix="/api/v1", tags=["alerts"])

    @r.post("/alerts/rules/create")
    async def create_rule(body: CreateRule, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            rule = rule_from_dict(body.model_dump())
            service.validate_filter(rule)
            out = store.create_rule(rule, actor_of(request) or "").to_dict()
            service.rules_changed()
            return {"rule": out}
        return await _answer(go)

    @r.get("/alerts/rules/list")
    async def list_rules(experiment_id: str = "") -> JSONResponse:
        return await _answer(lambda: {"rules": [x.to_dict() for x in store.list_rules(
            [experiment_id] if experiment_id else None)]})

    @r.post("/alerts/rules/mute")
    async def mute_rule(body: MuteRule, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            d = None if body.duration_s is None else check_mute_s(body.duration_s)
            until = FOREVER_MS if d is None else (0 if d == 0 else now_ms() + int(d * 1000))
            out = store.mute_rule(_int(body.rule_id, "rule_id"), until,
                                  actor_of(request) or "").to_dict()
            service.rules_changed()
            return {"rule": out}
        return await _answer(go)

    @r.post("/alerts/rules/delete")
    async def delete_rule(body: RuleRef, request: Request) -> JSONResponse:
        def go() -> None:
            store.delete_rule(_int(body.rule_id, "rule_id"), actor_of(request) or "")
            service.rules_changed()
        return await _answer(go)

    @r.get("/alerts/list")
    async def list_alerts(rule_id: str, state: str = "") -> JSONResponse:
        def go() -> dict[str, Any]:
            states = [state] if state else ["pending", "firing", "resolved"]
            got = store.list_alerts([_int(rule_id, "rule_id")], states)
            return {"alerts": [a.to_dict() for a in got]}
        return await _answer(go)

    @r.post("/alerts/notify")
    async def notify(body: Notify, request: Request) -> JSONResponse:
        return await _answer(lambda: service.code_alert(
            body.run_id, run_experiment(_run_id(body.run_id)), body.title, body.text,
            body.level, actor_of(request) or ""))

    @r.post("/webhooks/create")
    async def create_webhook(body: CreateWebhook, request: Request) -> JSONResponse:
        return await _answer(lambda: {"webhook": store.create_webhook(
            webhook_from_dict(body.model_dump()), actor_of(request) or "").to_dict()})

    @r.get("/webhooks/list")
    async def list_webhooks() -> JSONResponse:
        return await _answer(lambda: {"webhooks": [w.to_dict() for w in store.list_webhooks()]})

    @r.post("/webhooks/delete")
    async def delete_webhook(body: WebhookRef, request: Request) -> JSONResponse:
        def go() -> None:
            store.delete_webhook(_int(body.webhook_id, "webhook_id"), actor_of(request) or "")
            service.rules_changed()  # it left the channels of the rules that named it
        return await _answer(go)

    @r.post("/webhooks/test")
    async def test_webhook(body: WebhookRef) -> JSONResponse:
        return await _answer(lambda: service.dispatcher.test(
            store.get_webhook(_int(body.webhook_id, "webhook_id"))))

    @r.get("/webhooks/deliveries")
    async def deliveries(webhook_id: str = "", status: str = "",
                         max_results: int = 1000) -> JSONResponse:
        def go() -> dict[str, Any]:
            if status and status not in ("pending", "sending", "delivered", "dead"):
                raise InvalidArgument("status must be pending, sending, delivered or dead",
                                      field="status", received=status)
            if not 1 <= max_results <= 10_000:
                raise InvalidArgument("max_results must be in [1, 10000]",
                                      field="max_results", limit=10_000, received=max_results)
            wid = _int(webhook_id, "webhook_id") if webhook_id else None
            return {"deliveries": [d.to_dict() for d in store.list_deliveries(
                wid, status or None, max_results)]}
        return await _answer(go)

    @r.post("/webhooks/redeliver")
    async def redeliver(body: Redeliver, request: Request) -> JSONResponse:
        def go() -> dict[str, Any]:
            n = store.redeliver(_int(body.webhook_id, "webhook_id"), body.delivery_ids,
                                actor_of(request) or "")
            service.dispatcher.notify()
            return {"redelivered": n}
        return await _answer(go)

    # ------------------------------------------------------------- permissions
    from metricflow.auth import Need

    def exps_of(level: Any) -> Any:
        def resolve(a: Any, req: Any) -> list[Any]:
            ids = _param_list(req, "experiment_ids")
            return ([Need("experiment", e, level) for e in ids] if ids
                    else [Need("admin", "", M)])
        return Rule(resolve)

    def exp_param(level: Any) -> Any:
        def resolve(a: Any, req: Any) -> list[Any]:
            e = _param(req, "experiment_id")
            return [Need("experiment", e, level)] if e else [Need("admin", "", M)]
        return Rule(resolve)

    def rule_exps(level: Any) -> Any:
        def resolve(a: Any, req: Any) -> list[Any]:
            rule = AlertStore(a.store.engine).get_rule(_int(_param(req, "rule_id"), "rule_id"))
            return ([Need("experiment", e, level) for e in rule.experiment_ids]
                    or [Need("admin", "", M)])
        return Rule(resolve)

    def run_param(level: Any) -> Any:
        inner = run(level)

        def resolve(a: Any, req: Any) -> list[Any]:
            _run_id(_param(req, "run_id"))  # a 400, not "run '' does not exist"
            return list(inner.resolve(a, req))
        return Rule(resolve)

    rules = {create_rule: exps_of(E), list_rules: exp_param(R), mute_rule: rule_exps(E),
             delete_rule: rule_exps(E), list_alerts: rule_exps(R), notify: run_param(E)}
    for fn, rule in rules.items():
        fn.mf_rule = rule  # type: ignore[attr-defined]
    for fn in (create_webhook, list_webhooks, delete_webhook, test_webhook, deliveries,
               redeliver):
        fn.mf_rule = admin()  # type: ignore[attr-defined, union-attr]  # read by the guard
    return r
