"""Make the devservices fixtures available here even before tests/conftest.py registers
the plugin (registering it twice is harmless: pytest keeps one copy)."""

from __future__ import annotations

import pytest

_PLUGIN = "metricflow.devservices.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_PLUGIN):
        config.pluginmanager.import_plugin(_PLUGIN)
