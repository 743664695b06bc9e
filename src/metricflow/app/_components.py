"""`Components`: every long-lived object of one server process, built once from settings.

`build_components` opens what the process's services need, in dependency order,
each backend chosen by its URI (`_backends.py`). Nothing is set on a component
after it is built; what a front end needs is passed to it (`_mount.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metricflow.app._backends import open_blobs, open_metadata, open_metric_store, open_sink
from metricflow.app._roles import ALERTS, MLFLOW, NEEDS_METADATA, WRITER, WRITES, services
from metricflow.app._settings import ServerConfig
from metricflow.server import ARTIFACTS, INGEST, QUERY, Upstream

if TYPE_CHECKING:
    from metricflow.alerts import AlertsService
    from metricflow.artifacts import ArtifactStore
    from metricflow.auth import ServerAuth
    from metricflow.ingest import IngestSink, KafkaWriter, TrackingCore, UpstreamRuns
    from metricflow.query import QueryCore
    from metricflow.store import MetricStore
    from metricflow.store.metadata import MetadataStore

log = logging.getLogger(__name__)


class NoRunLookup:
    """Run lookups for an ingest node without ClickHouse access: every run is unknown.

    Ingest then runs with strict_runs=False; the writer still rejects params and
    tags of missing or deleted runs when it applies them. Lifecycle calls, parents
    and stored params are read through --query-upstream when given (UpstreamRuns).
    """

    sees_all_runs = False

    def get_run_infos(self, run_ids: object) -> dict[str, object]:
        return {}

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class Components:
    """The objects one process serves from (None: this role does not use it)."""

    settings: ServerConfig
    """What they were built from."""
    services: frozenset[str]
    """What the process mounts (`_roles.services`)."""
    store: MetricStore | None
    """The data plane (ClickHouse or chDB)."""
    metadata: MetadataStore | None
    """The control plane (SQLite or PostgreSQL), unscoped."""
    metadata_view: MetadataStore | None
    """The control plane as request handlers see it (scoped to the caller with auth on)."""
    auth: ServerAuth | None
    """Interceptors, HTTP guard, scoped views; None on a writer serving no clients."""
    artifacts: ArtifactStore | None
    """The artifact store (local files or S3)."""
    artifact_root: str
    """Its URI (shown to MLflow clients as mlflow-artifacts:/); "" without one."""
    sink: IngestSink | None
    """Where writes go: the in-process writer or Kafka."""
    tracking: TrackingCore | None
    """The one write core of the process (gRPC ingest and the MLflow API share it)."""
    query: QueryCore | None
    """The one read core of the process (gRPC, /api/v1 and the MLflow API share it)."""
    writer: KafkaWriter | None
    """The Kafka consumer of the writer role (started last, by `start_last`)."""
    exit_stack: contextlib.AsyncExitStack
    """Closes what was opened, last opened first."""
    alerts: AlertsService | None = None
    """Webhook delivery (any process with the control plane) and, embedded or in the
    alerts role, the alert evaluator (docs/alerts.md)."""

    @property
    def ready(self) -> bool:
        """Readiness (/ready and gRPC health): the writer's, else the alerts consumer's,
        else the sink's (a Kafka sink: connected; the embedded one: writes not failing),
        else True."""
        if self.writer is not None:
            return self.writer.ready
        if self.alerts is not None and self.alerts.consumer is not None:
            return self.alerts.consumer.ready
        if self.sink is not None and INGEST in self.services:
            return bool(getattr(self.sink, "ready", True))
        return True

    async def start_last(self) -> None:
        """Join the consumer group once everything else is open and bound: a writer whose
        setup fails never takes partitions from the healthy writers."""
        if self.writer is not None:
            await self.writer.start()
            self.exit_stack.push_async_callback(self.writer.stop)
        if self.alerts is not None and self.alerts.consumer is not None:
            await self.alerts.consumer.start()
            self.exit_stack.push_async_callback(self.alerts.consumer.stop)

    async def close(self) -> None:
        await self.exit_stack.aclose()


async def build_components(settings: ServerConfig) -> Components:
    """Open every component `settings`' services need; on failure close what was opened."""
    stack = contextlib.AsyncExitStack()
    try:
        return await _build(settings, stack)
    except BaseException:
        await stack.aclose()
        raise


