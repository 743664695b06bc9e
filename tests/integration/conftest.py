"""Integration tier: what every test here shares."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _release_chdb() -> Iterator[None]:
    """Collect garbage after each test that ran with chDB loaded (defensive).

    chDB binds a process to one data directory until every handle to it is finalized; a
    handle kept alive only by a reference cycle (a failed server referenced from its own
    exception's traceback, say) is released when the cycle collector next runs. Collecting
    here makes that release happen before the next test's in-process server opens chDB.
    """
    yield
    if "chdb" in sys.modules:
        gc.collect()
