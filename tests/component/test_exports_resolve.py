"""Every name a front door lists resolves, and the client's front door loads no server code.

The front doors load their modules lazily (`__getattr__`), so a wrong module in an
export map would only fail at first use; this resolves them all (which loads the
server modules: a component test). The export lists themselves are pinned in
tests/unit/test_exports.py.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["metricflow.entities", "metricflow.entities.pb", "metricflow.store",
            "metricflow.store.metadata", "metricflow.ingest", "metricflow.query",
            "metricflow.registry", "metricflow.artifacts", "metricflow.auth",
            "metricflow.auth.policy", "metricflow.client", "metricflow.mlflow_compat",
            "metricflow.integrations", "metricflow.ui", "metricflow.devservices",
            "metricflow.serving",
            "metricflow.app", "metricflow.server"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [n for n in module.__all__ if getattr(module, n, None) is None]
    assert not missing


def test_importing_the_client_loads_no_server_dependency() -> None:
    code = ("import sys, metricflow, metricflow.client, metricflow.entities; "
            "import metricflow.registry, metricflow.artifacts, metricflow.auth; "
            "heavy = ('sqlalchemy', 'fastapi', 'chdb', 'clickhouse_connect', 'pyarrow', "
            "'aiokafka', 'alembic'); print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == "[]"