async def _build(s: ServerConfig, stack: contextlib.AsyncExitStack) -> Components:
    mounted = services(s)
    embedded = s.embedded
    if embedded:
        os.makedirs(s.data_dir, exist_ok=True)
    store = None
    if s.clickhouse_dsn:
        store = open_metric_store(s.clickhouse_dsn, s.database)
        stack.callback(store.close)
        if mounted & {QUERY, WRITER} or embedded:
            await asyncio.to_thread(store.ensure_schema)
    artifacts = None
    if mounted & {ARTIFACTS, MLFLOW} and s.artifact_root:
        artifacts = _open_artifacts(s.artifact_root, stack)
    metadata = None
    if mounted & NEEDS_METADATA:
        # Embedded: a model version's runs:/ source must name a logged artifact.
        exists = _artifact_exists(artifacts) if embedded and artifacts is not None else None
        from metricflow.governance import policy_gate

        metadata = await asyncio.to_thread(
            open_metadata, s.metadata_uri,
            default_artifact_root=s.artifact_root if embedded else None, source_exists=exists,
            read_uri=s.metadata_read_uri or None,
            # Policies read runs and model files; the artifact store may be opened just
            # below (its root can come from the control plane), hence the late lookup.
            policy_gate=policy_gate(store, lambda: artifacts))
        stack.callback(metadata.close)
        bus = getattr(metadata, "events", None)
        if bus is not None:
            from metricflow._events import EventBusCollector

            _export(EventBusCollector(bus), stack)
    # Where server-managed artifacts live: --artifacts, else the control plane's default.
    artifact_root = s.artifact_root or _default_root(metadata)
    if artifacts is None and mounted & {ARTIFACTS, MLFLOW}:
        if not artifact_root:
            raise SystemExit("the MLflow API needs --artifacts (artifact store URI)")
        artifacts = _open_artifacts(artifact_root, stack)
    auth = view = None
    if metadata is not None:
        from metricflow.auth import build_server_auth

        auth = build_server_auth(s.security.auth, metadata, store,
                                 run_wait_s=0.0 if embedded else s.security.run_wait_s)
        if auth.enabled and store is None and INGEST in mounted:
            log.warning("%s: auth is on without --clickhouse; only runs created through "
                        "this node can be authorized for writes", s.role)
        view = auth.metadata_view(metadata)
    sink = tracking = None
    if mounted & WRITES:
        assert metadata is not None
        sink, tracking = await _write_path(s, store, metadata, stack)
    query = None
    if QUERY in mounted:
        assert auth is not None and store is not None and metadata is not None
        from metricflow.query import query_core

        query = await asyncio.to_thread(query_core, store, metadata, scoped=auth.enabled,
                                        tail_limits=s.tail)
    writer = None
    if WRITER in mounted:
        assert store is not None and s.kafka is not None
        from metricflow.ingest import KafkaWriter

        writer = KafkaWriter(store, s.kafka.writer)
    alerts = _alerts(s, mounted, store, metadata, sink, stack) if metadata is not None else None
    return Components(s, mounted, store, metadata, view, auth, artifacts, artifact_root,
                      sink, tracking, query, writer, stack, alerts=alerts)


