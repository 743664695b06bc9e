"""The client's experiment, registry and artifact calls, one explicit method each.

MLflow's client has these calls on one object, so `Client` has them too: each
forwards to `Client.registry` (a `RegistryClient` on the client's channel) or
`Client.artifacts` (an `ArtifactClient`), with the same signature and types.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metricflow.artifacts import (
        ArtifactClient,
        ArtifactEntry,
        DedupStats,
        Manifest,
        SymlinkPolicy,
    )
    from metricflow.entities import AuditEntry, Experiment, ModelVersion, RegisteredModel
    from metricflow.registry import PagedList, RegistryClient


class RegistryCalls:
    """Experiments and the model registry (`RegistryClient`'s calls)."""

    @property
    def registry(self) -> RegistryClient:
        raise NotImplementedError

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        return self.registry.create_experiment(name, artifact_location, tags)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_link: str = "",
        description: str = "",
    ) -> ModelVersion:
        """`RegistryClient.create_model_version`."""
        return self.registry.create_model_version(name, source, run_id, tags, run_link, description)

    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str = ""
    ) -> RegisteredModel:
        """`RegistryClient.create_registered_model`."""
        return self.registry.create_registered_model(name, tags, description)

    def delete_experiment(self, experiment_id: str) -> None:
        """`RegistryClient.delete_experiment`."""
        return self.registry.delete_experiment(experiment_id)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """`RegistryClient.delete_experiment_tag`."""
        return self.registry.delete_experiment_tag(experiment_id, key)

    def delete_model_version(
        self, name: str, version: str | int, *, expected_version: int | None = None
    ) -> None:
        """`RegistryClient.delete_model_version`."""
        return self.registry.delete_model_version(name, version, expected_version=expected_version)

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        """`RegistryClient.delete_model_version_tag`."""
        return self.registry.delete_model_version_tag(name, version, key)

    def delete_registered_model(self, name: str, *, expected_version: int | None = None) -> None:
        """`RegistryClient.delete_registered_model`."""
        return self.registry.delete_registered_model(name, expected_version=expected_version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """`RegistryClient.delete_registered_model_alias`."""
        return self.registry.delete_registered_model_alias(name, alias)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """`RegistryClient.delete_registered_model_tag`."""
        return self.registry.delete_registered_model_tag(name, key)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """`RegistryClient.get_experiment`."""
        return self.registry.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """`RegistryClient.get_experiment_by_name`."""
        return self.registry.get_experiment_by_name(name)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """`RegistryClient.get_latest_versions`."""
        return self.registry.get_latest_versions(name, stages)

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """`RegistryClient.get_model_version`."""
        return self.registry.get_model_version(name, version)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """`RegistryClient.get_model_version_by_alias`."""
        return self.registry.get_model_version_by_alias(name, alias)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """`RegistryClient.get_model_version_download_uri`."""
        return self.registry.get_model_version_download_uri(name, version)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """`RegistryClient.get_registered_model`."""
        return self.registry.get_registered_model(name)

    def register_model(
        self, model_uri: str, name: str, tags: Mapping[str, str] | None = None
    ) -> ModelVersion:
        """Register `model_uri` (`runs:/...`, a storage URI, or `models:/...`) under `name`."""
        return self.registry.register_model(model_uri, name, tags)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """`RegistryClient.rename_experiment`."""
        return self.registry.rename_experiment(experiment_id, new_name)

    def rename_registered_model(
        self, name: str, new_name: str, *, expected_version: int | None = None
    ) -> RegisteredModel:
        """`RegistryClient.rename_registered_model`."""
        return self.registry.rename_registered_model(
            name, new_name, expected_version=expected_version
        )

    def resolve_model_uri(self, model_uri: str) -> tuple[ModelVersion, str]:
        """Resolve a `models:/` URI to its version and artifact location."""
        return self.registry.resolve_model_uri(model_uri)

    def restore_experiment(self, experiment_id: str) -> None:
        """`RegistryClient.restore_experiment`."""
        return self.registry.restore_experiment(experiment_id)

    def search_audit_log(
        self,
        *,
        model_name: str | None = None,
        actor: str | None = None,
        experiment_id: str | None = None,
        action: str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[AuditEntry]:
        """`RegistryClient.search_audit_log`."""
        return self.registry.search_audit_log(
            model_name=model_name,
            actor=actor,
            experiment_id=experiment_id,
            action=action,
            max_results=max_results,
            page_token=page_token,
        )

    def search_experiments(
        self,
        filter_string: str = "",
        view_type: str = "active",
        max_results: int = 1000,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """`RegistryClient.search_experiments`."""
        return self.registry.search_experiments(
            filter_string, view_type, max_results, order_by, page_token
        )

    def search_model_versions(
        self,
        filter_string: str = "",
        max_results: int = 1000,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """`RegistryClient.search_model_versions`."""
        return self.registry.search_model_versions(filter_string, max_results, order_by, page_token)

    def search_registered_models(
        self,
        filter_string: str = "",
        max_results: int = 100,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """`RegistryClient.search_registered_models`."""
        return self.registry.search_registered_models(
            filter_string, max_results, order_by, page_token
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """`RegistryClient.set_experiment_tag`."""
        return self.registry.set_experiment_tag(experiment_id, key, value)

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        """`RegistryClient.set_model_version_tag`."""
        return self.registry.set_model_version_tag(name, version, key, value)

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        """`RegistryClient.set_registered_model_alias`."""
        return self.registry.set_registered_model_alias(name, alias, version)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """`RegistryClient.set_registered_model_tag`."""
        return self.registry.set_registered_model_tag(name, key, value)

    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        comment: str = "",
        expected_version: int | None = None,
    ) -> ModelVersion:
        """`RegistryClient.transition_model_version_stage`."""
        return self.registry.transition_model_version_stage(
            name,
            version,
            stage,
            archive_existing_versions,
            comment=comment,
            expected_version=expected_version,
        )

    def update_model_version(
        self,
        name: str,
        version: str | int,
        description: str,
        *,
        expected_version: int | None = None,
    ) -> ModelVersion:
        """`RegistryClient.update_model_version`."""
        return self.registry.update_model_version(
            name, version, description, expected_version=expected_version
        )

    def update_registered_model(
        self, name: str, description: str, *, expected_version: int | None = None
    ) -> RegisteredModel:
        """`RegistryClient.update_registered_model`."""
        return self.registry.update_registered_model(
            name, description, expected_version=expected_version
        )


class ArtifactCalls:
    """Artifacts (`ArtifactClient`'s calls)."""

    @property
    def artifacts(self) -> ArtifactClient:
        raise NotImplementedError

    def dedup_stats(self, run_id: str | None = None) -> DedupStats:
        """Logical vs stored bytes for one run or the whole store."""
        return self.artifacts.dedup_stats(run_id)

    def download_artifacts(
        self, run_id: str, path: str | None, dst: str | os.PathLike[str], *, version: int = 0
    ) -> str:
        """Download a file or a whole directory into `dst`, keeping paths below the run root."""
        return self.artifacts.download_artifacts(run_id, path, dst, version=version)

    def get_manifest(self, run_id: str, path: str, version: int = 0) -> Manifest:
        """One manifest version of a file (0 = latest)."""
        return self.artifacts.get_manifest(run_id, path, version)

    def list_artifacts(
        self, run_id: str, path: str | None = None, *, recursive: bool = False
    ) -> list[ArtifactEntry]:
        """Files and directories directly under `path` (all files below with recursive)."""
        return self.artifacts.list_artifacts(run_id, path, recursive=recursive)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Log one local file under `artifact_path` (a directory; None = run root)."""
        return self.artifacts.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        symlinks: SymlinkPolicy = "inside",
    ) -> None:
        """Log every file below `local_dir` under `artifact_path`."""
        return self.artifacts.log_artifacts(run_id, local_dir, artifact_path, symlinks=symlinks)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Log a JSON-serializable object as JSON, or YAML when the name ends in .yaml/.yml."""
        return self.artifacts.log_dict(run_id, dictionary, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Log a matplotlib figure; the format comes from the file suffix (png, svg, pdf)."""
        return self.artifacts.log_figure(run_id, figure, artifact_file)

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Log a PIL image or a numpy array (HxW, HxWx3, HxWx4; floats in [0, 1] or uint8)."""
        return self.artifacts.log_image(run_id, image, artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a string as a UTF-8 text file."""
        return self.artifacts.log_text(run_id, text, artifact_file)
