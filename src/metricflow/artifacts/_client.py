"""ArtifactClient: the synchronous, MLflow-style artifact API used from training scripts."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2 as pb
from metricflow._proto.metricflow.artifacts.v1 import artifacts_pb2_grpc as pb_grpc
from metricflow.artifacts._codec import digest_buffer, digest_file
from metricflow.artifacts._digest_cache import DigestCache
from metricflow.artifacts._download import Downloader
from metricflow.artifacts._manifest import ArtifactEntry, Manifest
from metricflow.artifacts._paths import join_path, normalize_path, validate_run_id
from metricflow.artifacts._stats import DedupStats
from metricflow.artifacts._transfer import Uploader, UploadResult, _rpc, buffer_reader, file_reader
from metricflow.artifacts._wire import entry_from_pb, manifest_from_pb
from metricflow.errors import InvalidArgument

SymlinkPolicy = Literal["inside", "follow", "skip"]


class ArtifactClient:
    """Log and fetch artifacts over a gRPC channel.

    Args:
        channel: a grpc.Channel to a server running ArtifactService.
        workers: parallel chunk streams / HTTP requests per transfer.
        progress: True/False to force progress bars; None = only on a TTY.
        use_presigned_downloads: fetch chunks straight from S3 when the server
            hands out URLs (large files); falls back to the service otherwise.
        digest_cache: remember file digests by stat data so an unchanged file is
            not re-read (see _digest_cache.py); False disables it.
    """

    def __init__(self, channel: Any, *, workers: int = 4, progress: bool | None = None,
                 use_presigned_downloads: bool = False, digest_cache: bool = True) -> None:
        self._stub = pb_grpc.ArtifactServiceStub(channel)
        self._cache = DigestCache() if digest_cache else None
        self._up = Uploader(self._stub, workers, progress)
        self._down = Downloader(self._stub, workers, progress, use_presigned_downloads)

    # ---- logging ------------------------------------------------------------------------
    def upload_file(self, run_id: str, local_path: str | os.PathLike[str], artifact_file: str,
                    media_type: str | None = None) -> UploadResult:
        """Upload one local file as `artifact_file`; returns the manifest and bytes sent."""
        validate_run_id(run_id)
        artifact_file = normalize_path(artifact_file, field="artifact_path")
        fd = self._cache.digest(local_path) if self._cache else digest_file(local_path)
        read, close = file_reader(local_path)
        try:
            return self._up.upload(run_id, artifact_file, fd, read, media_type)
        finally:
            close()

    def upload_bytes(self, run_id: str, data: bytes, artifact_file: str,
                     media_type: str | None = None) -> UploadResult:
        """Upload an in-memory buffer as `artifact_file`."""
        validate_run_id(run_id)
        artifact_file = normalize_path(artifact_file, field="artifact_file")
        return self._up.upload(run_id, artifact_file, digest_buffer(data), buffer_reader(data),
                               media_type)

    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> None:
        """Log one local file under `artifact_path` (a directory; None = run root).

        A symlink given here is followed: naming it is an explicit choice.
        """
        if not os.path.isfile(local_path):
            raise InvalidArgument("local_path must be a regular file", field="local_path",
                                  received=os.fspath(local_path))
        self.upload_file(run_id, local_path, join_path(artifact_path, Path(local_path).name))

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str],
                      artifact_path: str | None = None, *,
                      symlinks: SymlinkPolicy = "inside") -> None:
        """Log every file below `local_dir` under `artifact_path`.

        Symlinks (see docs/artifacts.md): with "inside" (default) a file symlink
        whose target resolves inside `local_dir` is uploaded as a regular file and
        one pointing outside, or dangling, raises InvalidArgument; "follow" uploads
        any file target; "skip" ignores all symlinks. Symlinked directories are
        never descended (no cycles, no surprise trees); they are skipped with a warning.
        """
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument("local_dir must be a directory", field="local_dir",
                                  received=os.fspath(local_dir))
        real_root = root.resolve()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for d in list(dirnames):
                if os.path.islink(os.path.join(dirpath, d)):
                    if symlinks != "skip":
                        warnings.warn(f"not following symlinked directory "
                                      f"{os.path.join(dirpath, d)}", stacklevel=2)
                    dirnames.remove(d)
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if full.is_symlink():
                    if symlinks == "skip":
                        continue
                    target = full.resolve()
                    if not target.is_file():
                        raise InvalidArgument("symlink target is missing or not a file",
                                              field="local_dir", received=str(full))
                    if symlinks == "inside" and real_root not in target.parents:
                        raise InvalidArgument(
                            "symlink points outside the uploaded directory; pass "
                            "symlinks='follow' or 'skip'", field="local_dir", received=str(full))
                elif not full.is_file():
                    continue  # sockets, fifos, devices
                rel = full.relative_to(root).as_posix()
                self.upload_file(run_id, full, join_path(artifact_path, rel))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a string as a UTF-8 text file."""
        self.upload_bytes(run_id, text.encode(), artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Log a JSON-serializable object as JSON, or YAML when the name ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml  # optional

            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2)
        self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Log a matplotlib figure; the format comes from the file suffix (png, svg, pdf)."""
        buf = io.BytesIO()
        fmt = Path(artifact_file).suffix.lstrip(".") or "png"
        figure.savefig(buf, format=fmt)
        self.upload_bytes(run_id, buf.getvalue(), artifact_file)

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Log a PIL image or a numpy array (HxW, HxWx3, HxWx4; floats in [0, 1] or uint8)."""
        try:
            from PIL import Image  # optional
        except ImportError as e:
            raise InvalidArgument("log_image needs Pillow installed", field="image") from e
        if not isinstance(image, Image.Image):
            import numpy as np

            arr = np.asarray(image)
            if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
                raise InvalidArgument("image must be HxW, HxWx1, HxWx3 or HxWx4",
                                      field="image", received=list(arr.shape))
            if arr.dtype.kind == "f":
                arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
            elif arr.dtype != np.uint8:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
            image = Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
        buf = io.BytesIO()
        image.save(buf, format=(Path(artifact_file).suffix.lstrip(".") or "png").upper()
                   .replace("JPG", "JPEG"))
        self.upload_bytes(run_id, buf.getvalue(), artifact_file)

    # ---- reading ------------------------------------------------------------------------
    def list_artifacts(self, run_id: str, path: str | None = None, *,
                       recursive: bool = False) -> list[ArtifactEntry]:
        """Files and directories directly under `path` (all files below with recursive)."""
        r = _rpc(self._stub.ListArtifacts, pb.ListArtifactsRequest(
            run_id=run_id, path=path or "", recursive=recursive))
        return [entry_from_pb(e) for e in r.files]  # type: ignore[attr-defined]

    def get_manifest(self, run_id: str, path: str, version: int = 0) -> Manifest:
        """One manifest version of a file (0 = latest)."""
        r = _rpc(self._stub.GetManifest, pb.GetManifestRequest(
            run_id=run_id, path=path, version=version))
        return manifest_from_pb(r)  # type: ignore[arg-type]

    def download_artifacts(self, run_id: str, path: str | None, dst: str | os.PathLike[str],
                           *, version: int = 0) -> str:
        """Download a file or a whole directory into `dst`, keeping paths below the run root.

        Returns the local path of the file or directory. `version` applies to a
        single file. Every chunk and file is hash-checked; files appear atomically.
        """
        validate_run_id(run_id)
        base = normalize_path(path or "", allow_empty=True)
        entries = self.list_artifacts(run_id, base or None, recursive=True)
        files = [e for e in entries if not e.is_dir]
        if len(files) == 1 and files[0].path == base:
            ms = [self.get_manifest(run_id, base, version)]
        else:
            ms = [self.get_manifest(run_id, e.path, e.version) for e in files]
        if not ms:
            raise InvalidArgument("no artifacts at this path", field="path", received=base)
        self._down.download(ms, Path(dst), "")
        return str(Path(dst).resolve() / base) if base else str(Path(dst).resolve())

    def dedup_stats(self, run_id: str | None = None) -> DedupStats:
        """Logical vs stored bytes for one run or the whole store."""
        r = _rpc(self._stub.DedupStats, pb.DedupStatsRequest(run_id=run_id or ""))
        return DedupStats(r.logical_bytes, r.stored_bytes, r.chunks, r.manifests)  # type: ignore[attr-defined]
