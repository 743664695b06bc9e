"""Arrow helpers for splitting sorted query results into groups without per-row Python."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def group_bounds(tbl: pa.Table, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) row of each run of equal values in sorted `columns`."""
    n = tbl.num_rows
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    changed = np.zeros(n - 1, bool)
    for c in columns:
        col: Any = tbl.column(c).combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        changed |= pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(
            zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, changed])
    return starts, np.r_[starts[1:], n]


def value_at(tbl: pa.Table, column: str, row: int) -> Any:
    """One cell as a Python value (per group, not per row)."""
    return tbl.column(column)[int(row)].as_py()
