"""`RegistryClient`: a synchronous, MLflow-style client for the control plane over gRPC."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import grpc

from metricflow._grpc_errors import from_rpc_error
from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb
from metricflow._proto.metricflow.registry.v1 import registry_pb2_grpc as pb_grpc
from metricflow.entities import AuditEntry, Experiment, ModelVersion, RegisteredModel
from metricflow.errors import AlreadyExists
from metricflow.registry._convert import (
    audit_from_pb,
    experiment_from_pb,
    model_from_pb,
    version_from_pb,
)

T = TypeVar("T")


class PagedList(list[T]):
    """One page of results; `token` fetches the next page (None on the last page)."""

    def __init__(self, items: Iterable[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token or None


def _version(v: str | int) -> str:
    return str(v)


class RegistryClient:
    """Experiments and model registry calls; errors come back as metricflow errors.

    Args:
        channel: a `grpc.Channel` to a server running the registry services.
        actor: the user name recorded in the audit log for this client's changes.
        timeout: per-call deadline in seconds.
    """

    def __init__(self, channel: grpc.Channel, *, actor: str | None = None,
                 timeout: float = 30.0) -> None:
        self._exp = pb_grpc.ExperimentServiceStub(channel)
        self._reg = pb_grpc.RegistryServiceStub(channel)
        self._metadata = (("mf-actor", actor),) if actor else ()
        self._timeout = timeout

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    # ---- experiments ----
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Mapping[str, str] | None = None) -> str:
        """Create an experiment and return its id."""
        req = pb.CreateExperimentRequest(name=name, tags=dict(tags or {}))
        if artifact_location is not None:
            req.artifact_location = artifact_location
        return str(self._call(self._exp.CreateExperiment, req).experiment_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return experiment_from_pb(self._call(
            self._exp.GetExperiment, pb.ExperimentRef(experiment_id=str(experiment_id))))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        resp = self._call(self._exp.GetExperimentByName, pb.ExperimentNameRef(name=name))
        return experiment_from_pb(resp.experiment) if resp.HasField("experiment") else None

    def get_or_create_experiment(self, name: str) -> Experiment:
        return experiment_from_pb(self._call(self._exp.GetOrCreateExperiment,
                                             pb.ExperimentNameRef(name=name)))

    def search_experiments(self, filter_string: str = "", view_type: str = "active",
                           max_results: int = 1000, order_by: Sequence[str] = (),
                           page_token: str | None = None) -> PagedList[Experiment]:
        resp = self._call(self._exp.SearchExperiments, pb.SearchExperimentsRequest(
            filter=filter_string, view_type=view_type, max_results=max_results,
            order_by=list(order_by), page_token=page_token or ""))
        return PagedList([experiment_from_pb(e) for e in resp.experiments],
                         resp.next_page_token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._call(self._exp.RenameExperiment, pb.RenameExperimentRequest(
            experiment_id=str(experiment_id), new_name=new_name))

    def delete_experiment(self, experiment_id: str) -> None:
        self._call(self._exp.DeleteExperiment, pb.ExperimentRef(experiment_id=str(experiment_id)))

    def restore_experiment(self, experiment_id: str) -> None:
        self._call(self._exp.RestoreExperiment,
                   pb.ExperimentRef(experiment_id=str(experiment_id)))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call(self._exp.SetExperimentTag, pb.ExperimentTagRequest(
            experiment_id=str(experiment_id), key=key, value=value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._call(self._exp.DeleteExperimentTag, pb.ExperimentTagRequest(
            experiment_id=str(experiment_id), key=key))

    # ---- registered models ----
    def create_registered_model(self, name: str, tags: Mapping[str, str] | None = None,
                                description: str = "") -> RegisteredModel:
        return model_from_pb(self._call(self._reg.CreateRegisteredModel,
                                        pb.CreateRegisteredModelRequest(
                                            name=name, tags=dict(tags or {}),
                                            description=description or "")))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return model_from_pb(self._call(self._reg.GetRegisteredModel, pb.ModelRef(name=name)))

    def rename_registered_model(self, name: str, new_name: str, *,
                                expected_version: int | None = None) -> RegisteredModel:
        return model_from_pb(self._call(self._reg.RenameRegisteredModel,
                                        pb.RenameRegisteredModelRequest(
                                            name=name, new_name=new_name,
                                            expected_version=expected_version)))

    def update_registered_model(self, name: str, description: str, *,
                                expected_version: int | None = None) -> RegisteredModel:
        return model_from_pb(self._call(self._reg.UpdateRegisteredModel,
                                        pb.UpdateRegisteredModelRequest(
                                            name=name, description=description,
                                            expected_version=expected_version)))

    def delete_registered_model(self, name: str, *, expected_version: int | None = None) -> None:
        self._call(self._reg.DeleteRegisteredModel,
                   pb.ModelRef(name=name, expected_version=expected_version))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._call(self._reg.SetRegisteredModelTag,
                   pb.ModelTagRequest(name=name, key=key, value=value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call(self._reg.DeleteRegisteredModelTag, pb.ModelTagRequest(name=name, key=key))

    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] = (), page_token: str | None = None
                                 ) -> PagedList[RegisteredModel]:
        resp = self._call(self._reg.SearchRegisteredModels, pb.SearchRegisteredModelsRequest(
            filter=filter_string, max_results=max_results, order_by=list(order_by),
            page_token=page_token or ""))
        return PagedList([model_from_pb(m) for m in resp.registered_models],
                         resp.next_page_token)

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self._call(self._reg.SetRegisteredModelAlias,
                   pb.AliasRequest(name=name, alias=alias, version=_version(version)))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call(self._reg.DeleteRegisteredModelAlias, pb.AliasRequest(name=name, alias=alias))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return version_from_pb(self._call(self._reg.GetModelVersionByAlias,
                                          pb.AliasRequest(name=name, alias=alias)))

    # ---- model versions ----
    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: Mapping[str, str] | None = None, run_link: str = "",
                             description: str = "") -> ModelVersion:
        return version_from_pb(self._call(self._reg.CreateModelVersion,
                                          pb.CreateModelVersionRequest(
                                              name=name, source=source, run_id=run_id or "",
                                              tags=dict(tags or {}), run_link=run_link or "",
                                              description=description or "")))

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return version_from_pb(self._call(self._reg.GetModelVersion,
                                          pb.VersionRef(name=name, version=_version(version))))

    def update_model_version(self, name: str, version: str | int, description: str, *,
                             expected_version: int | None = None) -> ModelVersion:
        return version_from_pb(self._call(self._reg.UpdateModelVersion,
                                          pb.UpdateModelVersionRequest(
                                              name=name, version=_version(version),
                                              description=description,
                                              expected_version=expected_version)))

    def delete_model_version(self, name: str, version: str | int, *,
                             expected_version: int | None = None) -> None:
        self._call(self._reg.DeleteModelVersion, pb.VersionRef(
            name=name, version=_version(version), expected_version=expected_version))

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False, *,
                                       comment: str = "",
                                       expected_version: int | None = None) -> ModelVersion:
        return version_from_pb(self._call(self._reg.TransitionModelVersionStage,
                                          pb.TransitionStageRequest(
                                              name=name, version=_version(version), stage=stage,
                                              archive_existing_versions=archive_existing_versions,
                                              comment=comment or "",
                                              expected_version=expected_version)))

    def set_model_version_tag(self, name: str, version: str | int, key: str,
                              value: str) -> None:
        self._call(self._reg.SetModelVersionTag, pb.VersionTagRequest(
            name=name, version=_version(version), key=key, value=value))

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        self._call(self._reg.DeleteModelVersionTag, pb.VersionTagRequest(
            name=name, version=_version(version), key=key))

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None
                            ) -> list[ModelVersion]:
        resp = self._call(self._reg.GetLatestVersions, pb.GetLatestVersionsRequest(
            name=name, stages=list(stages or ())))
        return [version_from_pb(v) for v in resp.model_versions]

    def search_model_versions(self, filter_string: str = "", max_results: int = 1000,
                              order_by: Sequence[str] = (), page_token: str | None = None
                              ) -> PagedList[ModelVersion]:
        resp = self._call(self._reg.SearchModelVersions, pb.SearchModelVersionsRequest(
            filter=filter_string, max_results=max_results, order_by=list(order_by),
            page_token=page_token or ""))
        return PagedList([version_from_pb(v) for v in resp.model_versions],
                         resp.next_page_token)

    def resolve_model_uri(self, model_uri: str) -> tuple[ModelVersion, str]:
        """Resolve a `models:/` URI to its version and artifact location."""
        resp = self._call(self._reg.ResolveModelUri,
                          pb.ResolveModelUriRequest(model_uri=model_uri))
        return version_from_pb(resp.model_version), resp.artifact_location

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        return self.resolve_model_uri(f"models:/{name}/{_version(version)}")[1]

    def register_model(self, model_uri: str, name: str,
                       tags: Mapping[str, str] | None = None) -> ModelVersion:
        """Register `model_uri` (`runs:/...`, a storage URI, or `models:/...`) under `name`.

        Creates the registered model if it does not exist yet; a `models:/` URI
        registers a copy of that version's source.
        """
        try:
            self.create_registered_model(name)
        except AlreadyExists:
            pass
        source, run_id = model_uri, None
        if model_uri.startswith("models:/"):
            mv, _ = self.resolve_model_uri(model_uri)
            source, run_id = mv.source, mv.run_id or None
        return self.create_model_version(name, source, run_id=run_id, tags=tags)

    def search_audit_log(self, *, model_name: str | None = None, actor: str | None = None,
                         experiment_id: str | None = None, action: str | None = None,
                         max_results: int = 1000, page_token: str | None = None
                         ) -> PagedList[AuditEntry]:
        resp = self._call(self._reg.SearchAuditLog, pb.SearchAuditLogRequest(
            model_name=model_name, actor=actor, experiment_id=experiment_id, action=action,
            max_results=max_results, page_token=page_token or ""))
        return PagedList([audit_from_pb(e) for e in resp.entries], resp.next_page_token)
