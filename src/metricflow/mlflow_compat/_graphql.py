"""MLflow's `/graphql` endpoint: the queries MLflow's server answers, on the REST handlers.

MLflow's web UI (and some tools) read runs, experiments, artifacts, model versions
and sampled metric histories through GraphQL. This serves the same operations
(`mlflowGetExperiment`, `mlflowGetRun`, `mlflowSearchRuns`, `mlflowListArtifacts`,
`mlflowSearchModelVersions`, `mlflowGetMetricHistoryBulkInterval`, and MLflow's
`test` probe) with MLflow's field names (camelCase), int64 fields as strings, and
non-finite metric values as null. Each field resolves through the REST handler of
the same call, so validation, authorization scoping and errors are the REST API's.

Parsing and execution use graphql-core (the reference GraphQL implementation for
Python, a small pure-Python package MLflow itself depends on): a hand-written
parser of GraphQL would be a new attack surface. MLflow's request limits are
applied before execution: root fields and aliases (`MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS`,
`MLFLOW_SERVER_GRAPHQL_MAX_ALIASES`, default 10 each), depth 10, 1000 selections.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from metricflow import _env
from metricflow._env import EnvVar
from metricflow.errors import MetricflowError
from metricflow.mlflow_compat._context import Compat
from metricflow.mlflow_compat._routing import Args, error_response, json_response

MAX_DEPTH = 10
MAX_SELECTIONS = 1000
MAX_BODY = 1 << 20

_SDL = """
scalar LongString

type Query {
  test(inputString: String): TestResult
  mlflowGetExperiment(input: MlflowGetExperimentInput): MlflowGetExperimentResponse
  mlflowGetRun(input: MlflowGetRunInput): MlflowGetRunResponse
  mlflowListArtifacts(input: MlflowListArtifactsInput): MlflowListArtifactsResponse
  mlflowSearchModelVersions(input: MlflowSearchModelVersionsInput):
    MlflowSearchModelVersionsResponse
  mlflowGetMetricHistoryBulkInterval(input: MlflowGetMetricHistoryBulkIntervalInput):
    MlflowGetMetricHistoryBulkIntervalResponse
  mlflowSearchRuns(input: MlflowSearchRunsInput): MlflowSearchRunsResponse
}

type Mutation {
  mlflowSearchRuns(input: MlflowSearchRunsInput): MlflowSearchRunsResponse
}

type TestResult { output: String }

input MlflowGetExperimentInput { experimentId: String }
input MlflowGetRunInput { runId: String, runUuid: String }
input MlflowListArtifactsInput { runId: String, runUuid: String, path: String,
                                 pageToken: String }
input MlflowSearchModelVersionsInput { filter: String, maxResults: LongString,
                                       orderBy: [String], pageToken: String }
input MlflowGetMetricHistoryBulkIntervalInput { runIds: [String], metricKey: String,
                                                startStep: Int, endStep: Int, maxResults: Int }
input MlflowSearchRunsInput { experimentIds: [String], filter: String, runViewType: String,
                              maxResults: Int, orderBy: [String], pageToken: String }

type MlflowKeyValue { key: String, value: String }

type MlflowExperiment {
  experimentId: String, name: String, artifactLocation: String, lifecycleStage: String,
  lastUpdateTime: LongString, creationTime: LongString, tags: [MlflowKeyValue]
}
type MlflowGetExperimentResponse { experiment: MlflowExperiment }

type MlflowRunInfo {
  runId: String, runUuid: String, runName: String, experimentId: String, userId: String,
  status: String, startTime: LongString, endTime: LongString, artifactUri: String,
  lifecycleStage: String
}
type MlflowMetric { key: String, value: Float, timestamp: LongString, step: LongString }
type MlflowRunData { metrics: [MlflowMetric], params: [MlflowKeyValue],
                     tags: [MlflowKeyValue] }
type MlflowDataset { name: String, digest: String, sourceType: String, source: String,
                     schema: String, profile: String }
type MlflowDatasetInput { tags: [MlflowKeyValue], dataset: MlflowDataset }
type MlflowRunInputs { datasetInputs: [MlflowDatasetInput] }
type MlflowRun { info: MlflowRunInfo, data: MlflowRunData, inputs: MlflowRunInputs,
                 experiment: MlflowExperiment }
type MlflowGetRunResponse { run: MlflowRun }
type MlflowSearchRunsResponse { runs: [MlflowRun], nextPageToken: String }

type MlflowFileInfo { path: String, isDir: Boolean, fileSize: LongString }
type MlflowListArtifactsResponse { rootUri: String, files: [MlflowFileInfo],
                                   nextPageToken: String }

