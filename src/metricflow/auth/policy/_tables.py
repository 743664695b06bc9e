"""The permission table: every gRPC method and HTTP route -> what it needs.

One table for the whole server. The gRPC interceptor and the HTTP dependency
look a call up here; a method or route missing from the table is refused for
everyone but admins (fail closed), and a test enumerates the registered
services and routes to make sure the table covers them all.
"""

from __future__ import annotations

from metricflow.auth._authz import Need
from metricflow.auth.policy._alerts import GRPC_ALERT_RULES
from metricflow.auth.policy._common import (
    E,
    M,
    R,
    Rule,
    _audit_search,
    _chunk_read,
    _create_run,
    _create_version,
    _dedup,
    _exp_by_name,
    _get_or_create,
    _resolve_uri,
    _str,
    _update_run,
    admin,
    anyone,
    exp,
    model,
    run,
    runs,
    search,
)
from metricflow.auth.policy._governance import GRPC_GOVERNANCE_RULES, HTTP_GOVERNANCE_RULES
from metricflow.auth.policy._mlflow import mlflow_rules
from metricflow.auth.policy._serving import GRPC_SERVING_RULES, HTTP_SERVING_RULES

_ING, _Q = "/metricflow.ingest.v1.IngestService/", "/metricflow.query.v1.QueryService/"
_EX, _RG = "/metricflow.registry.v1.ExperimentService/", "/metricflow.registry.v1.RegistryService/"
_AR = "/metricflow.artifacts.v1.ArtifactService/"
WRITE_METHOD = _ING + "Write"

GRPC_RULES: dict[str, Rule] = {
    WRITE_METHOD: run(E),  # applied to every batch of the stream (see _grpc.py)
    _ING + "LogBatch": run(E),
    _ING + "CreateRun": Rule(_create_run, after="record_run"),
    _ING + "UpdateRun": Rule(_update_run),
    _Q + "GetRun": run(R), _Q + "GetMetricHistory": run(R),
    _Q + "SearchRuns": search(), _Q + "GroupByParam": search(),
    _Q + "CountPoints": runs(R, empty="admin"),
    _Q + "DownsampleHistory": runs(R), _Q + "CompareRuns": runs(R), _Q + "TailMetrics": runs(R),
    _EX + "CreateExperiment": Rule(lambda a, r: [Need("any", "", E)], after="grant_experiment"),
    _EX + "GetExperiment": exp(R), _EX + "GetExperimentByName": Rule(_exp_by_name),
    _EX + "GetOrCreateExperiment": Rule(_get_or_create, after="grant_experiment"),
    _EX + "SearchExperiments": search(),
    _EX + "RenameExperiment": exp(E), _EX + "DeleteExperiment": exp(M),
    _EX + "RestoreExperiment": exp(M), _EX + "SetExperimentTag": exp(E),
    _EX + "DeleteExperimentTag": exp(E),
    _RG + "CreateRegisteredModel": Rule(lambda a, r: [Need("any", "", E)], after="grant_model"),
    _RG + "GetRegisteredModel": model(R), _RG + "RenameRegisteredModel": model(E),
    _RG + "UpdateRegisteredModel": model(E), _RG + "DeleteRegisteredModel": model(M),
    _RG + "SetRegisteredModelTag": model(E), _RG + "DeleteRegisteredModelTag": model(E),
    _RG + "SearchRegisteredModels": search(),
    _RG + "SetRegisteredModelAlias": model(E), _RG + "DeleteRegisteredModelAlias": model(E),
    _RG + "CreateModelVersion": Rule(_create_version), _RG + "GetModelVersion": model(R),
    _RG + "UpdateModelVersion": model(E), _RG + "DeleteModelVersion": model(M),
    _RG + "TransitionModelVersionStage": model(E), _RG + "SetModelVersionTag": model(E),
    _RG + "DeleteModelVersionTag": model(E), _RG + "GetLatestVersions": model(R),
    _RG + "GetModelVersionByAlias": model(R), _RG + "SearchModelVersions": search(),
    _RG + "ResolveModelUri": Rule(_resolve_uri), _RG + "SearchAuditLog": Rule(_audit_search),
    # Chunks are content-addressed and shared between runs. Uploads need any edit-scoped
    # credential (a manifest commit needs EDIT on its run); reads are run-scoped: READ on
    # the run named in `mf-run-id`, and the chunk must be in one of its manifests.
    _AR + "MissingChunks": anyone(E), _AR + "UploadChunks": anyone(E),
    _AR + "PresignUploads": anyone(E), _AR + "FinalizeUploads": anyone(E),
    _AR + "CommitManifest": run(E), _AR + "ListArtifacts": run(R), _AR + "GetManifest": run(R),
    _AR + "DownloadChunks": Rule(_chunk_read), _AR + "PresignDownloads": Rule(_chunk_read),
    _AR + "DedupStats": Rule(_dedup),
}

