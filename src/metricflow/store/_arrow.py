"""Build Arrow tables for ClickHouse inserts from decoded columnar batches.

All work is per batch or per distinct key, never per point: keys and run ids
become dictionary columns whose indices are remapped with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from metricflow._wire import DecodedMetrics


def metrics_table(batches: Sequence[DecodedMetrics]) -> pa.Table:
    """Concatenate batches (of any runs) into one single-chunk Arrow table."""
    global_keys: dict[str, int] = {}
    run_ids: dict[str, int] = {}
    key_parts: list[np.ndarray] = []
    run_counts = np.empty(len(batches), dtype=np.int64)
    run_codes = np.empty(len(batches), dtype=np.int32)
    for i, b in enumerate(batches):
        lut = np.fromiter(
            (global_keys.setdefault(k, len(global_keys)) for k in b.keys),
            dtype=np.int32, count=len(b.keys),
        )
        key_parts.append(lut[b.key_index] if len(lut) else b.key_index.astype(np.int32))
        run_codes[i] = run_ids.setdefault(b.run_id, len(run_ids))
        run_counts[i] = b.n
    run_col = pa.DictionaryArray.from_arrays(
        np.repeat(run_codes, run_counts), pa.array(list(run_ids), pa.string())
    )
    key_col = pa.DictionaryArray.from_arrays(
        np.concatenate(key_parts) if key_parts else np.empty(0, np.int32),
        pa.array(list(global_keys), pa.string()),
    )

    def cat(attr: str, dtype: str) -> np.ndarray:
        parts = [getattr(b, attr) for b in batches]
        return np.concatenate(parts) if parts else np.empty(0, dtype)

    return pa.table({
        "run_id": run_col,
        "key": key_col,
        "step": cat("steps", "int64"),
        "timestamp": cat("timestamps", "int64"),
        "value": cat("values", "float64"),
    })
