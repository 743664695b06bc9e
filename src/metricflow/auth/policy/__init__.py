"""The permission table: every gRPC method and HTTP route -> the `Rule` it needs.

`GRPC_RULES` and `HTTP_RULES` (native API, plus the MLflow REST API's rows from
`mlflow_rules()`) are looked up by the gRPC interceptor and the HTTP guard;
anything missing is `FAIL_CLOSED` (admins only). Routes defined elsewhere (the
web UI's API) declare their rule with the constructors `anyone`, `admin`, `exp`,
`run`, `runs`, `model` and `search`.
"""

from __future__ import annotations

from metricflow.auth.policy._common import (
    RUN_ID_METADATA,
    E,
    M,
    R,
    Resolver,
    Rule,
    admin,
    anyone,
    exp,
    model,
    run,
    runs,
    search,
)
from metricflow.auth.policy._mlflow import mlflow_rules, run_any
from metricflow.auth.policy._tables import (
    FAIL_CLOSED,
    GRPC_RULES,
    HTTP_RULES,
    PUBLIC_GRPC,
    RUN_SCOPED_BY_METADATA,
    WRITE_METHOD,
)

__all__ = [
    "E", "FAIL_CLOSED", "GRPC_RULES", "HTTP_RULES", "M", "PUBLIC_GRPC", "R", "RUN_ID_METADATA",
    "RUN_SCOPED_BY_METADATA", "WRITE_METHOD", "Resolver", "Rule", "admin", "anyone", "exp",
    "mlflow_rules", "model", "run", "run_any", "runs", "search",
]