_V = "/api/v1"
HTTP_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/metrics"): anyone(R), ("GET", "/openapi.json"): anyone(R),
    ("GET", "/docs"): anyone(R), ("GET", "/"): anyone(R),  # the docs page; what is served where
    ("GET", "/docs/static/{name}"): anyone(R),  # the docs page's own JS and CSS
    ("GET", _V + "/runs/{run_id}"): run(R),
    ("GET", _V + "/runs/{run_id}/metrics/{key:path}/history"): run(R),
    ("POST", _V + "/runs/search"): search(), ("POST", _V + "/runs/group-by-param"): search(),
    ("POST", _V + "/metrics/downsample"): runs(R), ("POST", _V + "/runs/compare"): runs(R),
    ("POST", _V + "/metrics/tail"): runs(R, empty="admin"),
    ("POST", _V + "/experiments/create"): GRPC_RULES[_EX + "CreateExperiment"],
    ("GET", _V + "/experiments/get"): exp(R),
    ("GET", _V + "/experiments/get-by-name"): Rule(_exp_by_name),
    ("POST", _V + "/experiments/search"): search(),
    ("POST", _V + "/experiments/update"): exp(E), ("POST", _V + "/experiments/delete"): exp(M),
    ("POST", _V + "/experiments/restore"): exp(M),
    ("POST", _V + "/experiments/set-experiment-tag"): exp(E),
    ("POST", _V + "/experiments/delete-experiment-tag"): exp(E),
    ("POST", _V + "/registered-models/create"): GRPC_RULES[_RG + "CreateRegisteredModel"],
    ("GET", _V + "/registered-models/get"): model(R),
    ("POST", _V + "/registered-models/rename"): model(E),
    ("PATCH", _V + "/registered-models/update"): model(E),
    ("POST", _V + "/registered-models/delete"): model(M),
    ("POST", _V + "/registered-models/set-tag"): model(E),
    ("POST", _V + "/registered-models/delete-tag"): model(E),
    ("POST", _V + "/registered-models/search"): search(),
    ("POST", _V + "/registered-models/alias"): model(E),
    ("DELETE", _V + "/registered-models/alias"): model(E),
    ("GET", _V + "/registered-models/alias"): model(R),
    ("POST", _V + "/registered-models/get-latest-versions"): model(R),
    ("POST", _V + "/model-versions/create"): Rule(_create_version),
    ("GET", _V + "/model-versions/get"): model(R),
    ("PATCH", _V + "/model-versions/update"): model(E),
    ("POST", _V + "/model-versions/delete"): model(M),
    ("POST", _V + "/model-versions/transition-stage"): model(E),
    ("POST", _V + "/model-versions/set-tag"): model(E),
    ("POST", _V + "/model-versions/delete-tag"): model(E),
    ("POST", _V + "/model-versions/search"): search(),
    ("GET", _V + "/model-versions/resolve"): Rule(_resolve_uri),
    ("GET", _V + "/audit-log/search"): Rule(_audit_search),
    # auth administration (metricflow.auth._admin_api)
    ("GET", _V + "/auth/whoami"): anyone(R),
    ("POST", _V + "/auth/tokens/create"): Rule(
        lambda a, r: [Need("user", _str(r, "username"), R)] if _str(r, "username")
        else [Need("any", "", R)]),
    ("POST", _V + "/auth/tokens/revoke"): Rule(
        lambda a, r: [Need("token", _str(r, "token_id"), R)]),
    ("GET", _V + "/auth/tokens/list"): Rule(lambda a, r: [Need("user", _str(r, "username"), R)]),
    ("GET", _V + "/auth/users/list"): admin(), ("POST", _V + "/auth/users/create"): admin(),
    ("POST", _V + "/auth/users/update"): admin(), ("POST", _V + "/auth/users/delete"): admin(),
    ("GET", _V + "/auth/permissions/user"): Rule(
        lambda a, r: [Need("user", _str(r, "username"), R)]),
    ("POST", _V + "/auth/permissions/experiments/set"): exp(M),
    ("POST", _V + "/auth/permissions/experiments/delete"): exp(M),
    ("POST", _V + "/auth/permissions/registered-models/set"): model(M),
    ("POST", _V + "/auth/permissions/registered-models/delete"): model(M),
}

RUN_SCOPED_BY_METADATA = frozenset({_AR + "DownloadChunks", _AR + "PresignDownloads"})
"""Methods whose run id comes from the `mf-run-id` metadata, not the request message."""

PUBLIC_GRPC = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
"""gRPC methods served without credentials (the standard health protocol, for probes)."""

FAIL_CLOSED = Rule(lambda a, r: [Need("admin", "", M)])
"""Rule of anything not in the tables: admins only."""

HTTP_RULES.update(mlflow_rules())
GRPC_RULES.update(GRPC_SERVING_RULES)  # deployments (auth/policy/_serving.py)
HTTP_RULES.update(HTTP_SERVING_RULES)
GRPC_RULES.update(GRPC_GOVERNANCE_RULES)  # approvals, policies, lineage (_governance.py)
HTTP_RULES.update(HTTP_GOVERNANCE_RULES)
GRPC_RULES.update(GRPC_ALERT_RULES)  # alert rules, mf.alert (auth/policy/_alerts.py)
