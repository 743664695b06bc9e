"""S3-backed artifact fixtures on the shared devservices endpoint (`s3_endpoint`, `s3_bucket`:
moto's server mode by default, MinIO or AWS when METRICFLOW_TEST_S3_ENDPOINT says so)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest

from metricflow.artifacts import ArtifactClient, ArtifactStore, add_to_server, open_blob_store


@pytest.fixture
def s3_uri(s3_endpoint: str, s3_bucket: str) -> str:
    """A fresh prefix in the session bucket for each test."""
    return f"s3://{s3_bucket}/artifacts-{uuid.uuid4().hex[:12]}?endpoint_url={s3_endpoint}"


@pytest.fixture
def s3_store(s3_uri: str) -> Iterator[ArtifactStore]:
    store = ArtifactStore(open_blob_store(s3_uri))
    yield store
    store.close()


class _Server:
    def __init__(self, store: ArtifactStore) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.store = store
        self.port = 0
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

    def __enter__(self) -> _Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def s3_channel(s3_store: ArtifactStore) -> Iterator[grpc.Channel]:
    with _Server(s3_store) as srv:
        ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        yield ch
        ch.close()


@pytest.fixture
def s3_client(s3_channel: grpc.Channel) -> ArtifactClient:
    return ArtifactClient(s3_channel, progress=False, use_presigned_downloads=True)


@pytest.fixture
def s3_serve() -> type[_Server]:
    """The server class, for tests that serve an ArtifactStore of their own."""
    return _Server
