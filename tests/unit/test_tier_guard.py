"""The unit tier's guard (tests/unit/conftest.py) refuses servers, forks and child
processes, and still lets a test connect out."""

from __future__ import annotations

import multiprocessing
import os
import socket

import pytest


def test_bind_and_listen_are_refused() -> None:
    with socket.socket() as s:
        with pytest.raises(AssertionError, match="listening socket"):
            s.bind(("127.0.0.1", 0))
        with pytest.raises(AssertionError, match="listening socket"):
            s.listen()


def test_fork_and_multiprocessing_are_refused() -> None:
    with pytest.raises(AssertionError, match="os.fork"):
        os.fork()
    with pytest.raises(AssertionError, match="multiprocessing"):
        multiprocessing.Process(target=print).start()


def test_a_grpc_server_is_refused() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    import grpc.aio

    with ThreadPoolExecutor(1) as pool, pytest.raises(AssertionError, match="gRPC server"):
        grpc.server(pool)
    with pytest.raises(AssertionError, match="gRPC server"):
        grpc.aio.server()


def test_connecting_out_is_allowed() -> None:
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 1), timeout=1).close()