def _alerts(s: ServerConfig, mounted: frozenset[str], store: MetricStore | None,
            metadata: MetadataStore, sink: IngestSink | None,
            stack: contextlib.AsyncExitStack) -> AlertsService:
    """Webhook delivery for this process's events; the evaluator where batches pass:
    the embedded sink's commit hook, or the alerts role's own Kafka consumer group."""
    from metricflow import _env
    from metricflow.alerts import (
        AlertsConsumer,
        AlertsService,
        DispatcherConfig,
        running_runs,
        search_run_filter,
    )

    evaluate = ALERTS in mounted or (s.embedded and INGEST in mounted)
    kw = {}
    if evaluate and store is not None:  # without a data plane: no run filters or lookups
        from metricflow.query import QueryCore

        core = QueryCore(store, metadata)
        kw = {"run_filter": search_run_filter(core), "run_lookup": store.get_run_infos,
              "running_runs": running_runs(core)}
    dispatch = DispatcherConfig(max_attempts=max(1, _env.WEBHOOK_MAX_ATTEMPTS.get()),
                                backoff_s=max(0.0, _env.WEBHOOK_BACKOFF_S.get()),
                                timeout_s=max(0.1, _env.WEBHOOK_TIMEOUT_S.get()))
    service = AlertsService(metadata, evaluate=evaluate, dispatcher=dispatch,
                            **kw)  # type: ignore[arg-type]
    service.start()
    stack.callback(service.stop)
    add = getattr(sink, "add_commit_listener", None)
    if evaluate and add is not None:
        add(service.on_commit)
    if ALERTS in mounted:
        if s.kafka is None:
            raise SystemExit("alerts: the alerts role reads the ingest topic: pass --kafka")
        topic = s.kafka.writer.topic
        ev = service.evaluator
        service.consumer = AlertsConsumer(
            topic.bootstrap, topic.topic,
            # the consumer waits for the evaluator's room instead: nothing is dropped
            (lambda b, r: ev.submit(b, r, bounded=False)) if ev is not None
            else service.on_commit,
            on_read=ev.note_read if ev is not None else None,
            has_room=ev.has_room if ev is not None else None,
            drop=service.on_commit)  # after MAX_WAIT_S without room
    return service


def _default_root(metadata: MetadataStore | None) -> str:
    """The control plane's default artifact root ("" without a control plane)."""
    from metricflow.store.metadata import MetadataStoreConfig

    config = getattr(metadata, "config", None)
    return config.default_artifact_root if isinstance(config, MetadataStoreConfig) else ""


def _open_artifacts(root: str, stack: contextlib.AsyncExitStack) -> ArtifactStore:
    """The artifact store at `root`, with its dedup figures on /metrics."""
    from metricflow.artifacts import ArtifactStore, DedupCollector

    artifacts = ArtifactStore(open_blobs(root))
    stack.callback(artifacts.close)
    _export(DedupCollector(artifacts), stack)
    return artifacts


def _export(collector: Any, stack: contextlib.AsyncExitStack) -> None:
    """Put a prometheus_client collector on /metrics until the stack closes."""
    from prometheus_client import REGISTRY as PROMETHEUS

    try:
        PROMETHEUS.register(collector)
    except ValueError:  # another server in this process already exports these names
        return
    stack.callback(PROMETHEUS.unregister, collector)


def _artifact_exists(artifacts: ArtifactStore) -> Callable[[str, str], bool]:
    def exists(run_id: str, path: str) -> bool:
        """Model-version sources (runs:/<run>/<path>) must name a logged artifact or dir."""
        if artifacts.versions(run_id, path):
            return True
        return bool(artifacts.list_artifacts(run_id, path))
    return exists


async def _write_path(s: ServerConfig, store: MetricStore | None, metadata: MetadataStore,
                      stack: contextlib.AsyncExitStack
                      ) -> tuple[IngestSink, TrackingCore]:
    """The sink (chosen by `s.sink_uri`) and the process's one TrackingCore over it."""
    from metricflow.ingest import TrackingCore

    sink = open_sink(s.sink_uri, store, inproc=s.sink,
                     kafka=s.kafka.producer if s.kafka is not None else None)
    await sink.start()
    stack.push_async_callback(sink.close)
    if s.kafka is None:
        assert store is not None
        return sink, TrackingCore(sink, store, metadata)
    upstream: UpstreamRuns | None = None
    if store is None and s.upstreams.query:
        from metricflow.ingest import UpstreamRuns

        upstream = UpstreamRuns.from_upstream(Upstream.parse(s.upstreams.query,
                                                             s.upstreams.ca or None))
        stack.callback(upstream.close)
    # Kafka mode: a run created a moment ago may not be in ClickHouse yet (strict_runs off);
    # the writer still rejects params and tags of missing or deleted runs.
    runs = store if store is not None else NoRunLookup()
    return sink, TrackingCore(sink, runs, metadata, strict_runs=False,  # type: ignore[arg-type]
                              upstream=upstream, run_wait_s=s.security.run_wait_s,
                              param_memory_s=s.param_memory_s)
