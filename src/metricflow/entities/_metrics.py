"""Metric points in columns: the one shape in which points move from the wire to the store."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DecodedMetrics:
    """One run's metric points as numpy columns (views over the message bytes).

    `key_index[i]` indexes `keys`; every column has one entry per point.
    """

    run_id: str
    keys: tuple[str, ...]
    key_index: np.ndarray
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray

    @property
    def n(self) -> int:
        return int(self.values.shape[0])
