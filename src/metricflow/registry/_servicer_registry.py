"""grpc.aio servicer for metricflow.registry.v1.RegistryService."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb
from metricflow._proto.metricflow.registry.v1 import registry_pb2_grpc as pb_grpc
from metricflow.registry._convert import audit_to_pb, model_to_pb, version_to_pb
from metricflow.registry._servicer_common import _EMPTY, _Base, _opt
from metricflow.registry._sources import check_new_source, check_source_readable

Ctx: TypeAlias = grpc.aio.ServicerContext


class RegistryServicer(_Base, pb_grpc.RegistryServiceServicer):
    """Registered models, versions, stages, aliases, URI resolution and the audit log."""

    async def CreateRegisteredModel(self, request: pb.CreateRegisteredModelRequest,
                                    context: Ctx) -> pb.RegisteredModel:
        actor = self._actor_of(context)
        return model_to_pb(await self._run(context, lambda: self._store.create_registered_model(
            request.name, dict(request.tags), request.description, actor=actor)))

    async def GetRegisteredModel(self, request: pb.ModelRef, context: Ctx) -> pb.RegisteredModel:
        return model_to_pb(await self._run(
            context, lambda: self._store.get_registered_model(request.name)))

    async def RenameRegisteredModel(self, request: pb.RenameRegisteredModelRequest,
                                    context: Ctx) -> pb.RegisteredModel:
        actor = self._actor_of(context)
        return model_to_pb(await self._run(context, lambda: self._store.rename_registered_model(
            request.name, request.new_name, expected_version=_opt(request, "expected_version"),
            actor=actor)))

    async def UpdateRegisteredModel(self, request: pb.UpdateRegisteredModelRequest,
                                    context: Ctx) -> pb.RegisteredModel:
        actor = self._actor_of(context)
        return model_to_pb(await self._run(context, lambda: self._store.update_registered_model(
            request.name, request.description,
            expected_version=_opt(request, "expected_version"), actor=actor)))

    async def DeleteRegisteredModel(self, request: pb.ModelRef, context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_registered_model(
            request.name, expected_version=_opt(request, "expected_version"), actor=actor))
        return _EMPTY

    async def SetRegisteredModelTag(self, request: pb.ModelTagRequest, context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.set_registered_model_tag(
            request.name, request.key, request.value, actor=actor))
        return _EMPTY

    async def DeleteRegisteredModelTag(self, request: pb.ModelTagRequest,
                                       context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_registered_model_tag(
            request.name, request.key, actor=actor))
        return _EMPTY

    async def SearchRegisteredModels(self, request: pb.SearchRegisteredModelsRequest,
                                     context: Ctx) -> pb.SearchRegisteredModelsResponse:
        page, token = await self._run(context, lambda: self._store.search_registered_models(
            request.filter, request.max_results or 100, list(request.order_by),
            request.page_token or None))
        return pb.SearchRegisteredModelsResponse(
            registered_models=[model_to_pb(m) for m in page], next_page_token=token or "")

    async def SetRegisteredModelAlias(self, request: pb.AliasRequest, context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.set_registered_model_alias(
            request.name, request.alias, request.version, actor=actor))
        return _EMPTY

    async def DeleteRegisteredModelAlias(self, request: pb.AliasRequest,
                                         context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_registered_model_alias(
            request.name, request.alias, actor=actor))
        return _EMPTY

    async def CreateModelVersion(self, request: pb.CreateModelVersionRequest,
                                 context: Ctx) -> pb.ModelVersion:
        actor = self._actor_of(context)

        def create() -> Any:
            check_new_source(request.source, run_id=request.run_id)
            return self._store.create_model_version(
                request.name, request.source, request.run_id or None, dict(request.tags),
                request.description, request.run_link, actor=actor)
        return version_to_pb(await self._run(context, create))

    async def GetModelVersion(self, request: pb.VersionRef, context: Ctx) -> pb.ModelVersion:
        return version_to_pb(await self._run(
            context, lambda: self._store.get_model_version(request.name, request.version)))

    async def UpdateModelVersion(self, request: pb.UpdateModelVersionRequest,
                                 context: Ctx) -> pb.ModelVersion:
        actor = self._actor_of(context)
        return version_to_pb(await self._run(context, lambda: self._store.update_model_version(
            request.name, request.version, request.description,
            expected_version=_opt(request, "expected_version"), actor=actor)))

    async def DeleteModelVersion(self, request: pb.VersionRef, context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_model_version(
            request.name, request.version, expected_version=_opt(request, "expected_version"),
            actor=actor))
        return _EMPTY

    async def TransitionModelVersionStage(self, request: pb.TransitionStageRequest,
                                          context: Ctx) -> pb.ModelVersion:
        actor = self._actor_of(context)
        return version_to_pb(await self._run(
            context, lambda: self._store.transition_model_version_stage(
                request.name, request.version, request.stage,
                request.archive_existing_versions, comment=request.comment,
                expected_version=_opt(request, "expected_version"), actor=actor)))

    async def SetModelVersionTag(self, request: pb.VersionTagRequest, context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.set_model_version_tag(
            request.name, request.version, request.key, request.value, actor=actor))
        return _EMPTY

    async def DeleteModelVersionTag(self, request: pb.VersionTagRequest,
                                    context: Ctx) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_model_version_tag(
            request.name, request.version, request.key, actor=actor))
        return _EMPTY

    async def GetLatestVersions(self, request: pb.GetLatestVersionsRequest,
                                context: Ctx) -> pb.ModelVersionList:
        found = await self._run(context, lambda: self._store.get_latest_versions(
            request.name, list(request.stages)))
        return pb.ModelVersionList(model_versions=[version_to_pb(v) for v in found])

    async def GetModelVersionByAlias(self, request: pb.AliasRequest,
                                     context: Ctx) -> pb.ModelVersion:
        return version_to_pb(await self._run(context, lambda: (
            self._store.get_model_version_by_alias(request.name, request.alias))))

    async def SearchModelVersions(self, request: pb.SearchModelVersionsRequest,
                                  context: Ctx) -> pb.SearchModelVersionsResponse:
        page, token = await self._run(context, lambda: self._store.search_model_versions(
            request.filter, request.max_results or 1000, list(request.order_by),
            request.page_token or None))
        return pb.SearchModelVersionsResponse(
            model_versions=[version_to_pb(v) for v in page], next_page_token=token or "")

    async def ResolveModelUri(self, request: pb.ResolveModelUriRequest,
                              context: Ctx) -> pb.ResolveModelUriResponse:
        def resolve() -> pb.ResolveModelUriResponse:
            mv = self._store.resolve_model_uri(request.model_uri)
            check_source_readable(mv.source)  # again for the reader (docs/registry.md)
            loc = self._store.get_model_version_download_uri(mv.name, mv.version)
            return pb.ResolveModelUriResponse(model_version=version_to_pb(mv),
                                              artifact_location=loc)
        return await self._run(context, resolve)

    async def SearchAuditLog(self, request: pb.SearchAuditLogRequest,
                             context: Ctx) -> pb.SearchAuditLogResponse:
        entries, token = await self._run(context, lambda: self._store.search_audit_log(
            model_name=_opt(request, "model_name"), actor=_opt(request, "actor"),
            experiment_id=_opt(request, "experiment_id"), action=_opt(request, "action"),
            max_results=request.max_results or 1000, page_token=request.page_token or None))
        return pb.SearchAuditLogResponse(entries=[audit_to_pb(e) for e in entries],
                                         next_page_token=token or "")
