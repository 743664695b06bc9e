"""The guard's parameter view, policy type checks, fail-closed lookups, route guarding.

Findings 2, 7 and 12 of the security review, at the unit level (the HTTP
repros are in tests/integration/auth/test_param_confusion.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel
from starlette.datastructures import QueryParams
from starlette.routing import Mount, WebSocketRoute

from metricflow.auth._authz import Authorizer, Need
from metricflow.auth._guard import Guard
from metricflow.auth._http import secure_app
from metricflow.auth._params import fastapi_view, route_spec
from metricflow.auth._types import AuthConfig, Permission
from metricflow.auth.policy import HTTP_RULES
from metricflow.auth.policy._common import _list, _str
from metricflow.errors import InvalidArgument
from metricflow.mlflow_compat._routing import Args


def test_a_malformed_experiment_id_fails_closed_even_with_default_read(auth: Any) -> None:
    authz = Authorizer(auth, AuthConfig(enabled=True, default_permission="READ"),
                       lambda ids: {})
    auth.create_user("mallory")
    p = auth.principal_of_user("mallory")
    assert p is not None
    for bad in ("['1', '1']", "abc", "-1", "99999999999999"):
        # Refused (400, as the store refuses it) before any grant or default is used.
        with pytest.raises(InvalidArgument, match="experiment_id"):
            authz.check(p, [Need("experiment", bad, Permission.READ)])
    with pytest.raises(InvalidArgument):
        authz.experiment_level(p, "")


class _Body(BaseModel):
    name: str
    run_ids: list[str] = []


def _route(app: FastAPI, path: str) -> Any:
    return next(r for r in app.router.routes if getattr(r, "path", "") == path)


def test_fastapi_view_reads_each_parameter_where_fastapi_does() -> None:
    app = FastAPI()

    @app.post("/b/{rid}")
    def body_route(rid: str, body: _Body, flag: int = 0) -> None: ...

    @app.delete("/q")
    def query_route(name: str, tags: Annotated[list[str] | None, Query()] = None) -> None: ...

    spec = route_spec(_route(app, "/b/{rid}"))
    v = fastapi_view(spec, QueryParams("name=query-name&run_ids=q&flag=1"), {"rid": "p"},
                     b'{"name": "body-name", "run_ids": ["b"], "extra": 1}')
    assert v.values == {"name": "body-name", "run_ids": ["b"], "flag": "1", "rid": "p"}

    spec = route_spec(_route(app, "/q"))
    assert spec.body is None  # no body parameter: the body is never parsed
    v = fastapi_view(spec, QueryParams("name=n&tags=a&tags=b"), {}, None)
    assert v.values == {"name": "n", "tags": ["a", "b"]}
    with pytest.raises(InvalidArgument, match="'name' is given 2 times"):
        fastapi_view(spec, QueryParams("name=a&name=b"), {}, None)


def test_mlflow_args_refuse_repeated_query_values_and_skip_json_nulls() -> None:
    a = Args(QueryParams("run_id=q&run_id=r&experiment_id=7"),
             {"run_id": None, "experiment_id": None, "run_uuid": "u"})
    with pytest.raises(InvalidArgument, match="run_id"):
        a.param("run_id")
    assert a.param("experiment_id") == "7"  # a null body value falls back to the query
    assert _str(a, "run_uuid") == "u"


@pytest.mark.parametrize("value", [5, {"a": 1}, True, 1.5])
def test_list_parameters_of_the_wrong_type_are_invalid_argument(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="run_ids"):
        _list({"run_ids": value}, "run_ids")


def test_list_parameters_of_grpc_requests_are_read_from_repeated_fields() -> None:
    # upb's repeated containers have no __iter__ attribute: a check for one refused
    # every gRPC call whose rule lists runs (TailMetrics, CompareRuns, ...) with auth on.
    from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb

    ids = ["a" * 32, "b" * 32]
    assert _list(qpb.TailMetricsRequest(run_ids=ids), "run_ids") == ids
    assert _list(qpb.TailMetricsRequest(), "run_ids") == []


@pytest.mark.parametrize("value", [["x"], {"$ne": ""}, True])
def test_scalar_parameters_of_the_wrong_type_are_invalid_argument(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="run_id"):
        _str({"run_id": value}, "run_id")
    rule = HTTP_RULES[("POST", "/api/2.0/mlflow/runs/log-metric")]
    with pytest.raises(InvalidArgument):
        rule.resolve(None, {"run_id": value})  # type: ignore[arg-type]


def _noop(*a: Any) -> None: ...


@pytest.mark.parametrize("extra", [
    lambda: Mount("/sub", app=FastAPI()),
    lambda: WebSocketRoute("/ws", _noop),
])
def test_secure_app_refuses_routes_the_guard_cannot_reach(extra: Any) -> None:
    guard = Guard(AuthConfig(enabled=True), None, None)
    app = FastAPI()
    app.router.routes.append(extra())
    with pytest.raises(ValueError, match="not an APIRoute"):
        secure_app(app, guard)
    router = APIRouter()
    router.routes.append(extra())
    with pytest.raises(ValueError, match="not an APIRoute"):
        secure_app(FastAPI(), guard, [router])
