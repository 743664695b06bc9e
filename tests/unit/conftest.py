"""Keeps tests/unit pure: a unit test that opens chDB, SQLite or argon2, starts a
child process, forks, or binds/listens on a socket (starts a server), fails with a
message that says where it belongs (tests/component or tests/integration; see
CONTRIBUTING.md). Connecting out (a refused port in a startup check) is allowed."""

from __future__ import annotations

import importlib.abc
import multiprocessing.process
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest


class TierViolation(AssertionError):
    pass


def _refuse(what: str, where: str = "tests/component") -> Any:
    def refused(*_a: Any, **_k: Any) -> Any:
        raise TierViolation(f"a unit test used {what}: move it to {where}/<pkg> "
                            "(tests/unit is pure; CONTRIBUTING.md, 'Test tiers')")
    return refused


class _NoImport(importlib.abc.MetaPathFinder):
    """Refuses the first import of chdb and argon2 during a unit test."""

    NAMES = {"chdb": "chDB", "argon2": "argon2"}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        what = self.NAMES.get(name.partition(".")[0])
        if what:
            _refuse(what)()
        return None


@pytest.fixture(autouse=True)
def _unit_tier_is_pure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    child = _refuse("a child process", "tests/component or tests/integration")
    monkeypatch.setattr(subprocess.Popen, "__init__", child)
    monkeypatch.setattr(os, "fork", _refuse("os.fork", "tests/component or tests/integration"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start",
                        _refuse("multiprocessing", "tests/component or tests/integration"))
    server = _refuse("a listening socket (a server)")
    monkeypatch.setattr(socket.socket, "bind", server)
    monkeypatch.setattr(socket.socket, "listen", server)
    # gRPC binds in C, past socket.socket: refuse its server constructors.
    import grpc
    import grpc.aio

    monkeypatch.setattr(grpc, "server", _refuse("a gRPC server"))
    monkeypatch.setattr(grpc.aio, "server", _refuse("a gRPC server"))
    monkeypatch.setattr(sqlite3, "connect", _refuse("SQLite"))
    monkeypatch.setattr(sqlite3.dbapi2, "connect", _refuse("SQLite"))
    if "chdb" in sys.modules:  # imported by a component test earlier in this session
        monkeypatch.setattr(sys.modules["chdb"], "connect", _refuse("chDB"))
    if "argon2" in sys.modules:
        monkeypatch.setattr(sys.modules["argon2"].PasswordHasher, "hash", _refuse("argon2"))
        monkeypatch.setattr(sys.modules["argon2"].PasswordHasher, "verify", _refuse("argon2"))
    finder = _NoImport()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
