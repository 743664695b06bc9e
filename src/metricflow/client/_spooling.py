"""The Client's side of the spool: run records and artifacts, offline mode, replay.

Metric points reach the spool through the sender (client/_sender.py). Here the
synchronous calls (create, update, params and tags, artifacts) are routed:

- offline, or while the sender has the spool engaged (an outage, a full
  buffer), they are appended to the spool behind every point logged before
  them and return at once;
- otherwise they call the server; if the server cannot be reached (UNAVAILABLE,
  DEADLINE_EXCEEDED) they engage the spool and are appended there.

A spooled run is created with a client-chosen id (so the replay creates that
same run, once) and an explicit start time; a terminal update gets an explicit
end time (a replay cannot move it). Offline, an experiment named through
`set_experiment` is recorded by name (`offline:<name>`) and created or found at
replay. `apply_record` replays one record against a server: the sender calls it
in order, after every earlier point was acknowledged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb
from metricflow._proto.metricflow.query.v1 import query_pb2 as qpb
from metricflow.client._spool import (
    KIND_ARTIFACT,
    KIND_CREATE_RUN,
    KIND_LOG_BATCH,
    KIND_UPDATE_RUN,
    Spool,
    SpoolFull,
)
from metricflow.client._types import Run, run_from_pb
from metricflow.errors import (
    AlreadyExists,
    ErrorCode,
    InvalidArgument,
    InvalidState,
    MetricflowError,
)

if TYPE_CHECKING:
    from metricflow.client._sender import Sender

log = logging.getLogger(__name__)

OFFLINE_EXPERIMENT = "offline:"
_UNREACHABLE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED})
_ENDED = frozenset({pb.FINISHED, pb.FAILED, pb.KILLED})
_METHODS: dict[int, tuple[str, Any, Any]] = {
    KIND_CREATE_RUN: ("/metricflow.ingest.v1.IngestService/CreateRun", pb.CreateRunRequest,
                      pb.CreateRunResponse),
    KIND_UPDATE_RUN: ("/metricflow.ingest.v1.IngestService/UpdateRun", pb.UpdateRunRequest,
                      pb.UpdateRunResponse),
    KIND_LOG_BATCH: ("/metricflow.ingest.v1.IngestService/LogBatch", pb.LogBatchRequest,
                     pb.LogBatchResponse),
}
_SPOOLED_CALL_TIMEOUT_S = 10.0  # with a spool, a call the server does not answer is spooled


class SpoolCalls:
    """Mixin of Client: spooled records and artifacts, replay."""

    offline: bool
    _spool: Spool | None
    _sender: Sender
    _experiments_by_name: dict[str, str]
    replayed_runs: dict[str, str]

    def _call(self, method: str, request: Any, response_type: Any,
              timeout: float = 60.0) -> Any:
        raise NotImplementedError

    def get_or_create_experiment(self, name: str) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------- records
    def _spool_now(self) -> bool:
        s = self._sender
        return self._spool is not None and (self.offline or s.spooling or s.failing)

    def _record(self, kind: int, request: Any) -> Any | None:
        """Call the server, or spool the request; None when it was spooled."""
        method, _, response_type = _METHODS[kind]
        if (self._spool is not None and kind == KIND_UPDATE_RUN and request.status in _ENDED
                and not request.end_time):
            request.end_time = int(time.time() * 1000)  # a replay must not move it
        if self._spool_now():
            if self.offline:
                self._sender.engage("offline mode")
            if self._sender.spool_record(kind, request.SerializeToString()):
                return None
        try:
            timeout = _SPOOLED_CALL_TIMEOUT_S if self._spool is not None else 60.0
            return self._call(method, request, response_type, timeout=timeout)
        except MetricflowError as e:
            if self._spool is None or e.code not in _UNREACHABLE:
                raise
            self._sender.engage(f"the server did not answer a run call ({e})")
            if not self._sender.spool_record(kind, request.SerializeToString()):
                raise  # the spool disengaged meanwhile: the server is back; report it
            return None

    def _create_run_spooled(self, req: pb.CreateRunRequest, tags: dict[str, str]) -> Run:
        """create_run with a spool: a client-chosen id, so a replay creates this run once."""
        if not req.run_id:
            req.run_id = uuid.uuid4().hex
        if not req.start_time:
            req.start_time = int(time.time() * 1000)
        resp = self._record(KIND_CREATE_RUN, req)
        if resp is not None:
            return run_from_pb(qpb.Run(info=resp.run, tags=dict(tags)))
        exp = req.experiment_id or "0"
        info = pb.RunInfo(run_id=req.run_id, experiment_id=exp, run_name=req.run_name,
                          user_id=req.user_id, status=pb.RUNNING, start_time=req.start_time,
                          parent_run_id=req.parent_run_id, lifecycle_stage="active")
        return run_from_pb(qpb.Run(info=info, tags=dict(tags)))

    # ----------------------------------------------------------- artifacts
    def _spool_artifact(self, run_id: str, src: str | None, data: bytes | None,
                        artifact_file: str) -> None:
        spool = self._spool
        assert spool is not None
        name = uuid.uuid4().hex
        dst = spool.file_path(name)
        size = len(data) if data is not None else os.path.getsize(src)  # type: ignore[arg-type]
        if spool.disk_bytes + spool.files_bytes + size > spool.budget_bytes:
            raise SpoolFull(f"client spool {spool.dir} has no room for a {size}-byte artifact "
                            f"({spool.disk_bytes + spool.files_bytes} of {spool.budget_bytes} "
                            "bytes used, METRICFLOW_SPOOL_MAX_BYTES)",
                            field="METRICFLOW_SPOOL_MAX_BYTES", limit=spool.budget_bytes,
                            received=size)
        with open(dst, "wb") as f:
            if data is not None:
                f.write(data)
            else:
                with open(src, "rb") as s:  # type: ignore[arg-type]
                    shutil.copyfileobj(s, f, 1 << 20)
            f.flush()
            if spool.fsync_s >= 0:
                os.fsync(f.fileno())
        spool.files_bytes += size
        rec = json.dumps({"run_id": run_id, "file": name, "path": artifact_file}).encode()
        self._sender.engage("offline mode" if self.offline else "artifact spooled")
        if not self._sender.spool_record(KIND_ARTIFACT, rec):
            raise InvalidState("the spool could not take the artifact record")

    def _artifact(self, run_id: str, src: str | None, data: bytes | None, artifact_file: str,
                  upload: Any) -> None:
        if self._spool_now():
            self._spool_artifact(run_id, src, data, artifact_file)
            return
        try:
            upload()
        except MetricflowError as e:
            if self._spool is None or e.code not in _UNREACHABLE:
                raise
            self._spool_artifact(run_id, src, data, artifact_file)

    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> None:
        """Log one local file under `artifact_path` (a directory; None = run root)."""
        if self._spool is None:
            super().log_artifact(run_id, local_path, artifact_path)  # type: ignore[misc]
            return
        if not os.path.isfile(local_path):
            raise InvalidArgument("local_path must be a regular file", field="local_path",
                                  received=os.fspath(local_path))
        dest = _join(artifact_path, Path(local_path).name)
        self._artifact(run_id, os.fspath(local_path), None, dest,
                       lambda: super(SpoolCalls, self).log_artifact(  # type: ignore[misc]
                           run_id, local_path, artifact_path))

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str],
                      artifact_path: str | None = None, **kw: Any) -> None:
        """Log every file below `local_dir` under `artifact_path`."""
        if self._spool is None or not self._spool_now():
            try:
                super().log_artifacts(run_id, local_dir, artifact_path, **kw)  # type: ignore[misc]
                return
            except MetricflowError as e:
                if self._spool is None or e.code not in _UNREACHABLE:
                    raise
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument("local_dir must be a directory", field="local_dir",
                                  received=os.fspath(local_dir))
        # Spooled: regular files only (symlinks are left out, as "skip" does online).
        for dirpath, _, files in os.walk(root):
            for fn in sorted(files):
                p = Path(dirpath) / fn
                if p.is_symlink() or not p.is_file():
                    continue
                rel = p.relative_to(root).as_posix()
                self._spool_artifact(run_id, str(p), None, _join(artifact_path, rel))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a string as a UTF-8 text file."""
        if self._spool is None:
            super().log_text(run_id, text, artifact_file)  # type: ignore[misc]
            return
        self._artifact(run_id, None, text.encode(), artifact_file,
                       lambda: super(SpoolCalls, self).log_text(  # type: ignore[misc]
                           run_id, text, artifact_file))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Log a JSON-serializable object as JSON, or YAML when the name ends in .yaml/.yml."""
        if self._spool is None:
            super().log_dict(run_id, dictionary, artifact_file)  # type: ignore[misc]
            return
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_dump(dictionary, sort_keys=False).encode()
        else:
            data = json.dumps(dictionary, indent=2).encode()
        self._artifact(run_id, None, data, artifact_file,
                       lambda: super(SpoolCalls, self).log_dict(  # type: ignore[misc]
                           run_id, dictionary, artifact_file))

    # -------------------------------------------------------------- replay
    def apply_record(self, kind: int, payload: bytes) -> None:
        """Replay one spooled record against the server (the sender calls it in order)."""
        if kind == KIND_ARTIFACT:
            rec = json.loads(payload)
            spool = self._spool
            assert spool is not None
            path = spool.file_path(rec["file"])
            if not os.path.exists(path):
                log.warning("spooled artifact %s of run %s is gone from %s (uploaded by an "
                            "earlier sync); skipped", rec["path"], rec["run_id"], path)
                return
            if _already_uploaded(self, rec["run_id"], rec["path"], path):
                return  # a replay after a crash between the upload and the cursor
            self.artifacts.upload_file(rec["run_id"], path, rec["path"])  # type: ignore[attr-defined]
            return
        method, req_type, resp_type = _METHODS[kind]
        req = req_type.FromString(payload)
        if kind == KIND_CREATE_RUN:
            exp = req.experiment_id
            if exp.startswith(OFFLINE_EXPERIMENT):
                name = exp[len(OFFLINE_EXPERIMENT):]
                if name not in self._experiments_by_name:
                    self._experiments_by_name[name] = self.get_or_create_experiment(name)
                req.experiment_id = self._experiments_by_name[name]
            try:
                resp = self._call(method, req, resp_type, timeout=30.0)
                self.replayed_runs[req.run_id] = resp.run.run_id or req.run_id
            except AlreadyExists:
                # This id is ours (client-chosen): an earlier replay created it.
                self.replayed_runs[req.run_id] = req.run_id
            return
        self._call(method, req, resp_type, timeout=30.0)


def _already_uploaded(client: Any, run_id: str, path: str, local: str) -> bool:
    """The latest version of `path` has this file's content (BLAKE3 of the whole file).

    Limit: an offline run that logged the same content twice in a row under one path
    gets one version, not two.
    """
    from metricflow.errors import NotFound

    try:
        latest = client.get_manifest(run_id, path)
    except NotFound:
        return False
    import blake3

    h = blake3.blake3(max_threads=1)
    with open(local, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return bool(latest.file_hash == h.digest())


def _join(artifact_path: str | None, name: str) -> str:
    return f"{artifact_path.strip('/')}/{name}" if artifact_path else name
