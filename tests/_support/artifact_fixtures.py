"""Fixtures (shared by tests/unit/artifacts and tests/component/artifacts): a local
ArtifactStore and an ArtifactService on 127.0.0.1:0 in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from metricflow.artifacts import ArtifactClient, ArtifactStore, add_to_server, open_blob_store


class ServerThread:
    """A grpc.aio server serving one ArtifactStore on its own event loop thread."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: grpc.aio.Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server = grpc.aio.server()
        add_to_server(self._server, self.store)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    s = ArtifactStore(open_blob_store(f"file://{tmp_path}/blobs"))
    yield s
    s.close()


@pytest.fixture
def server(store: ArtifactStore) -> Iterator[ServerThread]:
    with ServerThread(store) as srv:
        yield srv


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(server.target)
    yield ch
    ch.close()


@pytest.fixture
def client(channel: grpc.Channel) -> ArtifactClient:
    return ArtifactClient(channel, progress=False)


@pytest.fixture
def serve() -> type[ServerThread]:
    """ServerThread itself, for tests that serve a store of their own."""
    return ServerThread
