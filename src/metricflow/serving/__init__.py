"""Model serving (issue 19): deployments in the control plane, and the `serve` process.

Control plane (this package's deployment modules):
- `deployment_router(store, query)`: `/api/v1/deployments/*` (create, update, get,
  list, delete, report-status, history, report).
- `add_to_server(server, store, query)`: gRPC `metricflow.serving.v1.DeploymentService`.
- `build_report(store, query, name)`: the A/B report (`Report.to_dict()`), from the
  request log that `serve` writes (`_naming.py`: experiment, tags, metric keys).
- `add_deploy_parsers(sub)`: the `metricflow deploy` CLI.
- `add_serve_parsers(sub)`: `metricflow serve --deployment NAME`, the serving gateway
  (`_serve_*.py`: HTTP server, routing, batching, live switch, guardrails, request log).
- the statistics: `welch_t_test`, `two_proportion_z_test`, `msprt`, `mean_ci`, `wilson_ci`.

Everything loads lazily: `import metricflow.serving` needs neither FastAPI nor grpc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "deployment_router": "_deploy_http",
    "DeploymentServicer": "_deploy_grpc", "add_to_server": "_deploy_grpc",
    "deployment_from_pb": "_deploy_grpc", "deployment_to_pb": "_deploy_grpc",
    "Report": "_report", "build_report": "_report", "analyze": "_report",
    "VariantData": "_report",
    "add_deploy_parsers": "_deploy_cli", "DeployClient": "_deploy_client",
    "add_serve_parsers": "_serve_cli",
    "Comparison": "_stats", "Interval": "_stats", "mean_ci": "_stats", "msprt": "_stats",
    "two_proportion_z_test": "_stats", "welch_t_test": "_stats", "wilson_ci": "_stats",
    "EXPERIMENT_PREFIX": "_naming", "KEY_ERROR": "_naming", "KEY_LATENCY": "_naming",
    "KEY_PREDICTION": "_naming", "KEY_STATUS": "_naming", "OUTCOME_PREFIX": "_naming",
    "ROLE_PRIMARY": "_naming", "ROLE_SHADOW": "_naming", "TAG_DEPLOYMENT": "_naming",
    "TAG_INSTANCE": "_naming", "TAG_ROLE": "_naming", "TAG_VARIANT": "_naming",
    "TAG_VERSION": "_naming", "experiment_name": "_naming",
}

__all__ = [
    "EXPERIMENT_PREFIX", "KEY_ERROR", "KEY_LATENCY", "KEY_PREDICTION", "KEY_STATUS",
    "OUTCOME_PREFIX", "ROLE_PRIMARY", "ROLE_SHADOW", "TAG_DEPLOYMENT", "TAG_INSTANCE",
    "TAG_ROLE", "TAG_VARIANT", "TAG_VERSION",
    "Comparison", "DeployClient", "DeploymentServicer", "Interval", "Report", "VariantData",
    "add_deploy_parsers", "add_serve_parsers", "add_to_server", "analyze", "build_report",
    "deployment_from_pb",
    "deployment_router", "deployment_to_pb", "experiment_name", "mean_ci", "msprt",
    "two_proportion_z_test", "welch_t_test", "wilson_ci",
]

if TYPE_CHECKING:
    from metricflow.serving._deploy_cli import add_deploy_parsers
    from metricflow.serving._deploy_client import DeployClient
    from metricflow.serving._deploy_grpc import (
        DeploymentServicer,
        add_to_server,
        deployment_from_pb,
        deployment_to_pb,
    )
    from metricflow.serving._deploy_http import deployment_router
    from metricflow.serving._naming import (
        EXPERIMENT_PREFIX,
        KEY_ERROR,
        KEY_LATENCY,
        KEY_PREDICTION,
        KEY_STATUS,
        OUTCOME_PREFIX,
        ROLE_PRIMARY,
        ROLE_SHADOW,
        TAG_DEPLOYMENT,
        TAG_INSTANCE,
        TAG_ROLE,
        TAG_VARIANT,
        TAG_VERSION,
        experiment_name,
    )
    from metricflow.serving._report import Report, VariantData, analyze, build_report
    from metricflow.serving._serve_cli import add_serve_parsers
    from metricflow.serving._stats import (
        Comparison,
        Interval,
        mean_ci,
        msprt,
        two_proportion_z_test,
        welch_t_test,
        wilson_ci,
    )


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
