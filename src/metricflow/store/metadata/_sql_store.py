"""`SqlMetadataStore`: the control plane on SQLAlchemy Core (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from metricflow.store.metadata._approvals import ApprovalsMixin
from metricflow.store.metadata._audit import AuditMixin
from metricflow.store.metadata._base import MetadataStoreConfig
from metricflow.store.metadata._deployments import DeploymentsMixin
from metricflow.store.metadata._experiments import ExperimentsMixin
from metricflow.store.metadata._migrate import upgrade
from metricflow.store.metadata._models import ModelsMixin
from metricflow.store.metadata._versions import VersionsMixin

# (table, serial column): both literals, never user input.
_SERIALS = (("experiments", "experiment_id"), ("registered_models", "model_id"))


class SqlMetadataStore(ApprovalsMixin, ExperimentsMixin, ModelsMixin, VersionsMixin, AuditMixin,
                       DeploymentsMixin):
    """Experiments, model registry and audit log in one SQL database.

    Every change runs in one transaction together with its audit record, so the
    log never disagrees with the data.
    """

    def __init__(self, engine: sa.Engine, config: MetadataStoreConfig,
                 read_engine: sa.Engine | None = None) -> None:
        super().__init__(engine, config, read_engine)
        if config.auto_migrate:
            upgrade(engine)
        if self._pg:
            self._sync_pg_sequences()
        self._ensure_default_experiment()

    def _sync_pg_sequences(self) -> None:
        """Move serial sequences past ids inserted explicitly (imports, old releases).

        PostgreSQL sequences do not see explicit ids, so without this the next
        create would collide with an existing row.
        """
        with self._write() as conn:
            for table, column in _SERIALS:
                conn.execute(sa.text(
                    f"SELECT setval(s.seq, m.mx) FROM "  # literals above
                    f"(SELECT pg_get_serial_sequence('{table}', '{column}')::regclass AS seq) s, "
                    f"(SELECT MAX({column}) AS mx FROM {table}) m "
                    "WHERE m.mx >= 1 AND m.mx > COALESCE(pg_sequence_last_value(s.seq), 0)"))
