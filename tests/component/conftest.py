"""Fixtures shared by the component tier.

chDB runs one engine per process, bound to the first path it opens: a second path in
the same pytest process fails with "EmbeddedServer already initialized". So the whole
tier shares one chDB directory, and each test module isolates itself with its own
database name inside it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('component-chdb')}"


@pytest.fixture
def aio_server():
    """Start a grpc.aio server on its own loop thread: `aio_server(mount)` calls
    `mount(server)`, binds a loopback port and returns it; stopped after the test."""
    import asyncio
    import threading
    from typing import Any

    import grpc

    started: list[tuple[asyncio.AbstractEventLoop, threading.Thread, dict[str, Any]]] = []

    def start(mount: Any) -> int:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        box: dict[str, Any] = {}

        async def serve() -> None:
            server = grpc.aio.server()
            mount(server)
            box["port"] = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()
            await server.stop(None)

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        assert ready.wait(10), "the gRPC test server did not start"
        started.append((loop, thread, box))
        return int(box["port"])

    yield start
    for loop, thread, box in started:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(10)
        assert not thread.is_alive()
        loop.close()
