"""`SqlMetadataStore`: the control plane on SQLAlchemy Core (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from metricflow.store.metadata._audit import AuditMixin
from metricflow.store.metadata._base import MetadataStoreConfig
from metricflow.store.metadata._experiments import ExperimentsMixin
from metricflow.store.metadata._migrate import upgrade


class SqlMetadataStore(ExperimentsMixin, AuditMixin):
    """Experiments, model registry and audit log in one SQL database.

    Every change runs in one transaction together with its audit record, so the
    log never disagrees with the data.
    """

    def __init__(self, engine: sa.Engine, config: MetadataStoreConfig) -> None:
        super().__init__(engine, config)
        if config.auto_migrate:
            upgrade(engine)
        self._ensure_default_experiment()
