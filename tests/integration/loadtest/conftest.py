"""An embedded server for load-test tests: gRPC only (the tool needs no HTTP here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from metricflow.app import ServerConfig, ServerThread

    data_dir = tmp_path_factory.mktemp("mf-loadtest")
    with ServerThread(ServerConfig(data_dir=str(data_dir), grpc_port=0, http_port=-1)) as srv:
        yield srv