type MlflowModelVersionAlias { alias: String, version: String }
type MlflowModelVersion {
  name: String, version: String, creationTimestamp: LongString,
  lastUpdatedTimestamp: LongString, userId: String, currentStage: String,
  description: String, source: String, runId: String, status: String,
  statusMessage: String, tags: [MlflowKeyValue], runLink: String, aliases: [String],
  modelId: String
}
type MlflowSearchModelVersionsResponse { modelVersions: [MlflowModelVersion],
                                         nextPageToken: String }

type MlflowMetricWithRunId { key: String, value: Float, timestamp: LongString,
                             step: LongString, runId: String }
type MlflowGetMetricHistoryBulkIntervalResponse { metrics: [MlflowMetricWithRunId] }
"""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(k): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _limit(var: EnvVar[int]) -> int:
    try:
        return max(1, var.get())
    except ValueError:  # not a number: MLflow's default, as MLflow does
        return var.default


def check_limits(document: Any, operation_name: str | None) -> str | None:
    """MLflow's query limits, before validation (the fields need not exist): the message
    of the first one exceeded, else None."""
    from graphql.language import FieldNode, OperationDefinitionNode

    max_root = _limit(_env.GRAPHQL_MAX_ROOT_FIELDS)
    max_aliases = _limit(_env.GRAPHQL_MAX_ALIASES)
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for op in ops:
        if operation_name and op.name and op.name.value != operation_name:
            continue
        roots = [s for s in op.selection_set.selections if isinstance(s, FieldNode)]
        if len(roots) > max_root:
            return (f"GraphQL queries should have at most {max_root} root fields, got "
                    f"{len(roots)}")
        aliases = selections = 0
        stack = [(s, 1) for s in op.selection_set.selections]
        while stack:
            node, depth = stack.pop()
            selections += 1
            if depth > MAX_DEPTH:
                return f"Query exceeds maximum depth of {MAX_DEPTH}"
            if selections > MAX_SELECTIONS:
                return f"Query exceeds maximum total selections of {MAX_SELECTIONS}"
            if isinstance(node, FieldNode) and node.alias is not None:
                aliases += 1
                if aliases > max_aliases:
                    return f"GraphQL queries should have at most {max_aliases} aliases"
            sub = getattr(node, "selection_set", None)
            if sub is not None:
                stack.extend((s, depth + 1) for s in sub.selections)
    return None


class GraphqlRoute:
    """POST/GET /graphql (and under /ajax-api/graphql, as MLflow's UI calls it)."""

    def __init__(self, c: Compat, handlers: dict[str, Any]) -> None:
        from graphql import GraphQLScalarType, build_schema

        self.c = c
        self.h = handlers
        self.schema = build_schema(_SDL)
        long_string = self.schema.type_map["LongString"]
        assert isinstance(long_string, GraphQLScalarType)
        long_string.serialize = lambda v: str(int(v))  # type: ignore[method-assign, assignment]
        long_string.parse_value = str  # type: ignore[method-assign, assignment]

    # -------------------------------------------------------------- resolvers
    @staticmethod
    def _authorize(name: str, body: dict[str, Any]) -> None:
        """The REST route's permission check for one field (the auth guard only saw
        /graphql). Searches need none here: the caller-scoped stores filter them."""
        from metricflow.auth import Need, Permission, current

        cur = current()
        if cur is None or cur[1] is None:
            return  # auth off
        principal, authz = cur
        R = Permission.READ
        if name == "get_experiment":
            needs = [Need("experiment", str(body.get("experiment_id") or ""), R)]
        elif name in ("get_run", "list_artifacts"):
            needs = [Need("run", str(body.get("run_id") or body.get("run_uuid") or ""), R)]
        elif name == "bulk_interval":
            needs = [Need("run", str(r), R) for r in body.get("run_ids") or []]
        else:
            return
        authz.check(principal, needs)

    async def _rest(self, name: str, body: dict[str, Any]) -> Any:
        self._authorize(name, body)
        out = await self.h[name](Args({}, body))
        if isinstance(out, Response):
            return json.loads(bytes(out.body) or b"{}")
        return out

    async def _root(self, field: str, args: dict[str, Any]) -> Any:
        body = _snake_keys(args.get("input") or {})
        if field == "test":
            return {"output": args.get("inputString") or ""}
        if field == "mlflowGetExperiment":
            return await self._rest("get_experiment", body)
        if field == "mlflowGetRun":
            return await self._rest("get_run", body)
        if field == "mlflowSearchRuns":
            return await self._rest("search_runs", body)
        if field == "mlflowListArtifacts":
            return await self._rest("list_artifacts", body)
        if field == "mlflowSearchModelVersions":
            return await self._rest("search_model_versions", body)
        if field == "mlflowGetMetricHistoryBulkInterval":
            return await self._rest("bulk_interval", body)
        return None

    def _resolver(self) -> Any:
        from graphql import GraphQLList, GraphQLNonNull, GraphQLScalarType, get_named_type

        root = self

        def resolve(source: Any, info: Any, **args: Any) -> Any:
            if source is _ROOT:
                return root._root(info.field_name, args)
            if not isinstance(source, dict):
                return None
            if info.field_name == "experiment" and "info" in source and "data" in source:
                exp_id = source["info"].get("experiment_id", "")
                return root._experiment_of_run(exp_id)
            value = source.get(_snake(info.field_name))
            rtype = info.return_type
            while isinstance(rtype, GraphQLNonNull):
                rtype = rtype.of_type
            if isinstance(rtype, GraphQLList):
                return value or []
            named = get_named_type(rtype)
            if isinstance(named, GraphQLScalarType):
                return _scalar(named.name, value)
            return value if value is not None else {}

        return resolve

    async def _experiment_of_run(self, exp_id: str) -> Any:
        try:
            return (await self._rest("get_experiment", {"experiment_id": exp_id}))["experiment"]
        except MetricflowError:
            return None

    # ------------------------------------------------------------------ route
    async def handle(self, request: Request) -> Response:
        from graphql import GraphQLError, graphql, parse

        try:
            if request.method == "GET":
                q = request.query_params
                payload: dict[str, Any] = {"query": q.get("query", ""),
                                           "operationName": q.get("operationName")}
                if q.get("variables"):
                    payload["variables"] = json.loads(q["variables"])
            else:
                raw = await request.body()
                if len(raw) > MAX_BODY:
                    return json_response({"data": None, "errors": [
                        f"GraphQL request body is {len(raw)} bytes; the limit is {MAX_BODY}"]})
                payload = json.loads(raw or b"{}")
            if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
                return json_response({"data": None,
                                      "errors": ["GraphQL request needs a 'query' string"]}, 400)
        except ValueError as e:
            return json_response({"data": None, "errors": [f"invalid JSON body: {e}"]}, 400)
        except Exception as e:
            return error_response(e)
        try:
            document = parse(payload["query"])
        except GraphQLError as e:
            return json_response({"data": None, "errors": [str(e)]})
        op = payload.get("operationName")
        too_big = check_limits(document, op if isinstance(op, str) else None)
        if too_big:
            return json_response({"data": None, "errors": [too_big]})
        variables = payload.get("variables")
        result = await graphql(self.schema, payload["query"], root_value=_ROOT,
                               variable_values=variables if isinstance(variables, dict)
                               else None,
                               operation_name=op if isinstance(op, str) else None,
                               field_resolver=self._resolver())
        errors = [_error_text(e) for e in result.errors] if result.errors else None
        return json_response({"data": result.data, "errors": errors})


class _Root:
    """The root value: marks the top-level fields for the resolver."""


_ROOT = _Root()


def _error_text(e: Any) -> str:
    orig = getattr(e, "original_error", None)
    if isinstance(orig, MetricflowError):
        return orig.message
    return str(e)


def _scalar(type_name: str, value: Any) -> Any:
    """REST JSON values as MLflow's GraphQL shows them (proto defaults when unset)."""
    if type_name == "Float":
        if value is None:
            return None
        try:
            f = float(value)
        except (TypeError, ValueError):
            return None
        return f if math.isfinite(f) else None  # NaN and infinities: null
    if type_name == "LongString":
        return int(value) if value not in (None, "") else 0
    if type_name == "Boolean":
        return bool(value)
    if type_name == "Int":
        return int(value) if value not in (None, "") else 0
    return "" if value is None else str(value)


def add_routes(routes: Any, c: Compat) -> None:
    """Mount /graphql and /ajax-api/graphql (MLflow's paths)."""
    from metricflow.mlflow_compat._artifacts import ArtifactRoutes
    from metricflow.mlflow_compat._experiments import ExperimentRoutes
    from metricflow.mlflow_compat._metrics import MetricRoutes
    from metricflow.mlflow_compat._registry import RegistryRoutes
    from metricflow.mlflow_compat._rules import anyone_read
    from metricflow.mlflow_compat._runs import RunRoutes

    runs = RunRoutes(c)
    g = GraphqlRoute(c, {
        "get_experiment": ExperimentRoutes(c).get, "get_run": runs.get,
        "search_runs": runs.search, "list_artifacts": ArtifactRoutes(c).list_run,
        "search_model_versions": RegistryRoutes(c).search_versions,
        "bulk_interval": MetricRoutes(c).get_history_bulk_interval})

    async def graphql_endpoint(request: Request) -> Response:
        return await g.handle(request)

    # Any signed-in caller; each field is the REST call of the same name, so what it
    # returns is scoped like the REST API's answer (auth's caller-scoped stores).
    graphql_endpoint.mf_rule = anyone_read()  # type: ignore[attr-defined]
    for path in ("/graphql", "/ajax-api/graphql"):
        routes.router.add_api_route(path, graphql_endpoint, methods=["GET", "POST"],
                                    include_in_schema=False)
