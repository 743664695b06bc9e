"""Integration tier: what every test here shares."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _release_chdb() -> Iterator[None]:
    """Collect garbage after each test that ran with chDB loaded.

    chDB binds a process to one data directory until every handle to it is finalized. A
    server that failed to start stays referenced from its own exception's traceback (a
    reference cycle) until the cycle collector runs, so the next in-process server on
    another directory could find chDB still bound, depending on when the collector last
    ran. Collecting here makes the release deterministic.
    """
    yield
    if "chdb" in sys.modules:
        gc.collect()
