"""Alerts on live metrics and webhooks on every event (docs/alerts.md).

- `AlertsService(metadata, evaluate=...)`: the process's webhook `Dispatcher` (it
  delivers what the metadata store's event bus emits) and, where metric batches
  pass, the `Evaluator` of alert rules; `on_commit` is the writers' hook.
- `AlertStore`: rules, alert state, webhooks and deliveries in the control plane.
- `alerts_router(service, run_experiment)`: `/api/v1/alerts/...` and `/api/v1/webhooks/...`.
- `AlertsConsumer`: the `alerts` role's own Kafka consumer group on the ingest topic.
- `sign` / `verify`: the webhook signature (HMAC-SHA256 over id, timestamp and body).

Modules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AlertsService": "_service", "CodeAlertLimits": "_service",
    "AlertStore": "_store", "AlertState": "_store", "Delivery": "_store",
    "Evaluator": "_evaluator", "EvaluatorConfig": "_evaluator",
    "Dispatcher": "_webhooks", "DispatcherConfig": "_webhooks", "sign": "_webhooks",
    "verify": "_webhooks", "SIGNATURE_HEADER": "_webhooks", "TIMESTAMP_HEADER": "_webhooks",
    "DELIVERY_HEADER": "_webhooks", "EVENT_HEADER": "_webhooks",
    "Rule": "_model", "Webhook": "_model", "rule_from_dict": "_model",
    "webhook_from_dict": "_model",
    "alerts_router": "_http",
    "AlertServicer": "_grpc", "add_alerts_to_server": "_grpc",
    "AlertsConsumer": "_consumer",
    "add_alerts_commands": "_cli", "search_run_filter": "_service",
    "running_runs": "_service",
    "alert_tables": "_tables",
}

__all__ = [
    "DELIVERY_HEADER", "EVENT_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "AlertServicer",
    "AlertState",
    "AlertStore", "AlertsConsumer", "AlertsService", "CodeAlertLimits", "Delivery",
    "Dispatcher", "DispatcherConfig", "Evaluator", "EvaluatorConfig", "Rule", "Webhook",
    "add_alerts_commands", "add_alerts_to_server", "alert_tables", "alerts_router",
    "rule_from_dict", "running_runs", "search_run_filter", "sign", "verify",
    "webhook_from_dict",
]

if TYPE_CHECKING:
    from metricflow.alerts._cli import add_alerts_commands
    from metricflow.alerts._consumer import AlertsConsumer
    from metricflow.alerts._evaluator import Evaluator, EvaluatorConfig
    from metricflow.alerts._grpc import AlertServicer, add_alerts_to_server
    from metricflow.alerts._http import alerts_router
    from metricflow.alerts._model import Rule, Webhook, rule_from_dict, webhook_from_dict
    from metricflow.alerts._service import (
        AlertsService,
        CodeAlertLimits,
        running_runs,
        search_run_filter,
    )
    from metricflow.alerts._store import AlertState, AlertStore, Delivery
    from metricflow.alerts._tables import metadata as alert_tables
    from metricflow.alerts._webhooks import (
        DELIVERY_HEADER,
        EVENT_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        Dispatcher,
        DispatcherConfig,
        sign,
        verify,
    )


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "alert_tables":
        return importlib.import_module(f"{__name__}._tables").metadata
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
