"""Progress reporting for long transfers (tqdm when available and wanted)."""

from __future__ import annotations

import sys
import threading
from typing import Any


class Progress:
    """Thread-safe byte counter with an optional tqdm bar.

    Args:
        total: bytes expected.
        desc: label of the bar.
        enabled: True/False to force; None = only when stderr is a TTY.
    """

    def __init__(self, total: int, desc: str, enabled: bool | None = None) -> None:
        self.done = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        if enabled is None:
            enabled = sys.stderr.isatty()
        if enabled:
            try:
                from tqdm import tqdm  # optional
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True,
                             unit_divisor=1024, leave=False)

    def update(self, n: int) -> None:
        """Count `n` more bytes done."""
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
