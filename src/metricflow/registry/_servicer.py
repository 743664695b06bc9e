"""grpc.aio servicers for ExperimentService and RegistryService over a MetadataStore.

Store calls are synchronous SQL, so each runs in a worker thread and never
blocks the event loop (`_servicer_common._Base`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb
from metricflow._proto.metricflow.registry.v1 import registry_pb2_grpc as pb_grpc
from metricflow.registry._convert import experiment_to_pb
from metricflow.registry._servicer_common import (
    _EMPTY,
    ActorOf,
    _Base,
    _opt,
    actor_from_metadata,
)
from metricflow.registry._servicer_registry import RegistryServicer

if TYPE_CHECKING:
    from metricflow.store.metadata import MetadataStore


class ExperimentServicer(_Base, pb_grpc.ExperimentServiceServicer):
    """metricflow.registry.v1.ExperimentService."""

    async def CreateExperiment(self, request: pb.CreateExperimentRequest,
                               context: grpc.aio.ServicerContext) -> pb.CreateExperimentResponse:
        actor = self._actor_of(context)
        eid = await self._run(context, lambda: self._store.create_experiment(
            request.name, _opt(request, "artifact_location"), dict(request.tags), actor=actor))
        return pb.CreateExperimentResponse(experiment_id=eid)

    async def GetExperiment(self, request: pb.ExperimentRef,
                            context: grpc.aio.ServicerContext) -> pb.Experiment:
        e = await self._run(context, lambda: self._store.get_experiment(request.experiment_id))
        return experiment_to_pb(e)

    async def GetExperimentByName(self, request: pb.ExperimentNameRef,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.GetExperimentByNameResponse:
        e = await self._run(context, lambda: self._store.get_experiment_by_name(request.name))
        return pb.GetExperimentByNameResponse(
            experiment=experiment_to_pb(e) if e is not None else None)

    async def GetOrCreateExperiment(self, request: pb.ExperimentNameRef,
                                    context: grpc.aio.ServicerContext) -> pb.Experiment:
        actor = self._actor_of(context)
        e = await self._run(context, lambda: self._store.get_or_create_experiment(
            request.name, actor=actor))
        return experiment_to_pb(e)

    async def SearchExperiments(self, request: pb.SearchExperimentsRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.SearchExperimentsResponse:
        page, token = await self._run(context, lambda: self._store.search_experiments(
            request.filter, request.view_type or "active", request.max_results or 1000,
            list(request.order_by), request.page_token or None))
        return pb.SearchExperimentsResponse(experiments=[experiment_to_pb(e) for e in page],
                                            next_page_token=token or "")

    async def RenameExperiment(self, request: pb.RenameExperimentRequest,
                               context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.rename_experiment(
            request.experiment_id, request.new_name, actor=actor))
        return _EMPTY

    async def DeleteExperiment(self, request: pb.ExperimentRef,
                               context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_experiment(
            request.experiment_id, actor=actor))
        return _EMPTY

    async def RestoreExperiment(self, request: pb.ExperimentRef,
                                context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.restore_experiment(
            request.experiment_id, actor=actor))
        return _EMPTY

    async def SetExperimentTag(self, request: pb.ExperimentTagRequest,
                               context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.set_experiment_tag(
            request.experiment_id, request.key, request.value, actor=actor))
        return _EMPTY

    async def DeleteExperimentTag(self, request: pb.ExperimentTagRequest,
                                  context: grpc.aio.ServicerContext) -> pb.Empty:
        actor = self._actor_of(context)
        await self._run(context, lambda: self._store.delete_experiment_tag(
            request.experiment_id, request.key, actor=actor))
        return _EMPTY


def add_to_server(server: grpc.aio.Server, store: MetadataStore, *,
                  actor_of: ActorOf = actor_from_metadata) -> None:
    """Register ExperimentService and RegistryService for `store` on `server`."""
    pb_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(store, actor_of), server)
    pb_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(store, actor_of), server)
