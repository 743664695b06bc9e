"""metricflow.Client: the synchronous SDK used from training scripts.

Metric calls only append to the bounded columnar accumulator; a sender thread
streams them, reconnecting and resending on its own (see _sender.py), and
`health` shows how that goes. Delivery problems reach the caller: flush() and
close() raise DeliveryError when points stay unacknowledged, and once the
sender has stopped every later call raises. Params, tags and run lifecycle
calls are synchronous RPCs that return once the change is durable, so errors
(such as changing an immutable param) surface at the call.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc

from metricflow import _env
from metricflow._grpc_errors import from_rpc_error
from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow._validation import check_params, check_run_id, check_tags, to_float
from metricflow.client._accumulator import Accumulator
from metricflow.client._facades import ArtifactCalls, RegistryCalls
from metricflow.client._reads import ReadsMixin
from metricflow.client._sender import ClientHealth, Sender
from metricflow.client._spool import KIND_LOG_BATCH, KIND_UPDATE_RUN, Spool
from metricflow.client._spooling import OFFLINE_EXPERIMENT, SpoolCalls
from metricflow.client._types import Run, run_from_pb
from metricflow.errors import InvalidArgument, InvalidState, MetricflowError

if TYPE_CHECKING:
    from metricflow.artifacts import ArtifactClient
    from metricflow.registry import RegistryClient

log = logging.getLogger(__name__)

_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.max_send_message_length", 64 * 1024 * 1024)]
_LIVE_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()
_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
_ENDED = frozenset({"FINISHED", "FAILED", "KILLED"})
_INGEST = "/metricflow.ingest.v1."


def _ca_from_env() -> bytes | None:
    """The PEM CA named by METRICFLOW_TLS_CA (None: the system roots)."""
    path = _env.TLS_CA.get()
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgument(f"METRICFLOW_TLS_CA={path} cannot be read ({e.strerror}); set "
                              "it to the PEM file of the server's CA", field="METRICFLOW_TLS_CA",
                              received=path) from e


def parse_tracking_uri(uri: str) -> tuple[str, bool]:
    """'grpc://host:port' -> ('host:port', tls?)."""
    for scheme, tls in (("grpc://", False), ("grpcs://", True)):
        if uri.startswith(scheme):
            return uri[len(scheme):].rstrip("/"), tls
    if "://" not in uri and ":" in uri:
        return uri, False
    raise InvalidArgument(f"tracking uri must look like grpc://host:port, got {uri!r}",
                          field="tracking_uri", received=uri)


def open_channel(tracking_uri: str | None = None, token: str | None = None) -> grpc.Channel:
    """A plain (unbuffered) channel to the tracking URI, as the Client opens it: grpc:// or
    grpcs:// (METRICFLOW_TLS_CA), with the bearer token (default METRICFLOW_TOKEN) on every
    call. For the service clients (governance, deployments) that need no metric buffer."""
    from metricflow.auth import bearer_channel

    target, tls = parse_tracking_uri(tracking_uri or _env.TRACKING_URI.get())
    token = token if token is not None else _env.API_TOKEN.get()
    ch = (grpc.secure_channel(target, grpc.ssl_channel_credentials(_ca_from_env())) if tls
          else grpc.insecure_channel(target))
    return bearer_channel(ch, (("authorization", f"Bearer {token}"),) if token else ())


class Client(SpoolCalls, ReadsMixin, RegistryCalls, ArtifactCalls):
    """A connection to a metricflow server.

    Args:
        tracking_uri: grpc://host:port; defaults to METRICFLOW_TRACKING_URI.
        buffer_bytes: bound of unsent + unacknowledged metric bytes (default 64 MiB).
        linger_ms: how long to wait to fill a batch before sending.
        batch_points: send as soon as this many points wait.
        block_timeout_s: how long log calls wait for buffer room before BufferFull.
        drop_when_full: drop (and count in `dropped_points`) instead of blocking.
        offline: log only to the spool, never to a server (default: METRICFLOW_MODE);
            upload later with `metricflow sync DIR` (docs/resilience.md).
        spool_dir: root of the durable spool (default: METRICFLOW_SPOOL_DIR; offline
            without one: ./metricflow-spool); this client writes `<spool_dir>/<client id>/`.
    """

    def __init__(self, tracking_uri: str | None = None, *, buffer_bytes: int | None = None,
                 linger_ms: int | None = None, batch_points: int = 65_536,
                 block_timeout_s: float | None = None, drop_when_full: bool | None = None,
                 token: str | None = None, root_certificates: bytes | None = None,
                 offline: bool | None = None, spool_dir: str | None = None,
                 _adopt_spool: str | None = None) -> None:
        self.offline = (_env.MODE.get() == "offline") if offline is None else bool(offline)
        self.tracking_uri = tracking_uri or _env.TRACKING_URI.get()
        self.target, tls = parse_tracking_uri(self.tracking_uri)
        if drop_when_full is None:  # a bad value fails here, before a channel opens
            drop_when_full = _env.CLIENT_DROP_POLICY.get() == "drop"
        token = token if token is not None else _env.API_TOKEN.get()
        self._metadata: tuple = (("authorization", f"Bearer {token}"),) if token else ()
        if tls and root_certificates is None:
            root_certificates = _ca_from_env()
        creds = grpc.ssl_channel_credentials(root_certificates) if tls else None
        if creds is not None:
            self._channel = grpc.secure_channel(self.target, creds, options=_CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(self.target, options=_CHANNEL_OPTIONS)
        self._acc = Accumulator(
            max_bytes=buffer_bytes or _env.CLIENT_BUFFER_BYTES.get(),
            batch_points=batch_points,
            block_timeout_s=block_timeout_s if block_timeout_s is not None
            else _env.CLIENT_BLOCK_TIMEOUT_S.get(),
            drop_when_full=drop_when_full,
        )
        self._spool = _open_spool(self.offline, spool_dir, _adopt_spool)
        self._experiments_by_name: dict[str, str] = {}
        self.replayed_runs: dict[str, str] = {}  # spooled run id -> server run id
        self._sender = Sender(self.target, self._acc,
                              (linger_ms if linger_ms is not None
                               else _env.CLIENT_LINGER_MS.get()) / 1000.0,
                              channel_options=_CHANNEL_OPTIONS, credentials=creds,
                              metadata=self._metadata, spool=self._spool,
                              spill_threshold=_env.SPOOL_THRESHOLD.get(), offline=self.offline,
                              adopt=_adopt_spool is not None, apply_record=self.apply_record,
                              # sync: one stream carries the backlog; 64 MiB in flight ran
                              # 1.7x faster than 16 (docs/resilience.md), more was slower
                              **({"max_inflight": 256, "max_inflight_bytes": 64 << 20}
                                 if _adopt_spool is not None else {}))
        self._pid = os.getpid()
        self._closed = False
        self._registry: RegistryClient | None = None
        self._artifacts: ArtifactClient | None = None
        self._lock = threading.Lock()
        _LIVE_CLIENTS.add(self)

    # ---------------------------------------------------------------- plumbing
    def _call(self, method: str, request: Any, response_type: Any, timeout: float = 60.0) -> Any:
        if self.offline:
            raise InvalidState(f"this client is offline (METRICFLOW_MODE=offline): it logs to "
                               f"its spool only and cannot call {method.rsplit('/', 1)[-1]}; "
                               "upload with `metricflow sync DIR` and read from the server")
        if self._sender.fatal is not None and method.startswith(_INGEST):
            raise self._sender.fatal
        fn = self._channel.unary_unary(method, request_serializer=type(request).SerializeToString,
                                       response_deserializer=response_type.FromString)
        delay = 0.1
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn(request, timeout=max(0.1, deadline - time.monotonic()),
                          metadata=self._metadata or None)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if not err.retriable or time.monotonic() + delay > deadline:
                    raise err from None
                time.sleep(getattr(err, "retry_after_s", None) or delay)
                delay = min(delay * 2, 2.0)

    def _raise_background_error(self) -> None:
        if self._sender.fatal is not None:
            raise self._sender.fatal
        err = self._sender.take_error()
        if err is not None:
            raise err

    @property
    def health(self) -> ClientHealth:
        """A snapshot of metric delivery: connection state, last error, unacknowledged data."""
        return self._sender.health()

    # ------------------------------------------------------------------- runs
    def create_run(self, experiment_id: str = "0", run_name: str | None = None,
                   tags: Mapping[str, str] | None = None, parent_run_id: str | None = None,
                   start_time: int | None = None, user_id: str | None = None,
                   run_id: str | None = None, fork_from: str | None = None,
                   fork_step: int | None = None) -> Run:
        """Create a RUNNING run and return it.

        Args:
            run_id: a client-chosen id (32 lowercase hex characters), for callers that
                derive one id in several processes. An id that exists is AlreadyExists
                with auth on; with auth off the create is applied again (docs/security.md).
            fork_from, fork_step: create a fork: its history up to fork_step is the run
                fork_from's (read through a pointer, nothing copied); its own steps must be
                greater than fork_step (docs/resilience.md, "Resume and fork").
        """
        tags = dict(tags or {})
        check_tags(tags)
        if run_id is not None:
            check_run_id(run_id)
        if (fork_from is None) != (fork_step is None):
            raise InvalidArgument("fork_from and fork_step go together", field="fork_step",
                                  received=fork_step)
        if fork_from is not None:
            check_run_id(fork_from, "fork_from")
            if (isinstance(fork_step, bool) or not isinstance(fork_step, int)
                    or not 0 <= fork_step < (1 << 63) - 1):
                raise InvalidArgument(
                    f"fork_step must be an int in [0, {(1 << 63) - 2}], got {fork_step!r}",
                    field="fork_step", limit=(1 << 63) - 2, received=repr(fork_step)[:80])
            self.flush()  # the parent's points logged through this client are stored first
        req = pb.CreateRunRequest(
            experiment_id=str(experiment_id), run_name=run_name or "", user_id=user_id or "",
            start_time=start_time or 0, parent_run_id=parent_run_id or "",
            tags=[pb.Tag(key=k, value=str(v)) for k, v in tags.items()], run_id=run_id or "",
            fork_from=fork_from or "", fork_step=fork_step or 0)
        if self._spool is not None:
            return self._create_run_spooled(req, tags)
        resp = self._call("/metricflow.ingest.v1.IngestService/CreateRun", req,
                          pb.CreateRunResponse)
        return run_from_pb(qpb.Run(info=resp.run, tags=dict(tags)))

    def update_run(self, run_id: str, status: str | None = None, end_time: int | None = None,
                   run_name: str | None = None) -> None:
        check_run_id(run_id)
        if status and status not in _STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(_STATUSES)}, got {status!r}",
                                  field="status", received=status)
        req = pb.UpdateRunRequest(run_id=run_id, status=pb.RunStatus.Value(status)
                                  if status else pb.RUN_STATUS_UNSPECIFIED, end_time=end_time or 0,
                                  run_name=run_name or "")
        self._record(KIND_UPDATE_RUN, req)
        if status in _ENDED:
            # Its buffer goes once its points are drained; a long-lived client
            # would otherwise keep one per run it ever logged to.
            self._acc.forget_run(run_id)

    def resume_run(self, run_id: str) -> Run:
        """Continue a run after preemption: RUNNING again, same id. Steps logged again
        replace the earlier points (last write wins per key and step); params keep
        their first value."""
        check_run_id(run_id)
        self._call("/metricflow.ingest.v1.IngestService/UpdateRun",
                   pb.UpdateRunRequest(run_id=run_id, resume=True), pb.UpdateRunResponse)
        return self.get_run(run_id)

    def set_terminated(self, run_id: str, status: str = "FINISHED",
                       end_time: int | None = None) -> None:
        """Flush the run's metrics, then mark it ended."""
        self.flush()
        self.update_run(run_id, status=status, end_time=end_time)

    def delete_run(self, run_id: str) -> None:
        check_run_id(run_id)
        self._record(KIND_UPDATE_RUN, pb.UpdateRunRequest(run_id=run_id,
                                                          lifecycle_stage="deleted"))
        self._acc.forget_run(run_id)

    def restore_run(self, run_id: str) -> None:
        check_run_id(run_id)
        self._record(KIND_UPDATE_RUN, pb.UpdateRunRequest(run_id=run_id,
                                                          lifecycle_stage="active"))

    # ---------------------------------------------------------------- logging
    def log_metric(self, run_id: str, key: str, value: float, step: int | None = None,
                   timestamp: int | None = None) -> None:
        """Buffer one point; never a network call. Thin wrapper over log_metrics."""
        self.log_metrics(run_id, {key: value}, step, timestamp)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int | None = None,
                    timestamp: int | None = None) -> None:
        """Buffer one point per key, all at the same step and timestamp (ms)."""
        if self._sender.error is not None or self._sender.fatal is not None:
            self._raise_background_error()
        self._acc.append(run_id, metrics, 0 if step is None else step, timestamp)

    def log_batch(self, run_id: str, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Log params and tags at once; returns when durable."""
        check_run_id(run_id)
        p = {k: str(v) for k, v in (params or {}).items()}
        t = {k: str(v) for k, v in (tags or {}).items()}
        check_params(p)
        check_tags(t)
        req = pb.LogBatchRequest(run_id=run_id, params=[pb.Param(key=k, value=v)
                                                        for k, v in p.items()],
                                 tags=[pb.Tag(key=k, value=v) for k, v in t.items()])
        self._record(KIND_LOG_BATCH, req)

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params={key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        check_run_id(run_id)
        req = pb.LogBatchRequest(run_id=run_id, tags=[pb.Tag(key=key, deleted=True)])
        self._record(KIND_LOG_BATCH, req)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every buffered point is acknowledged as durable.

        Args:
            timeout: seconds to wait (default: the client's block_timeout_s).

        Raises:
            DeliveryError: points were still unacknowledged when the timeout expired
                (they stay buffered and keep being retried), or at once when the client
                is offline and its spool is full (nothing will drain), or the sender
                has stopped;
                the message gives the last stream error and how long delivery has
                been failing, and `details["health"]` the full `health` snapshot.
        """
        if self._sender.fatal is not None:
            raise self._sender.fatal
        self._sender.wake()
        limit = timeout if timeout is not None else self._acc.block_timeout_s
        if not self._acc.wait_empty(limit, self._sender.stuck):
            if self._sender.fatal is not None:  # it stopped meanwhile
                raise self._sender.fatal
            raise self._sender.delivery_error(
                "flush gave up at once (nothing drains an offline spool that is full)"
                if self._sender.stuck() else f"flush timed out after {limit}s")
        if self._spool is not None:
            self._flush_spool(limit)
        self._raise_background_error()

    def _flush_spool(self, limit: float) -> None:
        """Spooled points are durable once fsync'd; while the stream works, wait for the
        spool to drain (up to `limit`), so a read after flush sees them."""
        assert self._spool is not None
        self._spool.sync()
        deadline = time.monotonic() + limit
        while (not self.offline and self._sender.spooling and not self._sender.failing
               and time.monotonic() < deadline and self._sender.fatal is None):
            self._sender.wake()
            time.sleep(0.01)

    @property
    def dropped_points(self) -> int:
        """Points dropped by the explicit drop policy (always 0 when blocking)."""
        return self._acc.dropped_points

    # ------------------------------------------- experiments and registry
    @property
    def registry(self) -> RegistryClient:
        """Experiments and model registry calls (a RegistryClient on this channel)."""
        if self._registry is None:
            from metricflow.auth import bearer_channel
            from metricflow.registry import RegistryClient

            self._registry = RegistryClient(bearer_channel(self._channel, self._metadata))
        return self._registry

    @property
    def artifacts(self) -> ArtifactClient:
        """Artifact calls (an ArtifactClient on this channel)."""
        if self._artifacts is None:
            from metricflow.artifacts import ArtifactClient
            from metricflow.auth import bearer_channel

            self._artifacts = ArtifactClient(bearer_channel(self._channel, self._metadata))
        return self._artifacts

    def get_or_create_experiment(self, name: str) -> str:
        """The id of the experiment named `name`, created if missing (race-safe)."""
        if self.offline:  # found or created when `metricflow sync` replays the run
            return OFFLINE_EXPERIMENT + name
        return str(self.registry.get_or_create_experiment(name).experiment_id)

    # ---------------------------------------------------------------- closing
    def close(self, timeout: float = 60.0) -> None:
        """Deliver what is buffered (up to `timeout` s), stop the sender, close channels.

        Safe to call twice; later calls on this client raise.

        Raises:
            DeliveryError: points were still unacknowledged after `timeout` (they are
                dropped) or the sender had stopped; the message says how much and why.
                A batch the server rejected and no call has reported yet is raised too.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if os.getpid() != self._pid:
            return  # a forked child's copy: the sender lives in the parent
        undelivered: MetricflowError | None = self._sender.fatal  # it died: say so again
        try:
            self._sender.wake()
            if undelivered is None and not self._acc.wait_empty(timeout, self._sender.stuck):
                undelivered = self._sender.fatal or self._sender.delivery_error(
                    ("close gave up at once" if self._sender.stuck() else
                     f"close gave up after {timeout}s") + "; these points are dropped")
        finally:
            grace = timeout if undelivered is None else 0.0
            if self._spool is not None and (self.offline or self._sender.failing):
                # Spooled data is durable: wait a little for the server, then leave it.
                grace = min(grace, 0.0 if self.offline else 5.0)
            self._sender.close(grace)
            self._channel.close()
            if self._spool is not None:
                self._close_spool()
        if undelivered is not None:
            raise undelivered
        err = self._sender.take_error()
        if err is not None:
            raise err

    def _close_spool(self) -> None:
        spool = self._spool
        assert spool is not None
        left = spool.pending_bytes() if self._sender.spooling else 0
        if left and not self.offline:
            log.warning("metricflow: %d bytes stay in the spool %s (the server at %s did not "
                        "take them before close); upload them with `metricflow sync %s "
                        "--tracking-uri %s`", left, spool.dir, self.target, spool.dir,
                        self.tracking_uri)
        # A drained spool of this client goes; a synced one (adopted) keeps its cursor.
        spool.close("keep" if self.offline or left else
                    "purge" if self._sender.adopted else "remove")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except MetricflowError as e:  # the body's exception is the one to propagate
            log.error("metricflow client closed with data undelivered: %s", e)


def _open_spool(offline: bool, spool_dir: str | None, adopt: str | None) -> Spool | None:
    """This client's spool: a new `<root>/<id>/`, or an existing one to drain (sync)."""
    if adopt is not None:
        return Spool(adopt, create=False, budget_bytes=1 << 62,
                     fsync_s=_env.SPOOL_FSYNC_S.get())
    root = spool_dir or _env.SPOOL_DIR.get() or ("./metricflow-spool" if offline else "")
    if not root:
        return None
    import uuid

    client_dir = os.path.join(os.path.abspath(root), f"{time.strftime('%Y%m%dT%H%M%S')}-"
                              f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    return Spool(client_dir, budget_bytes=_env.SPOOL_MAX_BYTES.get(),
                 fsync_s=_env.SPOOL_FSYNC_S.get(),
                 meta={"mode": "offline" if offline else "online"})


def _close_all() -> None:
    for c in list(_LIVE_CLIENTS):
        try:
            c.close()
        except MetricflowError as e:
            log.error("metricflow client at exit: %s", e)


atexit.register(_close_all)
__all__ = ["Client", "to_float"]
